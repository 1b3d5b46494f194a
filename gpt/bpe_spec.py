"""A trained BPE's description, checked before tiktoken sees it, and tiktoken kept on a leash.

A checkpoint carries its trained BPE as a split pattern and a list of tokens.
An uploaded checkpoint can carry anything there: a regular expression with
backreferences makes tiktoken's Rust regex engine panic, and a panic comes
out as `pyo3_runtime.PanicException`, a `BaseException` that sails past
`except Exception` and left /generate hanging. So:

- the pattern must be one we write (`gpt.bpe` passes its own four);
- the tokens must be base64 of 2 to 4,096 bytes, distinct, at most the
  largest BPE vocabulary, and each the merge of two earlier tokens (what
  a byte-pair merge order is; rustbpe's always are);
- `guarded` runs any tiktoken call and turns whatever escapes it into a
  `TokenizerError` sentence.
"""

from __future__ import annotations

import base64
import binascii
from typing import Callable, Iterable, TypeVar

from .errors import TokenizerError

MAX_TOKEN_BYTES = 4096
T = TypeVar("T")


def guarded(fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args), with anything tiktoken raises, its Rust panics included, as a TokenizerError."""
    try:
        return fn(*args, **kwargs)
    except TokenizerError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as err:  # noqa: BLE001 - PanicException derives from BaseException
        raise TokenizerError(f"The BPE tokenizer failed on this text ({type(err).__name__}); "
                             "its description is probably damaged.") from None


def _decode(token) -> bytes:
    if not isinstance(token, str):
        raise TokenizerError("The trained BPE description's tokens must be base64 text.")
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise TokenizerError("The trained BPE description holds a token that is not base64; it is damaged.") from None
    if not 2 <= len(raw) <= MAX_TOKEN_BYTES:
        raise TokenizerError(f"The trained BPE description holds a token of {len(raw):,} bytes; "
                             f"a merged token has 2 to {MAX_TOKEN_BYTES:,}.")
    return raw


def check_trained_spec(spec: dict, patterns: Iterable[str], max_tokens: int) -> tuple[str, list[bytes]]:
    """(pattern, token bytes in rank order 256, 257, ...) of a trained BPE spec, or a TokenizerError."""
    pattern, tokens = spec.get("pattern"), spec.get("tokens")
    if pattern not in tuple(patterns):
        raise TokenizerError("The trained BPE description has a split pattern this program never writes; "
                             "it was not made here or it is damaged.")
    if not isinstance(tokens, list):
        raise TokenizerError("The trained BPE description's 'tokens' must be a list.")
    if len(tokens) > max_tokens:
        raise TokenizerError(f"The trained BPE description has {len(tokens):,} tokens, more than the "
                             f"{max_tokens:,} a trained BPE may have.")
    known = {bytes([b]) for b in range(256)}
    out = []
    for token in tokens:
        raw = _decode(token)
        if raw in known:
            raise TokenizerError("The trained BPE description repeats a token; it is damaged.")
        if not any(raw[:i] in known and raw[i:] in known for i in range(1, len(raw))):
            raise TokenizerError("The trained BPE description holds a token that is not a merge of two earlier "
                                 "tokens; it is damaged.")
        known.add(raw)
        out.append(raw)
    return pattern, out
