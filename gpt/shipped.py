"""Data the package ships, gzipped in `gpt/assets/`, so a classroom with no network has it.

Two files: Tiny Shakespeare (`gpt.data`, the default corpus) and GPT-2's BPE
ranks (`gpt.bpe`, the r50k_base file tiktoken would download). Each is held
to the sha256 of the file it stands for: a damaged or edited copy is as good
as none, and the caller falls back to its download.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"


def read(path: Path, sha256: str) -> bytes | None:
    """The shipped file at `path` (a .gz in gpt/assets/), unpacked, if it is there and its sha256 is `sha256`; else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None
