"""Test-wide settings: offline corpora, small thread counts, no analytics."""

import os
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


def shakespeare_available() -> bool:
    return (Path(os.environ.get("GPT_DATA_DIR", "data")) / "tinyshakespeare.txt").exists()


@pytest.fixture
def shakespeare_text() -> str:
    if not shakespeare_available():
        pytest.skip("Tiny Shakespeare is not available offline (set GPT_DATA_DIR)")
    return (Path(os.environ["GPT_DATA_DIR"]) / "tinyshakespeare.txt").read_text(encoding="utf-8")


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`), every browser test goes to one worker, in file order: two
    Chromiums, two app servers and their training runs side by side starve each other into their timeouts on
    two cores, while a browser test beside CPU-bound tests runs fine. Every other test keeps its file's group, so
    a module's fixtures (a trained run, an app server) are built once. The browser group, the longest, goes
    first, so the other worker's files fill the time beside it. Without xdist the markers do nothing."""
    def browser(item) -> bool:
        return "browser" in item.path.name or item.get_closest_marker("browser") is not None

    items.sort(key=lambda item: not browser(item))  # stable: file order within each part
    for item in items:
        item.add_marker(pytest.mark.xdist_group("browser" if browser(item) else item.path.stem))
