"""Tokenizers: text <-> integer ids, all behind one small interface.

The lecture's trade-off lives here: a character tokenizer has a small
codebook and long sequences; a BPE tokenizer has a large vocabulary and
short sequences. Every tokenizer offers the same five things:

- `encode(text) -> list[int]` and `decode(ids) -> str`
- `vocab_size`
- `pieces(text)`: the (piece text, id) pairs, for coloured display
- `spec()`: a JSON-able dict that rebuilds the tokenizer exactly, with no
  corpus, through `tokenizer_from_spec` (it is saved in every checkpoint)

The BPE tokenizers (GPT-2 through tiktoken, and BPE trained on your own
text) live in `gpt.bpe`; this module knows them only by their spec `type`.
"""

from __future__ import annotations

from typing import Callable

from .errors import TokenizerError


MAX_CHAR_VOCAB = 0x110000  # every Unicode code point


class Tokenizer:
    """The shared interface. Subclasses set `name` and implement the methods."""

    name: str = "base"

    @property
    def vocab_size(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:  # pragma: no cover - interface
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def pieces(self, text: str) -> list[tuple[str, int]]:
        """(piece, id) per token. Pieces that are partial UTF-8 show as U+FFFD."""
        ids = self.encode(text)
        return [(self.decode([i]), i) for i in ids]

    def spec(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({self.vocab_size:,} tokens)"


class CharTokenizer(Tokenizer):
    """One token per distinct character of the corpus, sorted (the lecture's `stoi`/`itos`)."""

    name = "char"

    def __init__(self, chars: list[str] | str):
        chars = sorted(set(chars))
        if not chars:
            raise TokenizerError("The character tokenizer needs a non-empty text to build its vocabulary from.")
        self.chars = chars
        self.stoi = {ch: i for i, ch in enumerate(chars)}
        self.itos = {i: ch for i, ch in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def unknown_chars(self, text: str) -> list[str]:
        return sorted({ch for ch in text if ch not in self.stoi})

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[ch] for ch in text]
        except KeyError:
            unknown = self.unknown_chars(text)
            shown = ", ".join(repr(ch) for ch in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
            raise TokenizerError(
                f"The text contains {len(unknown)} character(s) this character-level model never saw "
                f"in its training corpus: {shown}. Remove them or train on a corpus that has them."
            ) from None

    def decode(self, ids: list[int]) -> str:
        try:
            return "".join(self.itos[int(i)] for i in ids)
        except KeyError as err:
            raise TokenizerError(f"Token id {err.args[0]} is outside this vocabulary of {self.vocab_size}.") from None

    def pieces(self, text: str) -> list[tuple[str, int]]:
        return list(zip(text, self.encode(text)))

    def spec(self) -> dict:
        return {"type": "char", "chars": "".join(self.chars)}


def tokenizer_from_spec(spec: dict) -> Tokenizer:
    """Rebuild a tokenizer from `Tokenizer.spec()` output, without the corpus."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise TokenizerError("The tokenizer description is missing or has no 'type'.")
    kind = spec["type"]
    if kind == "char":
        chars = spec.get("chars")
        if not isinstance(chars, str) or len(chars) > MAX_CHAR_VOCAB:
            raise TokenizerError("The character tokenizer's description must hold its characters as one text "
                                 f"of at most {MAX_CHAR_VOCAB:,}; it is damaged.")
        return CharTokenizer(list(chars))
    if kind == "chat":  # a text tokenizer plus chat special tokens (gpt.chat.tokenizer)
        from .chat.tokenizer import chat_tokenizer_from_spec

        return chat_tokenizer_from_spec(spec)
    from . import bpe  # BPE tokenizers need tiktoken; import only when asked

    return bpe.from_spec(spec)


TOKENIZER_KINDS = ("char", "gpt2", "bpe")


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
    from . import bpe

    return bpe.build(kind, text, vocab_size=vocab_size, compact=compact, progress=progress)
