"""Byte-level BPE tokenizers: GPT-2's through tiktoken, and BPE trained on your text.

Both kinds encode and decode with a `tiktoken.Encoding`; they differ only in
where its ranks (token bytes -> id, in merge order) come from:

- 'gpt2' (also 'cl100k_base', 'o200k_base'): OpenAI's published files. tiktoken
  fetches one on first use and caches it; we do that fetch ourselves, with a
  time limit, so an offline machine gets a sentence instead of a hang.
  `GPT_GPT2_RANKS` may name a local gpt2.tiktoken instead. GPT-2's own ranks
  (r50k_base, public under the MIT licence of openai/tiktoken and openai/gpt-2)
  also ship with the package, gzipped (`gpt/assets/gpt2.tiktoken.gz`, 366 KB),
  so GPT-2's BPE works in an offline classroom: they are read before any
  download is tried, and held to the same sha256 as a download.
- 'bpe': ranks learned from the corpus by `rustbpe` (nanochat's trainer) with
  the GPT-4 split pattern. The spec keeps the learned tokens, not the corpus.

A compact vocabulary (on by default for the pretrained kinds) keeps only the
ids that occur in the corpus, renumbered 0..n-2, plus one fallback id n-1 for
everything else. A model trained on Tiny Shakespeare sees about 11.7k of GPT-2's
50,257 tokens; the other 38k rows of the embedding table would never get a
gradient. The fallback decodes to U+FFFD, the character Unicode reserves for
"something was here that cannot be shown", rather than to a real character
such as '?' that the model could confuse with text.

Streaming such tokens as text without half characters is `gpt.sample.StreamDecoder`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
import threading
import time
import urllib.request
from typing import Callable

import tiktoken

from .bpe_spec import check_trained_spec, guarded
from .errors import TokenizerError
from .shipped import ASSETS
from .shipped import read as shipped_file
from .tokenizer import Tokenizer

# Split patterns: GPT-2's (tiktoken's faster equivalent of the original), GPT-4's as
# rustbpe/minbpe write it (we train with it), cl100k's and o200k's exactly as tiktoken has them.
R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
GPT4_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}"""
                r"""| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+""")
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"""
                  r"""| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_UP, _LOW = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_CONTRACTION = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
