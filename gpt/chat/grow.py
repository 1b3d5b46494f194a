"""Any run made into a chat model: new token rows for the chat tokens and for what the data brings.

`chat_model(model, tokenizer, data) -> Grown(model, tokenizer, note)` is the
whole step, from a saved run (`gpt.checkpoint.load_checkpoint`) and the
conversations it will be fine-tuned on (a task, a file, or a list of
conversations):

1. the tokenizer grows. The chat tokens come after the text vocabulary
   (`gpt.chat.tokenizer`). A character model gets the characters the data uses
   and it lacks (Tiny Shakespeare has no '+', '2', '5' or '9'); a compact
   GPT-2 vocabulary (the ids one corpus used, plus a fallback) gets the GPT-2
   tokens the data needs. Byte-level BPE, trained or GPT-2's full vocabulary,
   already encodes any text: it gets the chat tokens only. A run that is a chat
   model already gets only what is missing.
2. every old token keeps its row, and every new row starts as the mean of the
   old rows, in the embedding and (when untied) in the LM head. So before any
   training every old token's logit is what it was: a token's logit is its
   head row times the final hidden state, and a hidden state depends only on
   the rows of the tokens read.
3. The text vocabulary stays in its canonical order (characters sorted,
   compact ids in GPT-2's order, the fallback last) so every export keeps
   working; a new character or GPT-2 token may therefore land between old ones.
   Then the old rows MOVE, each to its token's new id, exactly (a test checks
   every logit); the chat tokens always follow the text.

The note says what was added, in a sentence the page can show.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterable

import torch
import torch.nn as nn

from ..bpe import BPETokenizer
from ..errors import ConfigError
from ..model import GPT, build_model
from ..tokenizer import CharTokenizer, Tokenizer
from .conversation import Example
from .tokenizer import SPECIALS, ChatTokenizer, base_of

if TYPE_CHECKING:  # pragma: no cover
    from ..limits import Limits

SHOWN = 40  # new characters or tokens named in the note
KIND_NAMES = {"gpt2": "GPT-2", "bpe": "BPE", "cl100k_base": "cl100k", "o200k_base": "o200k"}


@dataclass
class Grown:
    model: nn.Module
    tokenizer: ChatTokenizer
    note: str


def data_texts(data) -> Iterable[str]:
    """Every text the data can put in a message: a task's coverage, or the contents of given conversations."""
    if hasattr(data, "coverage"):
        yield from data.coverage()
        return
    for conversation in data:
        messages = conversation.messages if isinstance(conversation, Example) else conversation
        yield from (m["content"] for m in messages)


def grown_base(base: Tokenizer, texts: Iterable[str]) -> tuple[Tokenizer, list[str], str]:
    """(the base with what `texts` need, the added pieces as text, what a piece is called)."""
    if isinstance(base, CharTokenizer):
        needed: set[str] = set()
        for text in texts:
            needed.update(text)
        added = sorted(needed - set(base.chars))
        return (CharTokenizer(base.chars + added) if added else base), added, "characters"
    if isinstance(base, BPETokenizer) and base.compact:
        needed_ids: set[int] = set()
        for text in texts:
            needed_ids.update(base.enc.encode_ordinary(text))
        added_ids = sorted(needed_ids - set(base.kept))
        if not added_ids:
            return base, [], ""
        pieces = [base.enc.decode_single_token_bytes(i).decode("utf-8", errors="replace") for i in added_ids]
        grown = BPETokenizer(base.enc, base.source, sorted(set(base.kept) | set(added_ids)))
        return grown, pieces, f"{KIND_NAMES.get(base.name, base.name)} tokens"
    return base, [], ""  # byte-level BPE over its full vocabulary: any text encodes already


def old_to_new_ids(old: Tokenizer, new: ChatTokenizer) -> torch.Tensor:
    """new id of every old id, (old vocab,): text tokens by their text, chat tokens by name."""
    old_base, new_base = base_of(old), new.base
    if isinstance(old_base, CharTokenizer):
        text = [new_base.stoi[ch] for ch in old_base.chars]
    elif isinstance(old_base, BPETokenizer) and old_base.compact:
        position = {full: i for i, full in enumerate(new_base.kept)}
        text = [position[full] for full in old_base.kept] + [new_base.unk_id]
    else:
        text = list(range(old_base.vocab_size))
    specials = [new.special_ids[name] for name in old.specials] if isinstance(old, ChatTokenizer) else []
    return torch.tensor(text + specials, dtype=torch.long)


