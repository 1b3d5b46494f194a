"""Shared pieces of the app tests: a tiny run request, waiting, a 'shipped' run, a server.

Imported by test_app_logic.py, test_app_client.py and test_app_browser.py.
Everything trains on the built-in 'addition' corpus with a model of a few
thousand parameters, so a run takes about a second even on a busy 2-core CPU.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from gpt.data import addition_corpus
from gpt.jobs import RunRequest
from gpt.corpus import Corpus

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(preset="tiny", n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=8, dropout=0.0, lr=3e-3,
            architecture="classic", max_seconds=0)
# the Train tab's sliders for that model, in the order its handlers take them
SLIDERS = (1, 2, 16, 16, 0.0, 8, 3e-3, 20, 0)  # layers, heads, width, block, dropout, batch, lr, iters, seconds


def addition() -> Corpus:
    return Corpus("addition", addition_corpus(n=3000), "addition")


def tiny_request(max_iters: int = 20, **kw) -> RunRequest:
    return RunRequest(**{**TINY, "max_iters": max_iters, **kw})


def wait_until(predicate, timeout: float = 60.0, every: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def delete_by_hand(path: Path) -> None:
    """Someone removes a run folder on the server while it trains; a save landing mid-delete leaves a file
    ("Directory not empty"), so they delete again, as `rm -rf` would be rerun."""
    for _ in range(100):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.02)
    raise AssertionError(f"{path.name} could not be deleted")


def make_shipped_run(root: Path, name: str = "shakespeare-char", max_iters: int = 20) -> Path:
    """A run made with the CLI, as the lead ships one: no owner, visible to everyone."""
    out = Path(root) / name
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "gpt.train", "--data", "addition", "--preset", "tiny", "--max-iters", str(max_iters),
           "--eval-interval", str(max_iters), "--eval-iters", "2", "--sample-tokens", "0", "--out", str(out)]
    if (Path(os.environ.get("GPT_DATA_DIR", "data")) / "tinyshakespeare.txt").exists():
        cmd[cmd.index("addition")] = "shakespeare"
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    return out


def app_env(checkpoint_dir: Path, port: int) -> dict:
    """The environment `python app.py` runs with in tests: local only, a tmp runs folder."""
    return {**os.environ, "GPT_CHECKPOINT_DIR": str(checkpoint_dir), "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(ROOT)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(checkpoint_dir: Path, **limits_env):
    """Build the app against `checkpoint_dir` and serve it in this process on a free port.

    Returns (demo, url). Close with demo.close() and demo.manager.shutdown().
    """
    import app
    from gpt.jobs import JobManager
    from gpt.jobs.slice_runner import default_runner
    from gpt.limits import Limits

    limits = Limits.from_env({**os.environ, **{k: str(v) for k, v in limits_env.items()}})
    demo = app.build_demo(JobManager(checkpoint_dir, limits, device="cpu", runner=default_runner()))
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"
