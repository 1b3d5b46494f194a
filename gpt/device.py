"""Where the tensors live: device detection, autocast and CPU threads.

The rule is cuda > mps > cpu. dtype 'auto' means bf16 autocast on CUDA GPUs
that support it and on CPUs with native bf16 matrix instructions (AVX512-BF16
or AMX, e.g. AMD Zen 4, Intel Sapphire Rapids), where it makes small-GPT
training ~1.5x faster (docs/benchmarks.md); elsewhere float32, since bf16
emulated in software is slower than float32.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re

import torch


def detect_device(requested: str = "auto") -> str:
    """Return 'cuda', 'mps' or 'cpu'. 'auto' picks the fastest available."""
    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    from .errors import ConfigError

    if not isinstance(requested, str) or not re.fullmatch(r"cpu|mps|cuda(:\d{1,2})?", requested):
        raise ConfigError(f"Device {str(requested)[:30]!r} is not one this program knows: use auto, cpu, cuda, "
                          "cuda:N or mps.")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"Device '{requested}' was requested but CUDA is not available here; use --device cpu or auto.")
    if requested.startswith("cuda:") and int(requested[5:]) >= torch.cuda.device_count():
        raise ConfigError(f"Device '{requested}' was requested but this machine has {torch.cuda.device_count()} GPU(s); "
                          "GPUs are numbered from cuda:0.")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("Device 'mps' was requested but Apple MPS is not available here; use --device cpu or auto.")
    return requested


def device_type(device: str) -> str:
    return device.split(":")[0]


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs whose matrix units take bf16 directly (Linux /proc/cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """Map 'auto' | 'float32' | 'bfloat16' | 'float16' to the autocast dtype."""
    if dtype == "auto":
        if device_type(device) == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if device_type(device) == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in table:
        from .errors import ConfigError

        raise ConfigError(f"Unknown dtype '{dtype}': choose auto, float32, bfloat16 or float16.")
    return table[dtype]


def autocast(device: str, dtype: torch.dtype):
    """A context that runs matmuls in `dtype`, or does nothing for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type(device), dtype=dtype)


def configure_cpu_threads(n: int | None = None) -> int:
    """Use one thread per physical core; more only adds contention on small models."""
    if n is None:
        env = os.environ.get("GPT_NUM_THREADS")
        n = int(env) if env else (os.cpu_count() or 1)
    n = max(1, n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    # Denormal floats make CPU matmuls crawl late in training; flush them to zero.
    torch.set_flush_denormal(True)
    return n


def enable_tf32() -> None:
    """TF32 matmuls on Ampere+ GPUs: ~free speed, negligible accuracy cost for training."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def leave_a_core_for_the_page() -> int:
    """Train on all CPU cores but one, so the page keeps answering while a run trains; the page's own
    work (sampling, chat, the views' forward passes) runs on one intra-op thread per thread.

    On a 2-core machine two training threads and a web server fight over the
    cores, and OpenMP threads that spin waiting for each other make both
    slow. GPT_NUM_THREADS (read by `gpt.device`) still wins when set; a run's
    thread sets it for itself (`configure_cpu_threads`). The page's threads
    take the process's default, one: token-by-token decoding is tiny
    operations, and on two OpenMP threads outside the main thread the app
    streamed ~300 characters a second where one thread streams ~1,200.
    """
    n = max(1, (os.cpu_count() or 1) - 1)
    os.environ.setdefault("GPT_NUM_THREADS", str(n))
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)  # this thread's and every thread's that starts PyTorch later
    return int(os.environ["GPT_NUM_THREADS"])
