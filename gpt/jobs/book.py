"""What runs there are and how they are doing: the read side of the run service.

The run service (`gpt.jobs.manager.JobManager`) trains; `RunBook` answers.
It reads the run folders under the root and lays over them what only this
process knows (`gpt.jobs.registry`): a live job's state, step and queue
position, its trainer's progress, the GPU slice under way. Every answer is a
`RunStatus`; nothing here changes a run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

from .. import checkpoint as ckpt
from .. import history
from ..errors import CheckpointError, GPTError
from ..limits import Limits
from ..train import Trainer, progress_fraction
from . import folder as folders
from .queue_eta import starts_in
from .registry import Job, Registry
from .status import RunStatus, describe

LOST = "Its run folder was deleted from the server while it trained, so it stopped; start it again."
HISTORY_POINTS = 300  # per-step points a status carries (the page's curve, the API's): a longer curve is averaged


def train_limit(trainer: Trainer | None, saved: float | None) -> float | None:
    """The time limit the run trains under now (a resume extends the saved one)."""
    return (trainer.config.max_seconds or None) if trainer is not None else saved


class RunBook:
    def __init__(self, root: Path, registry: Registry, limits: Callable[[], Limits], device: str):
        self.root = root
        self.jobs = registry
        self.limits = limits  # the class's limits now (the teacher may change them): queue estimates use them
        self.device = device
        self._latest: dict[str, str] = {}  # owner -> the run they started last (what their Train tab shows)
        self._curves: dict[str, tuple] = {}  # name -> (file signature, (metrics, steps)): a poll reads no file twice

    # --- who may see a run ---------------------------------------------------------------------
    def owner_of(self, name: str) -> str | None:
        return folders.app_info(self.root, name).get("owner")

    def source_of(self, name: str) -> str | None:
        """Where the run's text came from: 'shakespeare', a synthetic task, or 'text' (pasted or uploaded)."""
        return folders.app_info(self.root, name).get("source")

    def visible(self, owner: str, name: str) -> bool:
        info = folders.app_info(self.root, name)
        return info.get("owner") in (None, owner) or bool(info.get("shared"))

    def run_path(self, name: str) -> Path:
        path = ckpt.run_dir(name, self.root)
        if not path.is_dir():
            raise CheckpointError(f"There is no run named {name!r}.")
        return path

    def run_names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    # --- one run --------------------------------------------------------------------------------
    def live_trainer(self, name: str) -> Trainer | None:
        """The trainer of a run training in this process right now (None once it ends)."""
        job = self.jobs.job(name)
        return job.trainer if job is not None and job.active else None

    def _curve(self, name: str) -> tuple[list[dict], list[tuple[int, float]]]:
        """(metrics, steps) from the run folder, read again only when its files change."""
        path = self.run_path(name)
        sig = []
        for file in (ckpt.METRICS, history.STEPS, ckpt.CONFIG):
            with contextlib.suppress(OSError):
                st = (path / file).stat()
                sig.append((file, st.st_mtime_ns, st.st_size))
        cached = self._curves.get(name)
        if cached is not None and cached[0] == sig:
            return cached[1]
        curve = history.read(path)
        self._curves[name] = (sig, curve)
        return curve

    def metrics(self, name: str) -> list[dict]:
        """Every evaluation of the run, from its first step (resumes and uploads included)."""
        trainer = self.live_trainer(name)
        if trainer is not None:
            return list(trainer.metrics)
        return list(self._curve(name)[0])

    def step_losses(self, name: str) -> list[tuple[int, float]]:
        """(step, batch loss) of every step: the live trainer's, else the run folder's."""
        trainer = self.live_trainer(name)
        if trainer is not None:
            return list(trainer.step_losses)
        return list(self._curve(name)[1])

    def lost(self, name: str, owner) -> "Job | None":
        """`owner`'s live job whose folder was deleted from under it (by hand, on the server): its owner is told."""
        job = self.jobs.job(name)
        if job is None or job.owner != owner or (self.root / name).is_dir():
            return None
        return job

    def summary(self, name: str, owner: str | None = None) -> RunStatus:
        """One run as the tables and dropdowns show it: the folder, with the live job laid over it."""
        job = self.lost(name, owner)
        if job is not None:
            return RunStatus(name, owner, True, False, job.corpus.name, job.request.tokenizer, job.request.model_type,
                             0, 1, 0, 0, None, "failed", LOST, False, job.created, job.created, end_reason="failed: " + LOST)
        info = describe(self.run_path(name), owner)
        job = self.jobs.job(name)
        if job is not None and job.active:  # this process knows better than the files
            info.state, info.message, info.end_reason = job.state, job.message, None
            info.message = job.line()
            info.limit_note = job.limit_note
            info.queue_position = self.jobs.position(name)
            if job.state == "queued":
                info.starts_in_s = starts_in(self.jobs, self.limits(), self.device, name)
            if job.trainer is not None:
                info.step = job.trainer.step
        elif job is not None and info.state == job.state:
            info.message = info.message or job.error or job.message
        return info

    def status_if_visible(self, name: str | None, owner: str | None) -> RunStatus | None:
        """`status(name, owner)`, or None where there is no name or the asker may not see the run (a poll's case:
        a run deleted or never theirs shows as no run, not as an error)."""
        if not name:
            return None
        try:
            return self.status(name, owner)
        except GPTError:
            return None

    def status(self, name: str, owner: str | None = None) -> RunStatus:
        """Progress of one run: its summary plus step, speed, ETA, latest losses, the metric rows and the curve."""
        info = self.summary(name, owner)
        if info.message == LOST:
            return info
        trainer = self.live_trainer(name)
        rows = self.metrics(name)
        steps = self.step_losses(name)
        progress = dict(trainer.progress) if trainer is not None else {}
        last = rows[-1] if rows else {}
        step = progress.get("step", info.step or last.get("step", 0))
        job = self.jobs.job(name)
        sliced = info.active and trainer is None and job is not None and job.slice_ends is not None
        if sliced and steps:  # trained in a GPU slice's process: its curve runs ahead of the checkpoint
            step = max(step, steps[-1][0])
        info.step = step
        info.max_iters = progress.get("max_iters", info.max_iters)
        info.tokens_per_sec = progress.get("tokens_per_sec", last.get("tokens_per_sec", 0.0))
        info.eta_s = progress.get("eta_s") if trainer is not None else None
        if info.state == "queued":
            info.eta_s = info.starts_in_s  # a queued run's ETA is when it starts (the API's promise)
        info.elapsed_s = progress.get("elapsed_s", info.elapsed_s or last.get("elapsed_s", 0.0))
        info.max_seconds = train_limit(trainer, info.max_seconds)
        if sliced:
            info.elapsed_s, info.eta_s = job.slice_progress(step, info.max_iters, info.max_seconds)
            info.message = job.line(step)
        done = progress_fraction(step, info.max_iters, info.elapsed_s, info.max_seconds)
        info.fraction = 1.0 if info.state == "finished" else min(1.0, done)
        info.loss = progress.get("loss")
        info.train_loss, info.val_loss, info.val_bpc = last.get("train_loss"), last.get("val_loss"), last.get("val_bpc")
        info.val_ppl = last.get("val_ppl")
        info.latest_sample = last.get("sample", "")
        info.metrics = [{k: v for k, v in r.items() if k != "sample"} for r in rows]
        info.n_params = trainer.n_params if trainer is not None else info.params
        info.history = [[round(s), round(v, 4)] for s, v in history.downsample(steps, HISTORY_POINTS)]
        if info.best_val_loss is None and rows:
            info.best_val_loss = min(r["val_loss"] for r in rows if "val_loss" in r)
        return info

    # --- many runs ------------------------------------------------------------------------------
    def list_runs(self, owner: str | None) -> list[RunStatus]:
        """The runs `owner` may see: theirs first, newest first, then the shared ones."""
        rows = []
        for name in self.run_names():
            if owner is not None and not self.visible(owner, name):
                continue
            with contextlib.suppress(CheckpointError, OSError):
                rows.append(self.summary(name, owner))
        rows.sort(key=lambda r: (not r.mine, -r.updated))
        return rows

    def remember(self, owner: str, name: str) -> None:
        """`name` is what `owner`'s Train tab shows from now on."""
        self._latest[owner] = name

    def forget(self, name: str) -> None:
        """A deleted or cancelled run is nobody's latest run any more."""
        for owner in [o for o, n in self._latest.items() if n == name]:
            del self._latest[owner]

    def current_run(self, owner: str) -> str | None:
        """The run a person's Train tab shows: their run in progress, else the one they made last."""
        job = self.jobs.active_job(owner)
        if job is not None:
            return job.name
        name = self._latest.get(owner)
        if name is not None and (self.lost(name, owner) or (self.root / name).is_dir() and self.owner_of(name) == owner):
            return name
        created = {n: folders.app_info(self.root, n) for n in self.run_names()}
        mine = [n for n, info in created.items() if owner and info.get("owner") == owner]
        name = max(mine, key=lambda n: created[n].get("created", 0)) if mine else None
        if name is not None:
            self._latest[owner] = name
        return name
