"""How long until a queued run starts: the runs ahead of it, their limits and their measured speed.

With one run at a time on a CPU and 2 min 10 s per default run, the 30th
student of a class waits about an hour; a position alone does not say so.
The estimate plays the queue forward:

- a run training now frees its slot after its trainer's own ETA (remaining
  steps over the tokens/s it measures, cut at its time limit);
- a run preparing, or waiting, takes its whole planned time:
  `gpt.estimate.training_seconds` of its shape (which learns this machine's
  speed from the runs that finished), scaled by how far off that estimate
  is for the runs training now (their measured tokens/s), cut at its time
  limit and the class's (`Limits.max_run_seconds`), plus a few seconds to
  build the model;
- each waiting run, first come first served, takes the first slot to free.

`start_times` is the pure part (numbers in, numbers out) the tests drive
with made-up durations; `starts_in` reads the live queue.
"""

from __future__ import annotations

import contextlib
import heapq
from typing import TYPE_CHECKING

from .. import checkpoint as ckpt
from .. import estimate
from ..errors import GPTError
from ..model import GPTConfig
from ..train import TrainConfig
from .request import GPT2_VOCAB_GUESS

if TYPE_CHECKING:
    from ..limits import Limits
    from .registry import Job, Registry

PREPARE_S = 3.0  # encoding the corpus and building the model, before the first step
UNKNOWN_RUN_S = 120.0  # a run whose shape cannot be read: about a default run


def start_times(busy: list[float], slots: int, durations: list[float]) -> list[float]:
    """Seconds from now until each waiting run starts.

    busy: seconds until each running run frees its slot; slots: runs allowed
    at once (may be fewer than len(busy) after the teacher lowered it: the
    extra runs finish first); durations: the waiting runs' times, in queue order.
    """
    free = sorted(max(0.0, b) for b in busy)
    if len(free) > slots:  # more running than allowed: only the last `slots` to finish free a slot
        free = free[len(free) - slots:]
    heap = free + [0.0] * (slots - len(free))
    heapq.heapify(heap)
    starts = []
    for d in durations:
        t = heapq.heappop(heap)
        starts.append(t)
        heapq.heappush(heap, t + max(0.0, d))
    return starts


def _configs(job: "Job", device: str) -> tuple[GPTConfig, TrainConfig, int, float]:
    """The shape and training settings a job will train with, and the step and seconds it starts from."""
    if job.resume and job.resume_train:
        meta = ckpt.read_meta(job.path / ckpt.WEIGHTS)
        return (GPTConfig.from_dict(meta["model"]), TrainConfig.from_dict(job.resume_train["train"]),
                int(job.resume_train.get("step", 0)), float(meta.get("elapsed_s", 0.0)))
    req = job.request
    if req.tokenizer == "char":
        vocab = len(set(job.corpus.text))
    elif req.tokenizer == "bpe":
        vocab = int(req.vocab_size or 2048)
    else:
        vocab = GPT2_VOCAB_GUESS
    model_cfg, train_cfg = req.configs(vocab, device)
    return model_cfg, train_cfg, 0, 0.0


def planned_seconds(job: "Job", limits: "Limits", device: str, pace: float = 1.0) -> float:
    """The whole time a job should take from its start, under today's limits.

    The shape's estimate is worked out once (`job.plan`: seconds, the run's own
    time limit, seconds it had trained before); `pace` (see `measured_pace`)
    and the limits are applied each time, since both change.
    """
    if job.plan is None:
        try:
            model_cfg, train_cfg, step, elapsed = _configs(job, device)
            seconds = PREPARE_S + estimate.training_seconds(
                model_cfg, train_cfg.batch_size, max(0, train_cfg.max_iters - step), train_cfg.eval_interval,
                train_cfg.eval_iters, None, device)
            job.plan = (seconds, train_cfg.max_seconds, elapsed)  # the trainer stops at max_seconds of the whole run
        except (GPTError, OSError, KeyError, ValueError, TypeError):
            job.plan = (UNKNOWN_RUN_S, None, 0.0)
    seconds, own_limit, elapsed = job.plan
    seconds = PREPARE_S + (seconds - PREPARE_S) * pace
    limit = limits.cap_seconds(own_limit)
    return min(seconds, PREPARE_S + max(0.0, limit - elapsed)) if limit else seconds


def measured_pace(running: list["Job"], device: str) -> float:
    """Measured over estimated seconds per step of the runs training now: how far off the estimate is here.

    The estimate starts from a matmul benchmark, which misjudges tiny models
    (their steps are all overhead) and a machine that other students' runs
    keep busy; the runs training right now show the real pace. 1.0 when
    nothing has been measured yet.
    """
    ratios = []
    for job in running:
        trainer = job.trainer
        tokens_per_sec = dict(trainer.progress).get("tokens_per_sec") if trainer is not None else None
        if tokens_per_sec:
            measured = trainer.config.batch_size * trainer.model_config.block_size / tokens_per_sec
            ratios.append(measured / estimate.step_seconds(trainer.model_config, trainer.config.batch_size, device))
    return min(20.0, max(0.05, sum(ratios) / len(ratios))) if ratios else 1.0


def remaining_seconds(job: "Job", limits: "Limits", device: str, pace: float = 1.0) -> float:
    """Seconds until a job that holds a slot gives it back."""
    trainer = job.trainer
    if trainer is None:  # preparing: about all of it is ahead
        return planned_seconds(job, limits, device, pace)
    progress = dict(trainer.progress)
    eta = progress.get("eta_s")
    if eta is None:  # no speed measured yet
        return max(0.0, planned_seconds(job, limits, device, pace) - PREPARE_S)
    return max(0.0, float(eta))


def starts_in(registry: "Registry", limits: "Limits", device: str, name: str) -> float | None:
    """Estimated seconds until the queued run `name` starts; None if it is not waiting."""
    running, waiting, slots = registry.snapshot()
    names = [j.name for j in waiting]
    if name not in names:
        return None
    ahead = waiting[: names.index(name) + 1]
    with contextlib.suppress(IndexError):
        pace = measured_pace(running, device)
        busy = [remaining_seconds(j, limits, device, pace) for j in running]
        durations = [planned_seconds(j, limits, device, pace) for j in ahead]
        return round(start_times(busy, slots, durations)[-1], 1)
    return None  # pragma: no cover
