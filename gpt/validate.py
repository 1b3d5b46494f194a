"""Checking one value at the boundary: its type and its range, in one sentence.

Values reach the core from a form, a JSON API, a CLI flag or a checkpoint's
metadata, so any of them may be a string, a list, NaN, infinity or 10**30.
Each helper takes the value, the name a person knows the field by, and the
bounds; it returns the value in its proper type or raises the given
`GPTError` subclass with a sentence that names the field and what to do.
`bool` is never a number here (JSON's `true` is not 1 layer).

    whole(value, "n_layer", 1, 64)           -> int
    number(value, "lr", 0, 10, low_open=True) -> float, finite
    text(value, "prompt", max_len=100_000)   -> str
    choice(value, "optimizer", ("adamw", "muon"))
    flag(value, "bias")                      -> bool
"""

from __future__ import annotations

import math
from typing import Iterable

from .errors import ConfigError, GPTError

INT64_MAX = 2**63 - 1


def is_whole(value) -> bool:
    """An int, or a float with no fraction (JSON sends 300.0); never a bool, NaN or infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not isinstance(value, float) or (math.isfinite(value) and value == int(value))


def shown(value) -> str:
    """A value as a message may quote it: a number readably (1,000,000; 1e+308), else its repr cut to 40 characters.

    A pasted megabyte is not echoed, nor is int(1e308) as its 309 digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) < 10**15:
            return f"{value:,}"
        exponent = math.log10(abs(value))  # exact enough for any int, however long
        return f"{float(value):.3g}" if exponent < 300 else f"about {'-' if value < 0 else ''}1e+{int(exponent)}"
    if isinstance(value, float):
        return f"{int(value):,}" if math.isfinite(value) and value == int(value) and abs(value) < 1e15 else f"{value:g}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def whole(value, field: str, lo: int | None = None, hi: int | None = None, *,
          error: type[GPTError] = ConfigError, hint: str = "") -> int:
    """A whole number in [lo, hi]; an integral float (3.0, as JSON may send it) counts as whole."""
    tail = f" {hint}" if hint else ""
    kind = "a positive whole number" if lo == 1 else "a whole number"
    if not is_whole(value):
        raise error(f"{field} must be {kind}, got {shown(value)}.{tail}")
    value = int(value)
    if lo is not None and value < lo:
        raise error(f"{field} must be {kind if lo == 1 else f'at least {lo:,}'}, got {shown(value)}.{tail}")
    if hi is not None and value > hi:
        raise error(f"{field} must be at most {hi:,}, got {shown(value)}.{tail}")
    return value


def number(value, field: str, lo: float | None = None, hi: float | None = None, *, low_open: bool = False,
           high_open: bool = False, error: type[GPTError] = ConfigError, hint: str = "") -> float:
    """A finite number in [lo, hi] (or (lo, hi] with low_open, [lo, hi) with high_open)."""
    tail = f" {hint}" if hint else ""
    kind = "a positive number" if lo == 0 and low_open else "a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise error(f"{field} must be {kind}, got {shown(value)}.{tail}")
    value = float(value)
    if lo is not None and (value < lo or (low_open and value == lo)):
        bound = kind if lo == 0 and low_open else f"at least {lo:g}"
        raise error(f"{field} must be {bound}, got {value:g}.{tail}")
    if hi is not None and (value > hi or (high_open and value == hi)):
        raise error(f"{field} must be {'below' if high_open else 'at most'} {hi:g}, got {value:g}.{tail}")
    return value


def text(value, field: str, max_len: int | None = None, *, error: type[GPTError] = ConfigError) -> str:
    """A string of at most max_len characters."""
    if not isinstance(value, str):
        raise error(f"{field} must be text, got {type(value).__name__} {shown(value)}.")
    if max_len is not None and len(value) > max_len:
        raise error(f"{field} is {len(value):,} characters long, over the limit of {max_len:,}; shorten it.")
    return value


def choice(value, field: str, options: Iterable[str], *, error: type[GPTError] = ConfigError) -> str:
    """One of `options`, exactly."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise error(f"{field} must be one of {', '.join(repr(o) for o in options)}, got {shown(value)}.")
    return value


def flag(value, field: str, *, error: type[GPTError] = ConfigError) -> bool:
    """True or False (JSON's true/false), nothing else."""
    if not isinstance(value, bool):
        raise error(f"{field} must be true or false, got {shown(value)}.")
    return value
