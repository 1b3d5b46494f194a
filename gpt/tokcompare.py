"""Side-by-side numbers for the tokenizer trade-off, and the metric that makes it fair.

A bigger vocabulary cuts text into fewer, longer tokens (more characters per
token) but costs `vocab_size * n_embd` embedding parameters. Loss per token is
not comparable across tokenizers, because a token means a different amount of
text in each; bits per character is: bpc = loss_per_token / ln 2 / chars_per_token.
"""

from __future__ import annotations

import math

from .errors import TokenizerError
from .tokenizer import Tokenizer


def chars_per_token(tokenizer: Tokenizer, text: str) -> float:
    """Average characters of `text` per token: the tokenizer's compression."""
    n = len(tokenizer.encode(text))
    if n == 0:
        raise TokenizerError("Characters per token needs a non-empty text.")
    return len(text) / n


def bits_per_char(loss_per_token: float, chars_per_token: float) -> float:
    """Cross-entropy per token (in nats) turned into bits per character of text."""
    return loss_per_token / math.log(2) / chars_per_token


def compare_tokenizers(text: str, tokenizers: dict[str, Tokenizer], n_embd: int = 128) -> list[dict]:
    """One row per tokenizer: its pieces of `text`, their count, compression and embedding cost.

    A tokenizer that cannot encode the text (a character vocabulary missing a
    character) gets a row with an 'error' sentence instead of failing the table.
    """
    rows = []
    for name, tok in tokenizers.items():
        row = {"name": name, "vocab_size": tok.vocab_size, "embedding_params": tok.vocab_size * n_embd}
        try:
            pieces = tok.pieces(text)
        except TokenizerError as err:
            rows.append({**row, "pieces": [], "n_tokens": None, "chars_per_token": None, "error": str(err)})
            continue
        rows.append({**row, "pieces": pieces, "n_tokens": len(pieces),
                     "chars_per_token": len(text) / len(pieces) if pieces else None, "error": None})
    return rows
