"""What the page says about where training runs.

The limits themselves are `gpt.limits`; the device choice is `gpt.jobs.zerogpu.training_device`.
"""

from __future__ import annotations

import os

from ..jobs.zerogpu import training_device, zero_gpu, zero_gpu_mode
from ..limits import Limits


def describe_runtime(limits: Limits) -> str:
    """One line for the top of the page: where training runs and how many at once."""
    device = training_device()
    jobs = limits.max_concurrent_jobs
    at_once = f"{jobs} run{'s' if jobs > 1 else ''} at a time; others wait in a queue"
    if zero_gpu():
        return (f"This is a ZeroGPU Space: its GPU is lent only for short calls, so **training here runs on the CPU** "
                f"({os.cpu_count()} cores) and is slow. {at_once}.")
    if device == "cpu":
        cores, threads = os.cpu_count() or 1, os.environ.get("GPT_NUM_THREADS")
        used = f"{threads} of {cores} cores" if threads and int(threads) < cores else f"{cores} cores"
        return f"Training runs on the **CPU** ({used}); {at_once}."
    return f"Training runs on the **{device.upper()}**; {at_once}."


def runtime_line(limits: Limits) -> str:
    """The line at the top of the page: where training runs (GPU slices on ZeroGPU), and whether runs survive."""
    from .slice_timer import describe_slices, storage_note

    runtime = describe_slices() if zero_gpu_mode() else describe_runtime(limits)
    return f"{runtime} {storage_note()}".strip()

