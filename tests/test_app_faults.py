"""The app killed with SIGKILL, for real: during training, then in the middle of a save.

`python app.py` runs as a subprocess on 127.0.0.1 (a free port, a temporary
GPT_CHECKPOINT_DIR) and is driven with gradio_client. After each kill the app
is started again on the same folder and port, and the same client (the same
API session, so the same owner) finds its run listed as 'interrupted' at its
last checkpoint, samples from it, and resumes it from that step.

The kill during a save is timed by watching the run folder for the weights'
temporary file (checkpoint.atomic_write writes `.model.safetensors.*.tmp`,
then renames it over the old file) and killing the moment it appears. A
leftover temporary file after the kill proves the save was cut short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gpt import checkpoint as ckpt

from helpers_app import ROOT, app_env, free_port, wait_until

gradio_client = pytest.importorskip("gradio_client")
pytestmark = pytest.mark.timeout(240)
ACTIVE = ("queued", "preparing", "running")


class App:
    """`python app.py` on a fixed port and runs folder; start it, kill it, start it again."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=app_env(self.root, self.port),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            assert self.proc.poll() is None, f"app.py exited with {self.proc.returncode}"
            try:
                return urllib.request.urlopen(self.url, timeout=2).status == 200
            except OSError:
                return False

        wait_until(up, timeout=120, every=0.1, what="app.py to answer")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def app(tmp_path):
    a = App(tmp_path / "runs")
    yield a
    a.stop()


TOKEN = {}  # run -> the token of the person who started it (the API's identity)


def status(client, run: str) -> dict:
    return client.predict(run=run, token=TOKEN[run], api_name="/run_status")


def saved_step(path: Path) -> int:
    return int(ckpt.read_meta(path / ckpt.WEIGHTS)["step"])


def check_recovered(client, run: str, path: Path) -> int:
    """After a restart: listed as interrupted at its checkpoint, which loads and samples. Returns that step."""
    step = ckpt.load_checkpoint(path).step  # whole: weights and config of one save
    row = {r["name"]: r for r in client.predict(token=TOKEN[run], api_name="/list_runs")}[run]
    assert row["state"] == "interrupted" and row["step"] == step, row
    assert f"last checkpoint at step {step}" in row["message"] and "Resume" in row["message"]
    assert not list(path.glob(".*.tmp"))  # the half-written file of a cut save is cleared away
    text = client.predict(run=run, prompt="1", max_new_tokens=20, seed=1, token=TOKEN[run], api_name="/generate")
    assert text.startswith("1") and len(text) == 21
    return step


def resume_from(client, run: str, step: int) -> None:
    """/resume_run continues from `step`: the same curve, no step trained twice."""
    st = client.predict(run=run, token=TOKEN[run], api_name="/resume_run")
    assert st["state"] in ACTIVE and st["step"] >= step, st  # from the checkpoint, not from 0
    s = wait_until(lambda: (lambda s: s if s["step"] > step else None)(status(client, run)), timeout=60,
                   what="the resumed run to take steps")
    assert s["state"] == "running", s
    steps = [r["step"] for r in s["metrics"]]
    assert steps == sorted(set(steps)) and steps[0] == 0 and step in steps  # one curve across the crash


def kill_during_a_save(app: App, path: Path, timeout: float = 60) -> bool:
    """SIGKILL the app the moment a new weights file is being written; True if the save was cut short."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(n.startswith(f".{ckpt.WEIGHTS}.") for n in os.listdir(path)):
            app.kill()
            return any(n.startswith(f".{ckpt.WEIGHTS}.") for n in os.listdir(path))
    raise AssertionError(f"no save began within {timeout} s")


def test_sigkill_during_training_and_during_a_save_loses_nothing(app):
    app.start()
    client = gradio_client.Client(app.url, verbose=False)
    # 300 steps of the tiny preset: an evaluation and a save every 30 steps, about one a second here
    st = client.predict(corpus="addition", preset="tiny", max_iters=300, max_seconds=0, api_name="/start_run")
    run = st["name"]
    TOKEN[run] = st["token"]
    path = app.root / run
    # the save on disk, not the evaluation in the status: step 30's evaluation is reported before its save lands
    # (CI once killed the app between the two and found step 0)
    wait_until(lambda: (path / ckpt.WEIGHTS).exists() and saved_step(path) >= 30, timeout=60,
               what="a checkpoint after step 0")

    app.kill()  # 1. in the middle of training
    app.start()
    step = check_recovered(client, run, path)  # the same token after a restart: still the owner
    assert step >= 30
    resume_from(client, run, step)

    for attempt in range(3):  # 2. in the middle of writing the weights (cut short almost always at the 1st try)
        cut = kill_during_a_save(app, path)
        app.start()
        step = check_recovered(client, run, path)
        if cut or attempt == 2:
            break
        resume_from(client, run, step)
    assert cut, "three kills all missed the save"
    resume_from(client, run, step)
    client.predict(run=run, token=TOKEN[run], api_name="/stop_run")
    final = wait_until(lambda: (lambda s: s if s["state"] not in ACTIVE else None)(status(client, run)), timeout=60,
                       what="the run to stop")
    assert final["state"] == "stopped" and saved_step(path) == final["step"] > step
