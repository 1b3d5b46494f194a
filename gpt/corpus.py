"""The corpus and tokenizer a student picks, and what the page shows about them.

Four kinds of corpus: Tiny Shakespeare, a built-in synthetic task, an
uploaded .txt file, or pasted text. The same (corpus, tokenizer) pair is
asked for many times (statistics, preview, then the run itself), and a BPE
takes seconds to train, so encoded datasets are kept in a small cache.

The page draws the pieces with `gpt.ui.tokens`; this module knows no HTML.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .data import SYNTHETIC, Dataset, check_text, corpus_file, load_corpus, read_text_file
from .errors import DataError
from .tokenizers import build_tokenizer

CORPUS_CHOICES = [
    ("Tiny Shakespeare (1.1M characters)", "shakespeare"),
    ("Synthetic: addition (37+45=82)", "addition"),
    ("Synthetic: reverse (abc>cba)", "reverse"),
    ("Synthetic: counting (17 18 19 20)", "counting"),
    ("Upload a .txt file", "upload"),
    ("Paste text", "paste"),
]
TOKENIZER_CHOICES = [
    ("Characters", "char"),
    ("GPT-2 BPE", "gpt2"),
    ("BPE trained on this corpus", "bpe"),
]
BPE_VOCAB_MIN, BPE_VOCAB_MAX, BPE_VOCAB_DEFAULT = 256, 16_384, 2_048


@dataclass
class Corpus:
    name: str  # short, used in run names and tables
    text: str
    source: str  # 'shakespeare' or a synthetic name (rebuilt by name), or 'text' (kept with the run)


def _short_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_").lower()[:24]
    return name or "text"


def load(choice: str, upload_path: str | None = None, pasted: str | None = None,
         max_bytes: int | None = None) -> Corpus:
    """The corpus a choice names: the page's ('upload', 'paste', a built-in name) or, from the command line, the
    path of a UTF-8 text file; a sentence-long error if it cannot be had. The one way into a corpus: encode it
    with `dataset`."""
    if choice == "upload":
        if not upload_path:
            raise DataError("Choose a .txt file to upload first (or pick another corpus).")
        kw = {} if max_bytes is None else {"max_bytes": max_bytes}
        return Corpus(_short_name(Path(upload_path).stem), read_text_file(upload_path, **kw), "text")
    if choice == "paste":
        text = check_text(pasted or "", "The pasted text")
        if max_bytes is not None and len(text.encode("utf-8")) > max_bytes:
            raise DataError(f"The pasted text is {len(text.encode('utf-8')) / 2**20:.1f} MB, over the "
                            f"{max_bytes / 2**20:.0f} MB limit (GPT_MAX_UPLOAD_MB); paste a shorter text.")
        return Corpus("pasted", text, "text")
    if choice == "shakespeare" or choice in SYNTHETIC:
        name, text = _named_corpus(choice)
        return Corpus(name, text, choice)
    if not isinstance(choice, str) or not choice:
        raise DataError(f"Unknown corpus {choice!r}: choose one of {', '.join(c for _, c in CORPUS_CHOICES)}.")
    path = corpus_file(choice)  # a path: a missing file is said as such
    kw = {} if max_bytes is None else {"max_bytes": max_bytes}
    return Corpus(path.name, read_text_file(path, **kw), "text")


_named: dict[str, tuple[str, str]] = {}
_failed: dict[str, tuple[float, DataError]] = {}
RETRY_AFTER_S = 300  # an offline server should not wait for a download on every page load


def _named_corpus(choice: str) -> tuple[str, str]:
    if choice not in _named:
        when, err = _failed.get(choice, (0.0, None))
        if err is not None and time.monotonic() - when < RETRY_AFTER_S:
            raise err
        try:
            _named[choice] = load_corpus(choice)  # Shakespeare may download once here
        except DataError as err:
            _failed[choice] = (time.monotonic(), err)
            raise
    return _named[choice]


# --- encoded datasets, cached ------------------------------------------------------------

_CACHE_SIZE = 4
_cache: "OrderedDict[tuple, Dataset]" = OrderedDict()
_cache_lock = threading.Lock()
_building: dict[tuple, threading.Lock] = {}  # one build per key: a second asker waits for the first


def cache_key(corpus: Corpus, kind: str, vocab_size: int | None) -> tuple:
    digest = hashlib.sha1(corpus.text.encode("utf-8", "surrogatepass")).hexdigest()
    return (digest, kind, int(vocab_size) if kind == "bpe" and vocab_size else None)


def dataset(corpus: Corpus, kind: str, vocab_size: int | None = None, progress=None) -> Dataset:
    """`corpus` encoded with a new tokenizer of `kind`; the same request returns the same Dataset."""
    if kind == "bpe":
        vocab_size = int(vocab_size or BPE_VOCAB_DEFAULT)
    key = cache_key(corpus, kind, vocab_size)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _called(_cache[key], corpus.name)
        lock = _building.setdefault(key, threading.Lock())
    with lock:
        with _cache_lock:  # built by another caller while we waited?
            if key in _cache:
                return _called(_cache[key], corpus.name)
        tok = build_tokenizer(kind, corpus.text, vocab_size=vocab_size if kind == "bpe" else None, progress=progress)
        ds = Dataset(corpus.text, tok, name=corpus.name)
        with _cache_lock:
            _cache[key] = ds
            _building.pop(key, None)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return ds


def _called(ds: Dataset, name: str) -> Dataset:
    """The cached dataset under the name this corpus goes by. The cache is keyed by the text, so the same text
    pasted, then uploaded as tiny.txt, is encoded once; but the upload is 'tiny', not 'pasted' (a shallow
    copy: the tensors and tokenizer are shared)."""
    if ds.name == name:
        return ds
    renamed = copy.copy(ds)
    renamed.name = name
    return renamed


# --- what the page shows ------------------------------------------------------------------


def stats(ds: Dataset) -> dict:
    info = ds.info()
    return {
        "characters": info.n_chars, "tokens": info.n_tokens, "vocabulary": info.vocab_size,
        "train_tokens": info.n_train, "val_tokens": info.n_val, "chars_per_token": info.chars_per_token,
        "tokenizer": ds.tokenizer.describe(),
    }


def stats_markdown(ds: Dataset) -> str:
    s = stats(ds)
    return (
        f"**{ds.name}** with **{s['tokenizer']}**\n\n"
        "| characters | tokens | vocab | train | val | chars/token |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
        f"| {s['characters']:,} | {s['tokens']:,} | {s['vocabulary']:,} | {s['train_tokens']:,} | "
        f"{s['val_tokens']:,} | {s['chars_per_token']:.2f} |"
    )


def sample_sentence(text: str, limit: int = 120) -> str:
    """The first lines of the corpus, about `limit` characters: what the preview cuts."""
    out = ""
    for line in text.lstrip("\n").splitlines(keepends=True):
        if out and len(out) + len(line) > limit:
            break
        out += line
    return (out or text[:limit])[:limit * 2].rstrip("\n")
