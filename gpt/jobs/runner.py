"""What a runner is: how the run service's runs execute, once the manager has made them.

`JobManager` (`gpt.jobs.manager`) starts, resumes, stops and deletes runs and
checks who may; a runner then trains them. Two exist: `ThreadRunner` (a
worker thread per run, a first-come queue) and `SliceRunner` (ZeroGPU: GPU
slices from page events). Each is handed the service (`attach`) and may ask
of it only what `Service` lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .. import corpus as corpora
from ..limits import Limits
from .book import RunBook
from .registry import Job, Registry
from .request import RunRequest


class Service(Protocol):
    """What a runner may ask of the run service that hands it its jobs."""

    root: Path
    registry: Registry
    runs: RunBook
    limits: Limits
    device: str

    def acquire_lock(self, path: Path) -> None: ...

    def class_time_limit(self) -> tuple[float | None, str]: ...

    def start(self, owner: str, corpus: corpora.Corpus, request: RunRequest, name: str | None = None,
              vocab_size: int | None = None, then: list | None = None, address: str | None = None) -> Job: ...


class Runner(Protocol):
    """How runs execute. The manager calls these, holding the registry's condition for `launch`."""

    folder_info: dict  # added to a new run's app.json (a sliced run says so)

    def attach(self, service: Service) -> None: ...

    def launch(self, job: Job) -> None:
        """A new or resumed run, its folder made and its settings checked: train it (or queue it)."""

    def describe_start(self, job: Job, resumed: bool = False) -> str:
        """The sentence a Start (or, `resumed`, a Resume) answers with."""

    def stop(self, name: str, by: str) -> str:
        """Stop (or cancel) the run; the sentence saying what happens. `by`: 'you' or 'the teacher'."""

    def lost(self, job: Job) -> None:
        """The job's folder was deleted from under it: end it."""

    def limits_changed(self, limits: Limits) -> None:
        """The teacher changed the class's limits."""

    def shutdown(self, timeout: float) -> None:
        """The server stops: stop every run and wait for it to save."""
