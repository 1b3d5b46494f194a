"""How big, how hungry and how long: a run's cost before it starts.

Three numbers the page updates as the sliders move:
- parameters, counted exactly by arithmetic (`gpt.model.count_parameters`: nothing is built);
- memory to train, in fp32: weights, gradients and optimizer moments
  (4 + 4 + 8 bytes per parameter with AdamW; Muon keeps one moment on the
  hidden matrices), the activations autograd keeps for the backward pass,
  and the encoded corpus;
- seconds, from the FLOPs of a step (6N + 12 L C T per token, as in
  `gpt.model.flops_per_token`) over this machine's effective speed, plus a
  fixed cost per step that dominates tiny models on a CPU.

The effective speed starts from a 0.1 s matrix-multiply benchmark and is
replaced by what finished runs actually measured (`observe`), so the
estimate learns the machine it runs on.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import torch

from .device import autocast, resolve_dtype
from .model import GPTConfig, count_parameters, flops_per_token

EFFICIENCY = 0.45  # share of the matmul peak a small transformer step reaches (kernel and Python overhead)
STEP_OVERHEAD_S = 0.002  # per training step, plus 0.5 ms per layer: launches, optimizer loop, Python
SAMPLE_TOKENS_PER_EVAL = 120

_lock = threading.Lock()
_speed: dict[str, float] = {}


def _benchmark_flops(dtype: torch.dtype = torch.float32) -> float:
    """The best of three 30 ms bursts of 256 x 256 matmuls under `dtype`'s autocast (the best: other processes
    only slow it)."""
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    with autocast("cpu", dtype):
        a @ b
        best = 0.0
        for _ in range(3):
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < 0.03:
                a @ b
                n += 1
            best = max(best, 2 * 256**3 * n / (time.perf_counter() - t0))
    return best


def effective_flops(device: str = "cpu") -> float:
    """FLOP/s a training step reaches here: measured by past runs, else benchmark x EFFICIENCY.

    The benchmark runs in the precision a run takes here by default: bf16 autocast on a CPU with native bf16,
    where a step runs ~2x float32's matmul speed (a float32 measure read a 2-core Zen 4 as too slow for
    `ten-minutes`' 6 x 192); float32 elsewhere.
    """
    with _lock:
        if device not in _speed:
            cpu = device == "cpu"
            _speed[device] = _benchmark_flops(resolve_dtype("auto", "cpu")) * EFFICIENCY if cpu else 20e12
        return _speed[device]


def observe(device: str, flops_per_sec: float) -> None:
    """Record what a finished run achieved; later estimates lean on it."""
    if flops_per_sec > 0:
        with _lock:
            old = _speed.get(device)
            _speed[device] = flops_per_sec if old is None else 0.5 * old + 0.5 * flops_per_sec


def parameters(config: GPTConfig) -> int:
    return count_parameters(config)["total"]


def training_memory_bytes(config: GPTConfig, batch_size: int, optimizer: str = "adamw", n_tokens: int = 0) -> int:
    """fp32 bytes to train: weights + grads + optimizer state + saved activations + corpus tensor."""
    n = parameters(config)
    B, T, C, L, V = batch_size, config.block_size, config.n_embd, config.n_layer, config.vocab_size
    if config.model_type == "bigram":
        hidden, acts = 0, B * T * V * 4  # (B, T, V) logits, softmax, gradient
    else:
        hidden = 12 * L * C * C  # the matrices inside the blocks (attention 4C^2, MLP 8C^2)
        per_layer = 18 * C + 2 * config.n_head * T  # saved per token per layer, attention scores included
        acts = B * T * (L * per_layer + 2 * C + 3 * V)
    moments = 2 * n if optimizer == "adamw" else hidden + 2 * (n - hidden)
    return 4 * (n + n + moments + acts) + 8 * n_tokens


def step_seconds(config: GPTConfig, batch_size: int, device: str = "cpu") -> float:
    n = parameters(config)
    flops = flops_per_token(config, n) * batch_size * config.block_size
    overhead = STEP_OVERHEAD_S + 0.0005 * (config.n_layer if config.model_type == "gpt" else 0)
    return overhead + flops / effective_flops(device)


# A run that reads fewer tokens than this per parameter in its time is too big for it: on a 2-core Zen 1 CPU
# `ten-minutes`' 6 x 192 read ~0.2 a parameter in 590 s and ended 0.21-0.26 bits per character behind a 4 x 128
# that read ~1.7; on the host it was tuned on it read ~2 (docs/benchmarks.md)
TOKENS_PER_PARAMETER = 1.0


def fitted_shape(config: GPTConfig, shapes: list[dict], batch_size: int, seconds: float,
                 device: str = "cpu") -> dict:
    """The largest of `shapes` (largest first) whose run reads enough text in `seconds` on this machine.

    A fixed shape is right for one machine only: a model a fast CPU trains on ~2 tokens a parameter in ten
    minutes sees a tenth of that on a CPU 4x slower, and a smaller model beats it there. So a recipe may name
    shapes and take the largest that reads TOKENS_PER_PARAMETER tokens per parameter here, at this machine's
    measured speed; the smallest when none does. A shape may bring model settings beyond its size (dropout) and
    its own training settings (`train`, e.g. its batch), which its reading is measured with.
    """
    for shape in shapes:
        cfg = replace(config, **{k: v for k, v in shape.items() if k != "train"})
        batch = shape.get("train", {}).get("batch_size", batch_size)
        tokens = seconds / step_seconds(cfg, batch, device) * batch * cfg.block_size
        if tokens >= TOKENS_PER_PARAMETER * parameters(cfg):
            return dict(shape)
    return dict(shapes[-1])


def training_seconds(config: GPTConfig, batch_size: int, max_iters: int, eval_interval: int, eval_iters: int,
                     max_seconds: float | None = None, device: str = "cpu") -> float:
    """Wall time of a run: the steps, every evaluation (2 x eval_iters forward passes + a sample)."""
    step = step_seconds(config, batch_size, device)
    n_evals = max_iters // max(1, eval_interval) + 1
    forward = (step - STEP_OVERHEAD_S) / 3  # a forward pass is about a third of forward + backward
    per_token = STEP_OVERHEAD_S / 2 + 0.0002 * config.n_layer
    evals = n_evals * (2 * eval_iters * (forward + STEP_OVERHEAD_S / 2) + SAMPLE_TOKENS_PER_EVAL * per_token)
    total = max_iters * step + evals
    return min(total, max_seconds) if max_seconds else total


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit in ("B", "KB") else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def human_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def human_count(n: int) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return str(n)
