"""Corpora, encoding once, the 90/10 split and `get_batch`.

A corpus is just a string. It comes from Tiny Shakespeare (shipped in the
package, gzipped, and checked against its sha256; a copy in $GPT_DATA_DIR
wins, and a download is the last resort), a UTF-8 file, pasted text, or a
built-in synthetic task that learns in seconds.

`Dataset` encodes the corpus once into a tensor, splits it 90/10 into
train and val, and `get_batch(split)` draws random (B, T) windows x with
targets y shifted one position to the right, as in the lecture.
"""

from __future__ import annotations

import hashlib
import os
import random
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from . import shipped
from .errors import DataError
from .tokenizer import Tokenizer
from .tokenizers import build_tokenizer

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_FILE = "tinyshakespeare.txt"
SHIPPED_SHAKESPEARE = shipped.ASSETS / "tinyshakespeare.txt.gz"  # 434 KB
DEFAULT_MAX_BYTES = int(os.environ.get("GPT_MAX_UPLOAD_MB", "50")) * 1024 * 1024


def data_dir() -> Path:
    """The folder corpora are downloaded to: $GPT_DATA_DIR, else ./data."""
    return Path(os.environ.get("GPT_DATA_DIR", "data"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download_shakespeare(timeout: float = 20.0) -> Path:
    """Return the path of Tiny Shakespeare, downloading it once if needed."""
    folder = data_dir()
    path = folder / SHAKESPEARE_FILE
    if path.exists():
        if _sha256(path) == SHAKESPEARE_SHA256:
            return path
        raise DataError(
            f"{path} exists but is not Tiny Shakespeare (its sha256 differs). Delete it and it will be downloaded again."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(SHAKESPEARE_URL, timeout=timeout) as resp:
            payload = resp.read()
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise DataError(
            f"Could not download Tiny Shakespeare ({err}). Without internet, put the file at "
            f"{path.resolve()} (or set GPT_DATA_DIR to a folder holding {SHAKESPEARE_FILE})."
        ) from None
    if hashlib.sha256(payload).hexdigest() != SHAKESPEARE_SHA256:
        raise DataError("The downloaded Tiny Shakespeare does not match its sha256; try again later.")
    tmp = path.with_suffix(".part")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
    return path


def shakespeare_text() -> str:
    """Tiny Shakespeare: the copy in $GPT_DATA_DIR if there is one, else the package's own, else downloaded once.

    The package ships it (gzipped) so the default corpus, the Lesson and the
    ladder work offline and without GPT_DATA_DIR; each copy is held to the sha256.
    """
    if not (data_dir() / SHAKESPEARE_FILE).exists():
        raw = shipped.read(SHIPPED_SHAKESPEARE, SHAKESPEARE_SHA256)
        if raw is not None:
            return raw.decode("utf-8")
    return read_text_file(download_shakespeare(), max_bytes=10**9)  # checked there; a damaged shipped copy too


# --- built-in synthetic corpora: no download, learn in seconds ---------------------------


def addition_corpus(n: int = 20000, digits: int = 2, seed: int = 1337) -> str:
    """Lines like '37+45=82': a model learns carrying from examples alone."""
    rng = random.Random(seed)
    hi = 10**digits
    return "".join(f"{a}+{b}={a + b}\n" for a, b in ((rng.randrange(hi), rng.randrange(hi)) for _ in range(n)))


def reverse_corpus(n: int = 20000, length: int = 6, seed: int = 1337) -> str:
    """Lines like 'hello>olleh': the model must attend back to copy in reverse order."""
    rng = random.Random(seed)
    letters = "abcdefghij"
    lines = []
    for _ in range(n):
        word = "".join(rng.choice(letters) for _ in range(rng.randint(3, length)))
        lines.append(f"{word}>{word[::-1]}\n")
    return "".join(lines)


def counting_corpus(n: int = 4000, seed: int = 1337) -> str:
    """Runs of consecutive numbers, '17 18 19 20': the simplest pattern to pick up."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        start = rng.randrange(0, 990)
        lines.append(" ".join(str(start + i) for i in range(8)) + "\n")
    return "".join(lines)


SYNTHETIC = {"addition": addition_corpus, "reverse": reverse_corpus, "counting": counting_corpus}


def check_text(text: str, source: str = "The text") -> str:
    if not text:
        raise DataError(f"{source} is empty; give a text of at least a few hundred characters.")
    if not text.strip():
        raise DataError(f"{source} holds only whitespace; give a text with words in it.")
    return text


def read_text_file(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Read a UTF-8 text file with clear errors for missing, huge, binary or non-UTF-8 files."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"No text file at {p}.")
    size = p.stat().st_size
    if size > max_bytes:
        raise DataError(
            f"{p.name} is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit "
            "(GPT_MAX_UPLOAD_MB); use a smaller file or raise the limit."
        )
    raw = p.read_bytes()
    if b"\x00" in raw[:8192]:
        raise DataError(f"{p.name} looks like a binary file (it contains NUL bytes), not text; upload a UTF-8 .txt file.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{p.name} is not UTF-8 text (bad byte at position {err.start}); save it as UTF-8 and try again."
        ) from None
    return check_text(text.lstrip("\ufeff"), p.name)


def corpus_file(source: str) -> Path | None:
    """None for a built-in corpus ('shakespeare', a synthetic name), else the text file `source` names.

    A name that is neither says which: a path that is not there is a missing
    file, not an unknown corpus."""
    if source == "shakespeare" or source in SYNTHETIC:
        return None
    if os.path.exists(source):
        return Path(source)
    builtin = f"'shakespeare', {', '.join(repr(s) for s in SYNTHETIC)}"
    if os.sep in source or "/" in source or Path(source).suffix:
        raise DataError(f"There is no file at {source}: check the path, or use a built-in corpus ({builtin}).")
    raise DataError(f"Unknown corpus '{source}': use {builtin}, or the path of a UTF-8 text file.")


def load_corpus(source: str) -> tuple[str, str]:
    """Return (name, text) for 'shakespeare', a synthetic name, or a file path."""
    path = corpus_file(source)
    if path is not None:
        return path.name, read_text_file(path)
    if source == "shakespeare":
        return "shakespeare", shakespeare_text()
    return source, SYNTHETIC[source]()


@dataclass
class SplitInfo:
    n_chars: int
    n_tokens: int
    n_train: int
    n_val: int
    vocab_size: int
    chars_per_token: float


def check_windows(name: str, n_train: int, n_val: int, block_size: int) -> None:
    """DataError unless both splits hold one full window of block_size + 1 tokens."""
    shortest = min(n_train, n_val)
    if shortest < block_size + 1:
        which = "validation" if n_val < n_train else "training"
        raise DataError(
            f"The corpus '{name}' is too short: its {which} split has {shortest} tokens but a block size of "
            f"{block_size} needs at least {block_size + 1}. Use a longer text (about "
            f"{10 * (block_size + 1)} tokens) or a smaller block size."
        )


def split_sizes(n_tokens: int, val_fraction: float = 0.1) -> tuple[int, int]:
    """(train, val) token counts of the 90/10 split."""
    n = int((1 - val_fraction) * n_tokens)
    return n, n_tokens - n


class Dataset:
    """A corpus encoded once into a tensor, split 90/10, served as (B, T) batches."""

    def __init__(self, text: str, tokenizer: Tokenizer, name: str = "text", val_fraction: float = 0.1):
        check_text(text, f"The corpus '{name}'")
        self.name = name
        self.tokenizer = tokenizer
        ids = tokenizer.encode(text)
        self.data = torch.tensor(ids, dtype=torch.long)  # (N,)
        n, _ = split_sizes(len(self.data), val_fraction)
        self.train_data = self.data[:n]
        self.val_data = self.data[n:]
        n_train_chars = len(tokenizer.decode(ids[:n]))
        self.chars = len(text)
        # bits per character needs characters per token on the validation split
        self.val_chars_per_token = max(1e-9, (len(text) - n_train_chars) / max(1, len(self.val_data)))
        self._device_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def info(self) -> SplitInfo:
        return SplitInfo(
            n_chars=self.chars,
            n_tokens=len(self.data),
            n_train=len(self.train_data),
            n_val=len(self.val_data),
            vocab_size=self.tokenizer.vocab_size,
            chars_per_token=self.chars / max(1, len(self.data)),
        )

    def check_block_size(self, block_size: int) -> None:
        """Both splits need at least one full window of block_size + 1 tokens."""
        check_windows(self.name, len(self.train_data), len(self.val_data), block_size)

    def _split(self, split: str, device: str) -> torch.Tensor:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        if device not in self._device_cache:  # move the data to the device once, not per batch
            self._device_cache[device] = (self.train_data.to(device), self.val_data.to(device))
        train, val = self._device_cache[device]
        return train if split == "train" else val

    def get_batch(
        self,
        split: str,
        batch_size: int,
        block_size: int,
        device: str = "cpu",
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows: x (B, T) and y (B, T), y[b, t] = x[b, t + 1]."""
        data = self._split(split, device)
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
        offsets = ix.to(device)[:, None] + torch.arange(block_size + 1, device=device)  # (B, T+1)
        chunk = data[offsets]  # one vectorised gather instead of B slices
        return chunk[:, :-1], chunk[:, 1:]
