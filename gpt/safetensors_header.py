"""A safetensors header, read by hand and checked entry by entry before anything is allocated.

A safetensors file is 8 bytes of header length, a JSON header, then the raw
tensor bytes. The header names each tensor's dtype, shape and byte range.
An uploaded or downloaded file may lie in every field, so before the
library reads a byte of weights we check that:

- the file is a regular file (a FIFO would block the reader forever);
- the header is a JSON object of bounded size and depth;
- `__metadata__` maps text to text;
- every tensor has a known dtype, a shape of whole numbers and a byte
  range exactly as long as that shape needs, the ranges tile the data
  from its first byte without gaps or overlaps, and the file holds them.

Every refusal is a `CheckpointError` that names the file (never its folder).
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from pathlib import Path

from .errors import CheckpointError

MAX_HEADER_BYTES = 16 * 2**20  # a checkpoint's header holds its config; a 16k-token BPE is ~0.3 MB
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def check_regular_file(path: Path, what: str = "The checkpoint") -> int:
    """The file's size, or a sentence if it is missing or not a regular file (FIFO, device, folder)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{what} {path.name} does not exist.") from None
    except OSError as err:
        raise CheckpointError(f"{what} {path.name} cannot be read ({err.strerror or err}).") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a pipe or a device)"
        raise CheckpointError(f"{what} {path.name} is {kind}; give a .safetensors file.")
    return info.st_size


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_entry(name: str, entry, where: str) -> tuple[int, int]:
    if not isinstance(entry, dict):
        raise CheckpointError(f"{where}: the header entry for '{name[:60]}' is not an object; the file is corrupt.")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise CheckpointError(f"{where}: tensor '{name[:60]}' has an unknown dtype {str(dtype)[:20]!r}; the file is corrupt.")
    if not isinstance(shape, list) or len(shape) > 8 or not all(_whole(d) for d in shape):
        raise CheckpointError(f"{where}: tensor '{name[:60]}' has a shape that is not a list of whole numbers.")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_whole(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise CheckpointError(f"{where}: tensor '{name[:60]}' has bad data offsets; the file is corrupt.")
    if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise CheckpointError(f"{where}: tensor '{name[:60]}' has {offsets[1] - offsets[0]:,} bytes of data but its "
                              f"shape {tuple(shape)} needs {math.prod(shape) * DTYPE_BYTES[dtype]:,}; the file is corrupt.")
    return offsets[0], offsets[1]


def _parse(raw: bytes, where: str) -> dict:
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError; deep nesting recurses
        raise CheckpointError(f"{where} has a corrupt header; it is not a valid safetensors file.") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where} has a header that is not a JSON object; it is not a valid safetensors file.")
    if header.get("__metadata__") is None:
        header["__metadata__"] = {}
    meta = header["__metadata__"]
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"{where}: its __metadata__ must map names to text; the file is corrupt.")
    return header


def read_header(path: str | os.PathLike) -> dict:
    """The header, every tensor entry checked against the file's size (see the module docstring)."""
    path = Path(path)
    size = check_regular_file(path)
    where = path.name
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{where} is truncated ({size} bytes); it is not a complete safetensors file.")
        (n,) = struct.unpack("<Q", head)
        if head[:2] == b"\x80\x02" or head[:1] == b"PK" or n > MAX_HEADER_BYTES or n + 8 > size:
            raise CheckpointError(
                f"{where} is not a safetensors file (a pickle or zip from torch.save, or a truncated file). "
                "Only safetensors checkpoints are accepted; pickles are never loaded because they can run code."
            )
        header = _parse(f.read(n), where)
    ranges = sorted(_check_entry(k, v, where) for k, v in header.items() if k != "__metadata__")
    end = 0
    for begin, stop in ranges:
        if begin != end:
            raise CheckpointError(f"{where}: its tensors' data offsets overlap or leave gaps; the file is corrupt.")
        end = stop
    if 8 + n + end > size:
        raise CheckpointError(f"{where} is truncated: it needs {8 + n + end} bytes but has {size}.")
    return header


def tensor_shapes(header: dict) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
