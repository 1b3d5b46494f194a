"""Tokens as a student sees them: whitespace made visible, a prompt as the model reads it.

Tokenizers side by side are `gpt.tokcompare.compare_tokenizers`.
"""

from __future__ import annotations

import torch

from ..engine import last_context
from ..sample import prompt_to_ids
from ..tokenizer import Tokenizer


def show_piece(piece: str) -> str:
    """A token's text made visible on a slide: newline as ⏎, tab as ⇥, space as ␣."""
    return piece.replace("\n", "⏎").replace("\t", "⇥").replace(" ", "␣") or "∅"


def prompt_tensor(model: torch.nn.Module, tokenizer: Tokenizer, prompt: str) -> torch.Tensor:
    """The prompt as a (1, T) id tensor on the model's device, exactly as the sampler would feed it."""
    ids, _ = prompt_to_ids(tokenizer, prompt, model.config.block_size)  # empty -> start token
    ids = last_context(ids, model.config.block_size)  # long -> its last block_size tokens, as the sampler keeps
    return torch.tensor([ids], device=next(model.parameters()).device)  # (1, T)
