"""Optimizers and the learning-rate schedule.

AdamW decays 2-D weight matrices only: biases, LayerNorm gains and (by
nanoGPT's convention) nothing 1-D is pulled toward zero.

Muon (PyTorch's `torch.optim.Muon`) orthogonalises the update of each hidden
2-D matrix; it trains small GPTs markedly faster per step (modded-nanogpt's
speedrun). It suits only the matrices inside the blocks: embeddings, the LM
head and 1-D parameters stay on AdamW. Its learning rate is scaled per shape
as in Keller Jordan's Muon (PyTorch's default, `adjust_lr_fn="original"`), at
the usual 0.02; on Tiny Shakespeare that matched or beat the Moonshot scaling
(`"match_rms_adamw"`) at every lr tried, and momentum 0.9 beat PyTorch's 0.95
in runs of the length this app makes (docs/benchmarks.md). Its weight decay (`muon_weight_decay`, 0
unless a recipe sets it; the default recipe 0.3) is PyTorch's decoupled one: each step multiplies the
matrices by 1 - lr x decay. The project once had its own
Muon with the Newton-Schulz iterations batched over matrices of one shape: the same
updates, and 1.06x faster on the Muon step alone (median of 5 interleaved rounds, thread
CPU time, load 33: `bench/bench_muon.py --optimizer-only --rounds 5 --steps 5` at commit 52bd308), too little
to keep a second optimizer. What is kept is one change to PyTorch's (`Muon` below): where bf16 is not native,
the Newton-Schulz iterations run in float32, 20x faster there.

The schedule is a linear warm-up in steps times a cosine decay to `min_lr`,
driven by a progress fraction in [0, 1] so a run bounded by seconds decays on
time rather than on a step count it will never reach.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn as nn
from torch.optim._muon import _adjust_lr  # Muon's lr scaling per shape: PyTorch's one definition (Muon.step)

from . import device
from .errors import ConfigError


def _is_hidden_matrix(name: str, p: torch.Tensor) -> bool:
    return p.dim() == 2 and ".h." in f".{name}" and "wte" not in name and "wpe" not in name and "lm_head" not in name


class Muon(torch.optim.Muon):
    """PyTorch's Muon, with its Newton-Schulz iterations in `ns_dtype`.

    PyTorch orthogonalises in bfloat16, the speedrun's choice on GPUs. A CPU
    without bf16 instructions (AVX2 alone: most laptops, AMD before Zen 4)
    emulates every bf16 product: on a 2-core Zen 1 the five iterations on a
    192 x 768 matrix took 225 ms in bf16 and 11.6 ms in float32, and the
    `ten-minutes` recipe spent ~4 of its ~4.7 s a step there
    (docs/benchmarks.md). With `ns_dtype` bfloat16 this is PyTorch's step,
    bit for bit; with float32 the same step computed more exactly.
    """

    def __init__(self, params, ns_dtype: torch.dtype = torch.bfloat16, **options):
        super().__init__(params, **options)
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure=None):
        if self.ns_dtype == torch.bfloat16:
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - momentum)  # as _single_tensor_muon
                update = p.grad.lerp(buf, momentum) if group["nesterov"] else buf
                update = orthogonalise(update, group["ns_coefficients"], group["ns_steps"], group["eps"], self.ns_dtype)
                p.mul_(1 - lr * decay)
                p.add_(update, alpha=-_adjust_lr(lr, group["adjust_lr_fn"], p.shape))
        return loss


def orthogonalise(grad: torch.Tensor, coefficients, steps: int, eps: float, dtype: torch.dtype) -> torch.Tensor:
    """Newton-Schulz's approximation of U V^T for grad = U S V^T, as PyTorch's
    `_zeropower_via_newtonschulz` computes it, in `dtype` instead of bf16 alone."""
    a, b, c = coefficients
    x = grad.to(dtype)
    tall = grad.size(0) > grad.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)  # spectral norm at most 1
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def newton_schulz_dtype(device_type: str) -> torch.dtype:
    """bf16 where the hardware takes it (GPUs, CPUs with AVX-512 BF16 or AMX), float32 on other CPUs."""
    return torch.float32 if device_type == "cpu" and not device.cpu_has_native_bf16() else torch.bfloat16


def build_optimizers(
    model: nn.Module,
    kind: str,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    device_type: str,
    muon_lr: float = 0.02,
    muon_weight_decay: float = 0.0,
    muon_adjust_lr: str = "original",
    muon_momentum: float = 0.9,
    muon_ns_steps: int = 5,
) -> list[torch.optim.Optimizer]:
    """Return the optimizers for `model`; each group remembers its base lr in 'initial_lr'."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if kind not in ("adamw", "muon"):
        raise ConfigError(f"optimizer must be 'adamw' or 'muon', got {kind!r}.")
    muon_params = [p for n, p in params.items() if kind == "muon" and _is_hidden_matrix(n, p)]
    muon_ids = {id(p) for p in muon_params}
    rest = [(n, p) for n, p in params.items() if id(p) not in muon_ids]
    decay = [p for n, p in rest if p.dim() >= 2]
    no_decay = [p for n, p in rest if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay, "initial_lr": lr},
        {"params": no_decay, "weight_decay": 0.0, "initial_lr": lr},
    ]
    extra = {}
    sig = inspect.signature(torch.optim.AdamW).parameters
    if device_type in ("cuda", "cpu") and "fused" in sig:
        # one kernel per tensor for the whole update; on a CPU too, where foreach ops loop op by op
        # (measured: +6% training tokens a second at nanoGPT's shape, bench/bench_train.py vs-nanogpt)
        extra["fused"] = True
    elif "foreach" in sig:
        extra["foreach"] = True  # one batched op per group instead of a loop over tensors
    opts: list[torch.optim.Optimizer] = [torch.optim.AdamW(groups, lr=lr, betas=betas, **extra)]
    if muon_params:
        muon = Muon(muon_params, lr=muon_lr, weight_decay=muon_weight_decay, momentum=muon_momentum,
                    ns_steps=muon_ns_steps, adjust_lr_fn=muon_adjust_lr, ns_dtype=newton_schulz_dtype(device_type))
        for g in muon.param_groups:
            g["initial_lr"] = muon_lr
        opts.append(muon)
    return opts


