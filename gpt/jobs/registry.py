"""The runs this process is training or holding in its queue: what only a live server knows.

The manager (`gpt.jobs.manager`) writes it; the run book (`gpt.jobs.book`)
and the queue's estimate (`gpt.jobs.queue_eta`) read it. Everything else
about a run is in its folder. One condition guards it all: the queue, the
jobs, the samplers' counts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import corpus as corpora
from .folder import ACTIVE
from .request import RunRequest

if TYPE_CHECKING:  # a job holds its trainer while it trains; nothing here builds one
    from ..train import Trainer


@dataclass
class Job:
    """A run this process is training, waiting to train, or (on ZeroGPU) training slice by slice."""

    name: str
    owner: str
    path: Path
    corpus: corpora.Corpus
    request: RunRequest
    resume: bool = False
    configs: tuple | None = None  # (GPTConfig, TrainConfig) of a new run, built and checked once at Start
    resume_train: dict | None = None  # training settings a resume continues with
    state: str = "queued"
    message: str = ""
    error: str | None = None
    trainer: "Trainer | None" = None
    created: float = field(default_factory=time.time)
    stop_event: threading.Event = field(default_factory=threading.Event)
    stopped_by: str | None = None  # 'you' or 'the teacher', for the sentence a stopped run ends with
    thread: threading.Thread | None = None
    then: list = field(default_factory=list)  # (corpus, request, name) to start, in turn, once this one finishes
    plan: tuple | None = None  # (seconds, own time limit, seconds trained before): gpt.jobs.queue_eta's estimate
    own_max_seconds: float | None = None  # the run's time limit before the class's cut it (set_limits may lift it)
    note: str = ""  # what preparing it did that its owner should know ("Added 14 characters ...")
    limit_note: str = ""  # set when the class's time per run ends it sooner than its own: which limit, since when
    address: str | None = None  # the network address that asked for it (per-address queue bound)
    slice_ends: float | None = None  # ZeroGPU: time.time() at which the GPU slice under way is cut off
    slice_number: int = 0
    slice_from: tuple[float, int, float] = (0.0, 0, 0.0)  # the slice under way began: (time.time(), step, elapsed)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def line(self, step: int | None = None) -> str:
        """What the job is doing, as the progress line shows it (`step`: the latest the run's curve reached)."""
        if self.slice_ends is not None:
            if step is not None and step <= self.slice_from[1]:
                return f"GPU slice {self.slice_number}: starting (the GPU process loads the run)"
            left = max(0.0, self.slice_ends - time.time())
            return f"GPU slice {self.slice_number}, {left:.0f} s of GPU left in this slice"
        return self.message

    def slice_progress(self, step: int, max_iters: int, max_seconds: float | None) -> tuple[float, float | None]:
        """(elapsed training seconds, seconds left) of a run whose GPU slice is under way, from its curve:
        the slice's steps so far over the time since it began."""
        began, first_step, elapsed = self.slice_from
        spent = max(0.0, time.time() - began)
        if step <= first_step or spent <= 0:
            return elapsed, None
        left = (max_iters - step) * spent / (step - first_step)
        if max_seconds:
            left = min(left, max(0.0, max_seconds - elapsed - spent))
        return elapsed + spent, left


class Registry:
    """The live jobs by name, the queue (first come, first served) and who is sampling from which run."""

    def __init__(self, max_concurrent: int):
        self.cond = threading.Condition()
        self.jobs: dict[str, Job] = {}
        self.waiting: list[Job] = []
        self.running = 0  # jobs holding a training slot
        self.slots = max_concurrent
        self.sampling: Counter = Counter()

    def job(self, name: str) -> Job | None:
        return self.jobs.get(name)

    def active_job(self, owner: str) -> Job | None:
        return next((j for j in self.jobs.values() if j.owner == owner and j.active), None)

    def snapshot(self) -> tuple[list[Job], list[Job], int]:
        """The jobs holding a slot, the jobs waiting (in order) and the slots: what a queue estimate needs."""
        with self.cond:
            running = [j for j in self.jobs.values() if j.state in ("preparing", "running") and j.thread is not None]
            return running, list(self.waiting), self.slots

    def position(self, name: str) -> int | None:
        """Where a run waits in the queue; None if it does not have to wait (it starts now, or runs)."""
        with self.cond:
            pos = next((k + 1 for k, j in enumerate(self.waiting) if j.name == name), None)
            if pos is None or (pos == 1 and self.running < self.slots):
                return None
            return pos