def resized(model: GPT, old_to_new: torch.Tensor, vocab_size: int) -> GPT:
    """A copy of `model` with `vocab_size` token rows: old row i at old_to_new[i], new rows the mean of the old."""
    config = replace(model.config, vocab_size=vocab_size)
    state = dict(model.state_dict())
    tied = model.config.tie_weights
    for key in ("transformer.wte.weight",) + (() if tied else ("lm_head.weight",)):
        old = state[key]  # (old vocab, C)
        rows = old.float().mean(dim=0, keepdim=True).to(old.dtype).repeat(vocab_size, 1)  # (new vocab, C)
        rows[old_to_new] = old
        state[key] = rows
    if tied:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    param = next(model.parameters())
    grown = build_model(config)
    grown.load_state_dict(state)
    return grown.to(device=param.device, dtype=param.dtype).train(model.training)


def _shown(pieces: list[str]) -> str:
    def one(piece: str) -> str:
        return piece if piece.isprintable() and not piece.isspace() and piece.strip() == piece else repr(piece)

    listed = " ".join(one(p) for p in pieces[:SHOWN])
    return listed + (f" ... ({len(pieces) - SHOWN:,} more)" if len(pieces) > SHOWN else "")


def _note(added_text: list[str], unit: str, added_specials: list[str], n_old: int) -> str:
    parts = []
    if added_text:
        unit = unit if len(added_text) > 1 else unit[:-1]  # "1 character", "1 GPT-2 token"
        parts.append(f"Added {len(added_text):,} {unit} the conversations use: {_shown(added_text)}.")
    if added_specials:
        parts.append(f"Added the chat tokens {', '.join(added_specials)}.")
    if not parts:
        return "The model already has every token these conversations need."
    rows = len(added_text) + len(added_specials)
    return " ".join(parts) + f" Each of the {rows:,} new rows starts as the mean of the {n_old:,} existing ones."


def grown_tokenizer(tokenizer: Tokenizer, data) -> tuple[ChatTokenizer, str]:
    """The chat tokenizer a run gets for `data` (the text the data brings, then the chat tokens it lacks) and the
    note saying what was added: what `chat_model` grows the model to, known before any weight is read."""
    base, added_text, unit = grown_base(base_of(tokenizer), data_texts(data))
    had = list(tokenizer.specials) if isinstance(tokenizer, ChatTokenizer) else []
    added_specials = [s for s in SPECIALS if s not in had]
    return ChatTokenizer(base, had + added_specials), _note(added_text, unit, added_specials, tokenizer.vocab_size)


def chat_model(model: nn.Module, tokenizer: Tokenizer, data, *, limits: "Limits | None" = None) -> Grown:
    """(model, tokenizer, conversations) -> the chat model, its chat tokenizer and a note (see the docstring).

    `data`: a task (`gpt.chat.tasks`), a file (`gpt.chat.files`) or conversations (lists of messages).
    `limits`: the server's, checked against the grown model's settings before it is built."""
    if not isinstance(model, GPT):
        raise ConfigError("A bigram model reads one token at a time, so it cannot follow a conversation; "
                          "make a chat model from a GPT run.")
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ConfigError(f"The model has {model.config.vocab_size:,} token rows but its tokenizer "
                          f"{tokenizer.vocab_size:,} tokens; they do not belong together.")
    # 1) the tokenizer: text the data brings, then the chat tokens it lacks
    chat, note = grown_tokenizer(tokenizer, data)
    if chat.vocab_size == tokenizer.vocab_size:
        return Grown(model, tokenizer if isinstance(tokenizer, ChatTokenizer) else chat, note)
    # 2) the limits, by arithmetic, before anything is built
    if limits is not None:
        limits.check_model(replace(model.config, vocab_size=chat.vocab_size))
    # 3) every old row to its token's new id, new rows the mean
    return Grown(resized(model, old_to_new_ids(tokenizer, chat), chat.vocab_size), chat, note)
