"""A run folder with a small random GPT, for the conversion and exchange tests."""

from __future__ import annotations

from pathlib import Path

import torch

from gpt import checkpoint as ckpt
from gpt.model import GPTConfig, build_model
from gpt.tokenizer import CharTokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


def random_run(path: Path, tok=None, seed: int = 2, **model_kw) -> Path:
    """A run folder holding a random GPT with larger weights (varied greedy choices, far from ties)."""
    tok = tok or CharTokenizer.from_text(TEXT)
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=16, **model_kw)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(12.0) if p.dim() == 2 else p.add_(torch.randn_like(p) * 0.3)
    ckpt.save_checkpoint(path, model, cfg, tok, step=7, best_val_loss=2.5, corpus="test", train={"lr": 1e-3})
    return path
