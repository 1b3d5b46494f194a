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


SIZES = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")


def switches_of(model: dict) -> dict:
    """A named config's switches without its sizes (random_run sets those): a ladder rung at test size."""
    return {k: v for k, v in model.items() if k not in SIZES}


def nanogpt_logits(raw: dict, ids: list[int]) -> torch.Tensor:
    """nanoGPT's model.py forward, written from its source against the saved state dict alone (not our model):
    learned positions, pre-LayerNorm (eps 1e-5, optional bias), attention divided by sqrt(head size) under the
    causal mask, a 4x exact-GELU MLP, a final LayerNorm and the head tied to the embedding. (T, vocab)."""
    import math

    import torch.nn.functional as F

    sd, args = raw["model"], raw["model_args"]
    C, H, T = args["n_embd"], args["n_head"], len(ids)

    def ln(x, name):
        return F.layer_norm(x, (C,), sd[name + ".weight"], sd.get(name + ".bias"), 1e-5)

    def linear(x, name):
        return F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))

    idx = torch.tensor(ids)
    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:T]  # (T, C)
    future = torch.ones(T, T).tril() == 0
    for i in range(args["n_layer"]):
        p = f"transformer.h.{i}."
        q, k, v = (t.view(T, H, C // H).transpose(0, 1) for t in linear(ln(x, p + "ln_1"), p + "attn.c_attn").split(C, -1))
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(C // H)).masked_fill(future, float("-inf")).softmax(-1)
        x = x + linear((att @ v).transpose(0, 1).reshape(T, C), p + "attn.c_proj")
        x = x + linear(F.gelu(linear(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
    return F.linear(ln(x, "transformer.ln_f"), sd["transformer.wte.weight"])
