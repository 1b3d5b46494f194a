"""Issue 13, findings 6, 8, 9, 10 through the real server: `python app.py` in a subprocess on 127.0.0.1,
driven by gradio_client, its resident memory read from /proc. No /start_run of absurd size pushes it past
1 GB over its idle size or keeps it busy: each is refused with a sentence within seconds.
(Uploads and resumes of hostile checkpoints are the same core check, measured in test_memory_bounds.py.)"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers_app import ROOT, app_env, free_port, wait_until

gradio_client = pytest.importorskip("gradio_client")
pytestmark = pytest.mark.timeout(300)
OVER_IDLE = 1024 * 2**20
REFUSED_WITHIN_S = 20  # generous: a shared 2-core machine; before the fix n_layer=200000 took 417 s


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=app_env(tmp_path_factory.mktemp("runs"), port),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        assert proc.poll() is None, f"app.py exited with {proc.returncode}"
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_until(up, timeout=120, every=0.2, what="app.py to answer")
        client = gradio_client.Client(url, verbose=False)
        with pytest.raises(Exception):  # one refused call first, so the idle size includes serving one
            client.predict(corpus="addition", n_layer=-1, api_name="/start_run")
        yield proc, client, _status(proc.pid, "VmRSS")
    finally:
        proc.kill()
        proc.wait(30)


PASTED = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 20_000)) + "".join(chr(c) for c in range(0x20000, 0x20000 + 60_000))

CASES = {
    "n_layer=200000": (dict(n_layer=200_000), "n_layer"),
    "n_layer=1e30": (dict(n_layer=1e30), "n_layer"),
    "n_layer=1000": (dict(n_layer=1000), "GPT_MAX_LAYERS"),
    "block_size=100000": (dict(block_size=100_000), "GPT_MAX_BLOCK_SIZE"),
    "batch_size=200000": (dict(batch_size=200_000), "GPT_MAX_BATCH_SIZE"),
    "80,000 distinct characters": (dict(corpus="text", text=PASTED * 2), "GPT_MAX_VOCAB"),
    "n_embd=4096": (dict(n_embd=4096, n_head=4), "GPT_MAX_PARAMS"),
}


def test_absurd_runs_are_refused_by_the_server_in_seconds_without_growing_it(server):
    proc, client, idle = server
    for name, (kw, match) in CASES.items():
        t0 = time.monotonic()
        with pytest.raises(Exception) as info:
            client.predict(**{"corpus": "addition", "preset": "tiny", **kw}, api_name="/start_run")
        assert match in str(info.value) and "Traceback" not in str(info.value), (name, str(info.value)[:300])
        assert time.monotonic() - t0 < REFUSED_WITHIN_S, name
        assert _status(proc.pid, "VmRSS") < idle + OVER_IDLE, name
    peak = _status(proc.pid, "VmHWM")  # the kernel's high-water mark since the server started
    assert peak < idle + OVER_IDLE, f"peak {peak / 2**20:.0f} MB, idle {idle / 2**20:.0f} MB"
    runs = client.predict(api_name="/list_runs")  # a shipped run may be listed; none of these was queued
    assert not [r for r in runs if r["state"] in ("queued", "preparing", "running")], runs
