"""Every kind of tokenizer by name: build one for a text, or rebuild one from the description a checkpoint keeps.

`gpt.tokenizer` holds the interface and the lecture's character tokenizer,
`gpt.bpe` the byte-pair encodings (GPT-2's through tiktoken, and BPE trained
on your own text), `gpt.chat.tokenizer` the chat's special tokens over any of
them; none knows the others. This module knows them all.
"""

from __future__ import annotations

from typing import Callable

from . import bpe
from .chat.tokenizer import chat_tokenizer_from_spec
from .errors import TokenizerError
from .tokenizer import MAX_CHAR_VOCAB, CharTokenizer, Tokenizer

TOKENIZER_KINDS = ("char", "gpt2", "bpe")


def tokenizer_from_spec(spec: dict) -> Tokenizer:
    """Rebuild a tokenizer from `Tokenizer.spec()` output, without the corpus."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise TokenizerError("The tokenizer description is missing or has no 'type'.")
    if spec["type"] == "char":
        chars = spec.get("chars")
        if not isinstance(chars, str) or len(chars) > MAX_CHAR_VOCAB:
            raise TokenizerError("The character tokenizer's description must hold its characters as one text "
                                 f"of at most {MAX_CHAR_VOCAB:,}; it is damaged.")
        return CharTokenizer(list(chars))
    if spec["type"] == "chat":  # a text tokenizer plus the chat's special tokens
        return chat_tokenizer_from_spec(spec, tokenizer_from_spec)
    return bpe.from_spec(spec)


def build_tokenizer(
    kind: str,
    text: str,
    *,
    vocab_size: int | None = None,
    compact: bool = True,
    progress: Callable[[float, str], None] | None = None,
) -> Tokenizer:
    """Make the tokenizer `kind` for the corpus `text`.

    kind: 'char'; 'gpt2' (also 'cl100k_base', 'o200k_base'), a tiktoken
    encoding, compacted to the ids seen in `text` unless compact=False; or
    'bpe', a byte-level BPE trained on `text` to `vocab_size` tokens.
    """
    if kind == "char":
        return CharTokenizer.from_text(text)
    return bpe.build(kind, text, vocab_size=vocab_size, compact=compact, progress=progress)