def lr_multiplier(step: int, warmup_iters: int, progress: float, min_ratio: float) -> float:
    """Linear warm-up over the first `warmup_iters` steps, times a cosine from 1 down to
    `min_ratio` as `progress` (fraction of the run's steps or seconds, whichever is further) goes 0 -> 1."""
    warm = min(1.0, (step + 1) / warmup_iters) if warmup_iters > 0 else 1.0
    progress = min(max(progress, 0.0), 1.0)
    cosine = min_ratio + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - min_ratio)
    return warm * cosine


def set_lr(optimizers: list[torch.optim.Optimizer], multiplier: float) -> float:
    """Scale every group's base lr; return the AdamW lr for logging."""
    for opt in optimizers:
        for g in opt.param_groups:
            g["lr"] = g["initial_lr"] * multiplier
    return optimizers[0].param_groups[0]["lr"]


def warm_up() -> None:
    """Build and step a throwaway AdamW, on the calling thread.

    PyTorch imports `torch._dynamo` the first time any optimizer is made: about
    a second on a 2-core CPU, spent inside the first run's start-up. A server
    (the app) calls this as it starts, so the first click on Start does not wait.
    Not in a background thread: that import sets the interpreter's frame
    evaluator, and done beside Python running on another thread it crashed the
    process twice in CI (SIGSEGV), once even with the import lock held.
    """
    param = torch.nn.Parameter(torch.zeros(1))
    torch.optim.AdamW([param], foreach=True).step()