O200K_PATTERN = "|".join([
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UP}*{_LOW}+{_CONTRACTION}", rf"[^\r\n\p{{L}}\p{{N}}]?{_UP}+{_LOW}*{_CONTRACTION}",
    r"\p{N}{1,3}", r" ?[^\s\p{L}\p{N}]+[\r\n/]*", r"\s*[\r\n]+", r"\s+(?!\S)", r"\s+"])
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"
# The published files, as tiktoken_ext.openai_public describes them. GPT-2's ranks
# are r50k_base's (tiktoken's 'gpt2' reads the same ranks from two older files).
PRETRAINED = {
    "gpt2": dict(url=_BLOB + "r50k_base.tiktoken", pattern=R50K_PATTERN, n_vocab=50257,
                 sha256="306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
                 special={"<|endoftext|>": 50256}),
    "cl100k_base": dict(url=_BLOB + "cl100k_base.tiktoken", pattern=CL100K_PATTERN, n_vocab=None,
                        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
                        special={"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                                 "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}),
    "o200k_base": dict(url=_BLOB + "o200k_base.tiktoken", pattern=O200K_PATTERN, n_vocab=None,
                       sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
                       special={"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
}
SHIPPED_RANKS = {"gpt2": ASSETS / "gpt2.tiktoken.gz"}  # 366 KB
TRAINED_PATTERNS = (GPT4_PATTERN, R50K_PATTERN, CL100K_PATTERN, O200K_PATTERN)  # the only ones a spec may name
BPE_VOCAB_RANGE = (256, 16_384)
DEFAULT_BPE_VOCAB = 2_048
DOWNLOAD_TIMEOUT_S = 12.0  # give up when no byte has arrived for this long
UNK_TEXT = "\ufffd"  # what the compact fallback id decodes to

Progress = Callable[[float, str], None]


# ----------------------------------------------------------------------------
# Getting the published ranks: a local file, tiktoken's cache, or a download.

def tiktoken_cache_dir() -> str:
    """The folder tiktoken caches downloads in ('' means caching is off)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _download(url: str, timeout: float) -> bytes:
    """Fetch `url`, giving up once no byte has arrived for `timeout` seconds.

    urllib's own timeout does not cover the DNS lookup, which offline can block
    for a minute, so the fetch runs in a daemon thread that we stop waiting for.
    """
    box: dict = {"n": 0}

    def work():
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                parts = []
                while part := resp.read(1 << 16):
                    parts.append(part)
                    box["n"] += len(part)
            box["data"] = b"".join(parts)
        except Exception as err:  # any failure becomes one TokenizerError upstream
            box["error"] = err

    worker = threading.Thread(target=work, name="tiktoken-download", daemon=True)
    worker.start()
    seen, since = 0, time.monotonic()
    while worker.is_alive():
        worker.join(0.05)
        if box["n"] != seen:
            seen, since = box["n"], time.monotonic()
        elif time.monotonic() - since > timeout:
            raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["data"]


def _rank_file(kind: str) -> bytes:
    """The .tiktoken file for `kind`, checked against its published sha256."""
    info = PRETRAINED[kind]
    local = os.environ.get("GPT_GPT2_RANKS") if kind == "gpt2" else None
    if local:
        try:
            with open(local, "rb") as f:
                data = f.read()
        except OSError as err:
            raise TokenizerError(f"GPT_GPT2_RANKS names {local!r}, which cannot be read ({err.strerror}).") from None
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise TokenizerError(f"GPT_GPT2_RANKS names {local!r}, which is not GPT-2's gpt2.tiktoken "
                                 "(r50k_base); its sha256 does not match.")
        return data
    folder = tiktoken_cache_dir()
    cached = os.path.join(folder, hashlib.sha1(info["url"].encode()).hexdigest()) if folder else None
    if cached and os.path.exists(cached):
        with open(cached, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() == info["sha256"]:
            return data  # a damaged cache file is fetched again, as tiktoken does
    shipped = shipped_file(SHIPPED_RANKS[kind], info["sha256"]) if kind in SHIPPED_RANKS else None
    if shipped is not None:
        return shipped  # the same bytes a download would bring, with no network and no 12 s wait for one
    try:
        data = _download(info["url"], DOWNLOAD_TIMEOUT_S)
    except Exception as err:
        where = f"the cache folder {folder!r}" if folder else "a cache folder"
        hint = (" Or set GPT_GPT2_RANKS to a local gpt2.tiktoken (python .ci/fetch_gpt2_ranks.py "
                "gets one through pip).") if kind == "gpt2" else ""
        name = "GPT-2" if kind == "gpt2" else kind
        raise TokenizerError(
            f"{name}'s vocabulary could not be downloaded: this server seems to be offline. Use Characters or "
            "BPE trained on this corpus, or ask whoever runs the server to set GPT_GPT2_RANKS.",
            details=f"Could not download the {kind} vocabulary from {info['url']} ({err}). tiktoken needs the "
            f"internet once per vocabulary and then keeps it in {where} (set TIKTOKEN_CACHE_DIR to choose "
            f"it). Connect once, or copy the file there named {os.path.basename(cached or '<sha1 of url>')}."
            + hint) from None
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise TokenizerError(f"The {kind} vocabulary downloaded from {info['url']} is damaged; try again.")
    if cached:
        try:  # write-then-rename, so a crash never leaves half a file in the cache
            os.makedirs(folder, exist_ok=True)
            tmp = f"{cached}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, cached)
        except OSError:
            pass  # an unwritable cache costs a download next time, nothing more
    return data


def parse_ranks(data: bytes) -> dict[bytes, int]:
    """Parse the .tiktoken format: one 'base64(token) rank' per line."""
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


_loaded: dict[tuple, tiktoken.Encoding] = {}


def load_encoding(kind: str) -> tiktoken.Encoding:
    """The full tiktoken encoding for a pretrained `kind`, loaded once per source."""
    if kind not in PRETRAINED:
        raise TokenizerError(f"Unknown pretrained vocabulary {kind!r}; choose one of {', '.join(PRETRAINED)}.")
    info = PRETRAINED[kind]
    key = (kind, os.environ.get("GPT_GPT2_RANKS", "") if kind == "gpt2" else "", tiktoken_cache_dir(), info["url"])
    if key not in _loaded:
        _loaded[key] = tiktoken.Encoding(name=kind, pat_str=info["pattern"], mergeable_ranks=parse_ranks(
            _rank_file(kind)), special_tokens=info["special"], explicit_n_vocab=info["n_vocab"])
    return _loaded[key]


# ----------------------------------------------------------------------------
# One tokenizer class for every byte-level BPE, with an optional compact vocabulary.

class BPETokenizer(Tokenizer):
    """A tiktoken encoding, optionally renumbered to the ids a corpus uses.

    `source` is the spec part that rebuilds the encoding; `kept` lists the full
    ids kept, in order (compact id i is full id kept[i]; id len(kept) is the
    fallback). Special tokens such as <|endoftext|> are never produced: text is
    encoded as plain text, so any string round-trips (except lone surrogates,
    which are not UTF-8 text; tiktoken encodes them as U+FFFD).
    """

    def __init__(self, enc: tiktoken.Encoding, source: dict, kept: list[int] | None = None):
        self.enc, self.source, self.name = enc, source, source["type"]
        self.kept = kept
        if kept is None:
            self._to_compact = self._bytes = None
            return
        self._to_compact = {full: i for i, full in enumerate(kept)}
        self._bytes = [enc.decode_single_token_bytes(full) for full in kept] + [UNK_TEXT.encode()]

    @property
    def compact(self) -> bool:
        return self.kept is not None

    @property
    def full_vocab_size(self) -> int:
        return self.enc.n_vocab

    @property
    def vocab_size(self) -> int:
        return self.full_vocab_size if self.kept is None else len(self.kept) + 1

    @property
    def unk_id(self) -> int | None:
        """The compact fallback id for tokens the corpus never used (None if not compact)."""
        return None if self.kept is None else len(self.kept)

    def encode(self, text: str) -> list[int]:
        ids = guarded(self.enc.encode_ordinary, text)
        if self._to_compact is None:
            return ids
        get, unk = self._to_compact.get, self.unk_id
        return [get(i, unk) for i in ids]

    def decode(self, ids: list[int]) -> str:
        ids = [int(i) for i in ids]
        if self._bytes is None:
            try:
                return self.enc.decode(ids, errors="replace")
            except (KeyError, OverflowError):  # tiktoken's way of saying "no such id"
                bad = next(i for i in ids if not self._is_token(i))
        else:
            bad = next((i for i in ids if not 0 <= i < len(self._bytes)), None)
            if bad is None:
                return b"".join(self._bytes[i] for i in ids).decode("utf-8", errors="replace")
        raise TokenizerError(f"Token id {bad} is outside this vocabulary of {self.vocab_size:,}.")

    def _is_token(self, i: int) -> bool:
        try:
            self.enc.decode_single_token_bytes(i)
            return True
        except (KeyError, OverflowError):
            return False

    def pieces(self, text: str) -> list[tuple[str, int]]:
        """(piece, id) per token; an unseen token shows its own text with the fallback id."""
        out = []
        for full in guarded(self.enc.encode_ordinary, text):
            piece = self.enc.decode_single_token_bytes(full).decode("utf-8", errors="replace")
            out.append((piece, full if self._to_compact is None else self._to_compact.get(full, self.unk_id)))
        return out

    def spec(self) -> dict:
        """{'type', 'version', 'kept_ids' (None: full vocabulary)}; a trained 'bpe' adds 'pattern'
        and 'tokens': base64 of the tokens of rank 256, 257, ... (ranks 0-255 are the bytes)."""
        return {**self.source, "version": 1, "kept_ids": self.kept}

    def describe(self) -> str:
        if self.kept is None:
            return super().describe()
        return f"{self.name}, compact ({self.vocab_size:,} of {self.full_vocab_size:,} tokens)"


def pretrained(kind: str, text: str | None = None, *, compact: bool = True) -> BPETokenizer:
    """A published vocabulary; compacted to the ids `text` uses unless compact=False."""
    enc = load_encoding(kind)
    if not compact:
        return BPETokenizer(enc, {"type": kind})
    kept = sorted(set(enc.encode_ordinary(text or "")))
    if not kept:
        raise TokenizerError("A compact vocabulary needs a non-empty corpus to choose its tokens from.")
    return BPETokenizer(enc, {"type": kind}, kept)


# ----------------------------------------------------------------------------
# Training a BPE on the corpus with rustbpe; tiktoken then encodes with its ranks.

_CUT = re.compile(r"\n(?=\S)")  # no split-pattern piece spans a newline followed by a non-space


def _chunks(text: str, size: int = 1 << 16) -> list[str]:
    """Cut the corpus where the split pattern would cut anyway: same counts, visible progress."""
    out, pos = [], 0
    while pos < len(text):
        m = _CUT.search(text, pos + size)
        end = m.end() if m else len(text)
        out.append(text[pos:end])
        pos = end
    return out


def _encoding_from_tokens(pattern: str, tokens: list[bytes]) -> tiktoken.Encoding:
    ranks = {bytes([b]): b for b in range(256)}
    ranks.update((tok, 256 + k) for k, tok in enumerate(tokens))
    if len(ranks) != 256 + len(tokens):
        raise TokenizerError("The trained BPE description repeats a token; it is damaged.")
    return guarded(tiktoken.Encoding, name="bpe", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})


def train(text: str, vocab_size: int | None = None, progress: Progress | None = None) -> BPETokenizer:
    """Learn `vocab_size` - 256 merges from `text` (fewer if the text runs out of pairs)."""
    import rustbpe

    lo, hi = BPE_VOCAB_RANGE
    vocab_size = DEFAULT_BPE_VOCAB if vocab_size is None else vocab_size
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or not lo <= vocab_size <= hi:
        raise TokenizerError(f"The BPE vocabulary size must be a whole number from {lo:,} to {hi:,}; "
                             f"got {vocab_size!r}.")
    if not text:
        raise TokenizerError("BPE training needs a non-empty corpus.")
    report = progress or (lambda fraction, message: None)
    chunks = _chunks(text)

    def feed():  # rustbpe pulls these under the GIL, between its parallel counting passes
        for k, chunk in enumerate(chunks):
            report(0.8 * k / len(chunks), f"Counting pairs: {k}/{len(chunks)} chunks")
            yield chunk
        report(0.8, f"Merging the most frequent pairs, up to {vocab_size:,} tokens")

    report(0.0, f"Training a {vocab_size:,}-token BPE on {len(text):,} characters")
    trainer = rustbpe.Tokenizer()
    trainer.train_from_iterator(feed(), vocab_size, buffer_size=2, pattern=GPT4_PATTERN)
    ranked = sorted(trainer.get_mergeable_ranks(), key=lambda pair: pair[1])
    assert all(tok == bytes([r]) for tok, r in ranked[:256]), "rustbpe puts the 256 bytes first"
    tokens = [tok for tok, _ in ranked[256:]]
    source = {"type": "bpe", "pattern": GPT4_PATTERN,
              "tokens": [base64.b64encode(t).decode("ascii") for t in tokens]}
    tok = BPETokenizer(_encoding_from_tokens(GPT4_PATTERN, tokens), source)
    short = f" (the corpus ran out of pairs before {vocab_size:,})" if tok.vocab_size < vocab_size else ""
    report(1.0, f"Trained a BPE with {tok.vocab_size:,} tokens{short}")
    return tok


# ----------------------------------------------------------------------------
# The two entry points `gpt.tokenizers` calls.

def build(kind: str, text: str, *, vocab_size: int | None = None, compact: bool = True,
          progress: Progress | None = None) -> Tokenizer:
    """Make a BPE tokenizer of `kind` for the corpus `text` (see `gpt.tokenizers.build_tokenizer`)."""
    if kind == "bpe":
        return train(text, vocab_size, progress)
    if kind not in PRETRAINED:
        raise TokenizerError(f"Unknown tokenizer {kind!r}; choose one of char, bpe, {', '.join(PRETRAINED)}.")
    if progress:
        progress(0.0, f"Loading the {kind} vocabulary")
    tok = pretrained(kind, text, compact=compact)
    if progress:
        progress(1.0, f"Loaded {tok.describe()}")
    return tok


def from_spec(spec: dict) -> Tokenizer:
    """Rebuild from `spec()`: published ranks by name, trained ranks from the spec itself."""
    kind = spec.get("type")
    kept = spec.get("kept_ids")
    if kept is not None and (not isinstance(kept, list) or not all(isinstance(i, int) for i in kept)):
        raise TokenizerError("The tokenizer description's 'kept_ids' must be a list of token ids.")
    if kind in PRETRAINED:
        enc = load_encoding(kind)
        if kept is not None and (not kept or len(kept) > enc.n_vocab or kept != sorted(set(kept))
                                 or kept[0] < 0 or kept[-1] >= enc.n_vocab):
            raise TokenizerError(f"The tokenizer description's 'kept_ids' are not distinct sorted {kind} ids.")
        return BPETokenizer(enc, {"type": kind}, kept)
    if kind == "bpe":
        pattern, tokens = check_trained_spec(spec, TRAINED_PATTERNS, BPE_VOCAB_RANGE[1] - 256)
        if kept is not None and (len(kept) > len(tokens) + 256 or kept != sorted(set(kept))
                                 or (kept and not 0 <= kept[0] <= kept[-1] < len(tokens) + 256)):
            raise TokenizerError("The tokenizer description's 'kept_ids' are not distinct sorted token ids.")
        source = {"type": "bpe", "pattern": pattern, "tokens": list(spec["tokens"])}
        return BPETokenizer(_encoding_from_tokens(pattern, tokens), source, kept)
    raise TokenizerError(f"Unknown tokenizer type {kind!r} in the tokenizer description.")


# ----------------------------------------------------------------------------
# Streaming: print generated text as it comes, never half a character.
