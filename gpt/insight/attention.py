"""Attention maps: where each head of each layer looks, for one prompt.

The model itself never builds the (T, T) attention matrix: it calls
F.scaled_dot_product_attention, which fuses the softmax away. So we run the
model as it is, keep what each layer's attention is given, recompute each
layer's weights from its own queries and keys, and check that those weights
rebuild the layer's real output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import GPTError
from ..tokenizer import Tokenizer
from .tokens import prompt_tensor, show_piece


@dataclass
class AttentionMaps:
    """Attention weights of one prompt. Row i of a map: how query i shares its attention over keys 0..T-1."""

    weights: torch.Tensor  # (n_layer, n_head, T, T), rows sum to 1
    ids: list[int]
    pieces: list[str]  # the text of each token, for the axes
    causal: bool
    max_error: float  # largest gap between the layer rebuilt from `weights` and the layer itself

    def head(self, layer: int, head: int) -> torch.Tensor:
        n_layer, n_head = self.weights.shape[:2]
        if not (0 <= layer < n_layer and 0 <= head < n_head):
            raise GPTError(f"Pick a layer in 0..{n_layer - 1} and a head in 0..{n_head - 1}; "
                           f"got layer {layer}, head {head}.")
        return self.weights[layer, head]  # (T, T)


def _require_attention(model: torch.nn.Module) -> None:
    if getattr(model.config, "model_type", "gpt") != "gpt" or not hasattr(model, "transformer"):
        raise GPTError(
            "A bigram model has no attention: it predicts the next token from the current one alone, "
            "by looking up one row of a table. Train or load a GPT to see attention maps."
        )


@torch.no_grad()
def attention_pass(model: torch.nn.Module, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Run the model once and keep every head's attention weights.

    idx (B, T) -> weights (n_layer, B, nh, T, T), logits (B, T, vocab), max_error.
    Why the extra work: the model calls F.scaled_dot_product_attention, which
    never materialises the (T, T) weights. So the model's own forward runs
    (the logits are exactly model(idx)'s), a hook keeps what each layer's
    attention was given (its normed input and the rotary angles), and each
    layer's weights are recomputed from its own queries and keys
    (`CausalSelfAttention.qkv`); rebuilding the layer's output from them
    reports how far they are from what the layer computed (`max_error`, ~1e-7).
    """
    _require_attention(model)
    given: list[tuple] = []  # per layer: (h (B, T, C), rope)
    hooks = [block.attn.register_forward_pre_hook(lambda _, args: given.append(args[:2]))
             for block in model.transformer.h]
    was_training = model.training
    model.eval()
    try:
        logits, _ = model(idx)  # (B, T, vocab)
        B, T = idx.shape
        allowed = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()  # key j <= query i
        maps, max_error = [], 0.0
        for block, (h, rope) in zip(model.transformer.h, given):
            attn = block.attn
            q, k, v = attn.qkv(h, rope)  # each (B, nh, T, hs)
            scores = (q @ k.transpose(-2, -1)).float() * attn.scale  # (B, nh, T, T)
            if model.config.causal:
                scores = scores.masked_fill(~allowed, float("-inf"))  # the future gets exactly 0 weight
            att = torch.softmax(scores, dim=-1)
            maps.append(att)
            y = (att.to(v.dtype) @ v).transpose(1, 2).reshape(B, T, -1)  # (B, T, C): heads side by side
            max_error = max(max_error, (attn.c_proj(y) - attn(h, rope)).abs().max().item())
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return torch.stack(maps), logits, max_error


def attention_maps(model: torch.nn.Module, tokenizer: Tokenizer, prompt: str) -> AttentionMaps:
    """Attention weights of every layer and head for `prompt` (cropped to the model's context)."""
    idx = prompt_tensor(model, tokenizer, prompt)
    weights, _, err = attention_pass(model, idx)
    ids = idx[0].tolist()
    return AttentionMaps(weights[:, 0].cpu(), ids, [tokenizer.decode([i]) for i in ids], model.config.causal, err)


def strongest_links(maps: AttentionMaps, layer: int, head: int) -> list[list]:
    """Per position: [position, token, the token it attends to most, that weight] (a table beside the heatmap)."""
    w = maps.head(layer, head)
    best = w.argmax(dim=-1)
    return [[i, show_piece(maps.pieces[i]), show_piece(maps.pieces[j]) + f" (pos {j})", round(w[i, j].item(), 3)]
            for i, j in enumerate(best.tolist())]
