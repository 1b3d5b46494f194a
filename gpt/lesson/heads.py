"""Lesson steps 7-9: the averaging trick, one head of self-attention, and the ladder.

Steps 7 and 8 run on random tensors (as the lecture does), so their numbers
are the same on every corpus; step 9 lists the ladder's rungs, each a
configuration of gpt/model.py, and the lecture's validation loss for each.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import ladder
from ..model import Block
from .base import Lesson, Step, source


def average_three_ways(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    B, T, C = x.shape
    # version 1: a loop; xbow[b, t] = mean_{i<=t} x[b, i]
    xbow = torch.zeros((B, T, C))
    for b in range(B):
        for t in range(T):
            xprev = x[b, :t+1]  # (t, C)
            xbow[b, t] = torch.mean(xprev, 0)
    # version 2: a matrix product with a normalised lower-triangular matrix
    wei = torch.tril(torch.ones(T, T))
    wei = wei / wei.sum(1, keepdim=True)
    xbow2 = wei @ x  # (T, T) @ (B, T, C) ----> (B, T, C)
    # version 3: softmax of a matrix with -inf where the future is
    tril = torch.tril(torch.ones(T, T))
    wei = torch.zeros((T, T))
    wei = wei.masked_fill(tril == 0, float('-inf'))
    wei = F.softmax(wei, dim=-1)
    xbow3 = wei @ x
    return xbow, xbow2, xbow3, wei


def step_trick(lesson: Lesson) -> Step:
    torch.manual_seed(lesson.settings.seed)
    B, T, C = 4, 8, 2  # batch, time, channels
    x = torch.randn(B, T, C)
    xbow, xbow2, xbow3, wei = average_three_ways(x)
    # float32 sums in another order differ in the last bits; near zero that can exceed allclose's atol=1e-8
    same2, same3 = torch.allclose(xbow, xbow2, atol=1e-6), torch.allclose(xbow, xbow3, atol=1e-6)
    gap = max((xbow - xbow2).abs().max().item(), (xbow - xbow3).abs().max().item())
    output = (f"x[0] =\n{x[0]}\nxbow[0] (the running average) =\n{xbow[0]}\n\n"
              f"torch.allclose(xbow, xbow2, atol=1e-6) = {same2}\ntorch.allclose(xbow, xbow3, atol=1e-6) = {same3}\n"
              f"largest difference: {gap:.1e} (float32 rounding: the loop and the matmul add in different orders)"
              f"\n\nwei =\n{wei}")
    why = ("For a token to learn from the ones before it, it needs some summary of them; the crudest is their "
           "average. Written as a matrix product with lower-triangular weights, it is one fast matmul, and as the "
           "softmax of a masked matrix it becomes self-attention: the weights start equal and can be learned.")
    return Step("trick", "", why, source(average_three_ways), output,
                "The lecture: (B, T, C) = (4, 8, 2), both allclose True, each row of wei averaging over the past "
                "(its PyTorch passed the default atol=1e-8 too; this one's matmul rounds differently). "
                "Random tensors, not your text: these numbers are the same on every corpus.",
                dict(allclose=(same2, same3), max_difference=gap), matrix=wei)


class Head(nn.Module):
    """One head of self-attention, as the lecture writes it (its `Head`, with the scale a switch)."""

    def __init__(self, n_embd: int, head_size: int, block_size: int, scaled: bool = True):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer('tril', torch.tril(torch.ones(block_size, block_size)))
        self.scaled = scaled
        self.wei = None  # the latest attention weights, (B, T, T), for the page to draw

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        wei = q @ k.transpose(-2, -1)  # (B, T, hs) @ (B, hs, T) ---> (B, T, T)
        if self.scaled:
            wei = wei * k.shape[-1]**-0.5  # keeps the affinities' variance near 1
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))
        wei = F.softmax(wei, dim=-1)
        self.wei = wei
        v = self.value(x)  # (B, T, hs)
        out = wei @ v  # (B, T, T) @ (B, T, hs) ---> (B, T, hs)
        return out


def one_head(x: torch.Tensor, head_size: int = 16, scaled: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    B, T, C = x.shape
    head = Head(C, head_size, T, scaled)
    out = head(x)
    return out, head.wei


def scale_variance(B: int = 4, T: int = 8, head_size: int = 16) -> tuple[float, float, float, float]:
    k = torch.randn(B, T, head_size)
    q = torch.randn(B, T, head_size)
    unscaled = q @ k.transpose(-2, -1)
    scaled = unscaled * head_size**-0.5
    return k.var().item(), q.var().item(), unscaled.var().item(), scaled.var().item()


def step_head(lesson: Lesson) -> Step:
    seed = lesson.settings.seed
    torch.manual_seed(seed)
    x = torch.randn(4, 8, 32)  # (B, T, C)
    out, wei_raw = one_head(x, scaled=False)  # the lecture's first head, before it adds the scale
    torch.manual_seed(seed)
    x = torch.randn(4, 8, 32)
    _, wei = one_head(x, scaled=True)
    kv, qv, raw_var, scaled_var = scale_variance()
    soft = torch.softmax(torch.tensor([0.1, -0.2, 0.3, -0.2, 0.5]), dim=-1)
    sharp = torch.softmax(torch.tensor([0.1, -0.2, 0.3, -0.2, 0.5]) * 8, dim=-1)
    output = "\n".join([
        f"out.shape = {tuple(out.shape)}", f"wei[0] without the scale =\n{wei_raw[0]}",
        f"wei[0] with * head_size**-0.5 =\n{wei[0]}", "",
        f"k.var() = {kv:.4f}  q.var() = {qv:.4f}",
        f"(q @ k^T).var() = {raw_var:.4f}   (about head_size = 16)",
        f"(q @ k^T * head_size**-0.5).var() = {scaled_var:.4f}   (about 1)", "",
        f"softmax([0.1, -0.2, 0.3, -0.2, 0.5])     = {soft}",
        f"softmax([0.1, -0.2, 0.3, -0.2, 0.5] * 8) = {sharp}   (large scores: nearly one-hot)",
    ])
    why = ("Self-attention makes the weights data-dependent: every token emits a query (what am I looking for?) "
           "and a key (what do I contain?); their dot products are the affinities, and the values are what gets "
           "averaged. Dividing by sqrt(head_size) keeps the affinities at unit variance: without it, softmax "
           "saturates at initialisation and each token listens to one other token only.")
    return Step("head", "", why, source(Head, one_head, scale_variance), output,
                "The lecture: out.shape (4, 8, 16), wei[0] row 2 = [0.1574, 0.8426, 0, ...] (unscaled), variances "
                "about 1, 1, 16 and 1. Random tensors: the same on every corpus.",
                dict(out_shape=tuple(out.shape), raw_var=raw_var, scaled_var=scaled_var, wei0=wei_raw[0].tolist()),
                matrix=wei[0].detach())


def step_ladder(lesson: Lesson) -> Step:
    rows = ["| rung | change | lecture's val loss | switches (gpt/model.py GPTConfig) |", "|---:|---|---:|---|"]
    for number in sorted(ladder.RUNGS):
        r = ladder.RUNGS[number]
        keys = ("model_type", "n_layer", "n_head", "ffn", "residual", "attn_proj", "layernorm")
        switches = ", ".join(f"{k}={r.model[k]}" for k in keys if k in r.model)
        rows.append(f"| {number} | {r.change} | ~{r.lecture_val_loss:g} | {switches} |")
    note = ("On a CPU rung 7 is the `fast` preset (the real one takes hours on 2 cores). Train them all with "
            "`python -m gpt.ladder --out runs/ladder`, or with the Lesson tab's button.")
    lecture = ("The lecture's numbers are on Tiny Shakespeare + characters; on another text or tokenizer the "
               "ladder should still fall rung by rung, from a different start.")
    why = ("Each rung adds one idea of the Transformer to the last and pays for it in validation loss: "
           "attention, several heads, computation per token, depth made trainable by residual connections, "
           "then LayerNorm. Every rung is the same gpt/model.py code with different switches.")
    return Step("ladder", "", why, source(ladder.configs, Block.forward), "\n".join(rows) + "\n\n" + note, lecture,
                dict(rungs=sorted(ladder.RUNGS)))
