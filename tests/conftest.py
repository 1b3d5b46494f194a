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
