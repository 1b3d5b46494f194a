"""Data-parallel training under `torchrun`, with PyTorch's own machinery.

`torchrun --nproc_per_node=N -m gpt.train ...` starts N processes and sets
RANK, LOCAL_RANK and WORLD_SIZE; we join the process group (NCCL on GPUs,
Gloo on CPUs) and wrap the model in DistributedDataParallel. No home-made
process management: torchrun starts, watches and tears down the workers.

How a step is shared so that N processes train exactly like one:
every rank draws the same global batch of `batch_size` windows (the batch
generator is seeded by step), then takes its own slice of B / N rows, split
further into `grad_accum` micro-batches. DDP averages the gradients over
ranks, so the update equals the single-process update on the whole batch,
up to the order of floating-point sums.

Only rank 0 evaluates, logs and writes checkpoints. Once per step the ranks
agree (one all-reduce of three flags) on whether to stop: a stop request,
the time limit or a NaN on any rank ends every rank at the same step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: str) -> tuple[DistInfo, str]:
    """Join the process group if torchrun started us; return (info, this rank's device)."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistInfo(), device
    rank, local_rank, world = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank, local_rank, world, backend), device


def agree(flags: list[bool], info: DistInfo, device: str) -> list[bool]:
    """Logical OR of each flag over all ranks (one small all-reduce)."""
    if not info.enabled:
        return flags
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def shard(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's rows of a global batch (B, T) -> (B / world, T)."""
    if not info.enabled:
        return x
    per = x.size(0) // info.world_size
    return x[info.rank * per : (info.rank + 1) * per]


def cleanup() -> None:
    """Leave the process group together. Rank 0 writes the last checkpoint after the loop; a rank
    that tears down Gloo meanwhile can abort ('terminate called without an active exception')."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
