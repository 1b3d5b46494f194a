"""Test-wide settings: offline corpora, small thread counts, no analytics."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
if (SHARED_DATA / "tinyshakespeare.txt").exists():
    os.environ.setdefault("GPT_DATA_DIR", str(SHARED_DATA))
GPT2_RANKS = ROOT / ".tiktoken_cache" / "gpt2.tiktoken"
if GPT2_RANKS.exists():
    os.environ.setdefault("GPT_GPT2_RANKS", str(GPT2_RANKS))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tiny test models gain nothing from two threads, and oversubscribed OpenMP threads spin.
os.environ.setdefault("GPT_NUM_THREADS", "1")
# The tests that do use two threads share two cores with the other worker: OpenMP's threads that spin at each
# tiny operation's barrier while the other core is taken made one of them 100x slower (0.25 s alone, 28 s in
# the suite); threads that sleep at once cost a little alone and nothing like that beside another worker.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The decode process compiles a served model's step in the background (seconds of a core per model): the tests
# that need it turn it on (tests/test_compiled_step.py, tests/test_decode_process.py).
os.environ.setdefault("GPT_COMPILE_DECODE", "0")
# Each test process keeps Gradio's uploads in a folder of its own (and the apps it starts, which inherit it):
# every app a test serves starts the upload sweeper (gpt.ui.uploads) for the life of the process, with its own
# size cap (ten of its upload limits: 10 MB for a test's 1 MB), so in one shared /tmp/gradio one worker's
# sweeper could delete the upload another worker's browser test had just made.
if "GRADIO_TEMP_DIR" not in os.environ:
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="gpt-tests-uploads-")
    atexit.register(shutil.rmtree, os.environ["GRADIO_TEMP_DIR"], ignore_errors=True)


def shakespeare_available() -> bool:
    return (Path(os.environ.get("GPT_DATA_DIR", "data")) / "tinyshakespeare.txt").exists()


SHIPPED = ROOT / "checkpoints" / "shakespeare-char"


@pytest.fixture(scope="module")
def shipped():
    """The shipped model and its tokenizer: real float32 weights, where a last-bit difference could really
    flip a token (the decoding tests)."""
    if not (SHIPPED / "model.safetensors").exists():
        pytest.skip("the shipped checkpoint is not here")
    from gpt.checkpoint import load_checkpoint

    ck = load_checkpoint(SHIPPED, device="cpu")
    return ck.model.eval(), ck.tokenizer


@pytest.fixture
def shakespeare_text() -> str:
    if not shakespeare_available():
        pytest.skip("Tiny Shakespeare is not available offline (set GPT_DATA_DIR)")
    return (Path(os.environ["GPT_DATA_DIR"]) / "tinyshakespeare.txt").read_text(encoding="utf-8")


def _in_a_browser(nodeid: str) -> bool:
    """A test that drives Chromium: its file is named for it (test_*browser*.py), or so is the test."""
    return "browser" in nodeid.split("[", 1)[0]


def pytest_collection_modifyitems(config, items):
    """The browser tests first (stable: file order within each part), so under xdist the longest group starts
    first and the other worker's files fill the time beside it."""
    items.sort(key=lambda item: not _in_a_browser(item.nodeid))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n 2`: every browser test goes to one worker, one after another, and every other file to whichever
    worker is free, whole (a module's fixtures, a trained run or an app server, are built once). Two Chromiums,
    two app servers and their training runs side by side starve each other into their timeouts on two cores;
    a browser test beside CPU-bound tests runs fine. (xdist's own `loadgroup` cannot do it under pytest 9:
    it renames node ids through an attribute pytest no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # collection order (the browser group first), not the most tests first

    class BrowsersApart(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "browser" if _in_a_browser(nodeid) else nodeid.split("::", 1)[0]

    return BrowsersApart(config, log)
