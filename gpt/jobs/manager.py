"""The scheduler: training runs that outlive the page that started them.

A browser tab only asks; the runs live here. Each run is a folder under the
checkpoints root (see `gpt.checkpoint`) plus, while it trains, a `Job` in
this process. So a refresh, a second tab or a `gradio_client` all see the
same run, its state and its curve.

What the manager guarantees:
- at most `limits.max_concurrent_jobs` runs train at once; the others wait
  in a first-come queue and know their position in it;
- one person, one run in progress: a second Start is refused with a sentence;
- one writer per run folder: a lock file holding the writer's pid, checked
  against live jobs here and live processes elsewhere (the CLI, another app);
- a run whose status.json says 'running' but that no live process trains (the
  app was killed) is shown as 'interrupted' and can be resumed;
- an exception in a training thread fails that run, with its message, and
  nothing else;
- a run cannot be deleted while it trains or someone samples from it.

Who sees what: a run belongs to the browser (or API session) that started or
uploaded it. Runs with no owner (the pretrained ones shipped with the app, or
made with the CLI) and runs marked shared are visible to everyone, but only
their owner may resume, stop or delete them. What the app keeps in a run
folder (owner, lock, corpus) is `gpt.jobs.folder`'s business; what runs there
are and how they are doing is `gpt.jobs.book.RunBook`'s (`manager.runs`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import checkpoint as ckpt
from . import folder as folders
from ..data import Dataset
from ..checkpoint_check import check_checkpoint
from ..errors import GPTError, TrainingError
from ..model import GPTConfig
from .folder import ACTIVE, CORPUS_FILE
from .book import RunBook
from .labels import Labels
from .identity import Signer
from .request import RunRequest, check_request
from ..train import Trainer
from ..train_config import TrainConfig
from .. import corpus as corpora
from .. import estimate
from ..device import training_device
from ..limits import Limits


TEACHER = object()  # the owner argument of the teacher's page: no string a client sends is ever this object


@dataclass
class Job:
    """A run this process is training, or waiting to train."""

    name: str
    owner: str
    path: Path
    corpus: corpora.Corpus
    request: RunRequest
    resume: bool = False
    resume_train: dict | None = None  # training settings a resume continues with
    state: str = "queued"
    message: str = ""
    error: str | None = None
    trainer: Trainer | None = None
    created: float = field(default_factory=time.time)
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    then: list = field(default_factory=list)  # (corpus, request, name) to start, in turn, once this one finishes
    plan: tuple | None = None  # (seconds, own time limit, seconds trained before): gpt.jobs.queue_eta's estimate
    own_max_seconds: float | None = None  # the run's time limit before the class's cut it (set_limits may lift it)
    address: str | None = None  # the network address that asked for it (per-address queue bound)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


class JobManager:
    def __init__(self, root: str | os.PathLike | None = None, limits: Limits | None = None, device: str | None = None):
        self.root = Path(root) if root is not None else ckpt.checkpoints_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits.from_env()
        self.device = device or training_device()
        self._jobs: dict[str, Job] = {}
        self._waiting: list[Job] = []
        self._running = 0
        self._cond = threading.Condition()
        self._sampling: Counter = Counter()
        self._closing = False
        self.runs = RunBook(self.root, self)
        self.labels = Labels(self.root)  # display names, for the teacher's page and the class board
        self.identity = Signer(self.root)
        folders.mark_interrupted(self.root, set())  # runs left 'running' by a process that is gone
        ckpt.clean_stale_temp_files(self.root)  # half-written saves of a process that was killed

    # --- who may touch a run ----------------------------------------------------------------
    def _check_owner(self, owner: str, name: str, action: str) -> Path:
        path = self.runs.run_path(name)
        if owner is TEACHER:  # the teacher's page, once its token checked out
            return path
        run_owner = self.runs.owner_of(name)
        if run_owner != owner or not owner:
            who = "ships with the app" if run_owner is None else "belongs to someone else"
            raise TrainingError(f"Run {name!r} {who}; only its owner may {action} it. You can sample from it.")
        return path

    def _acquire_lock(self, path: Path) -> None:
        busy = any(j.path == path and j.active for j in self._jobs.values())
        folders.acquire_lock(path, busy_here=busy)

    # --- starting ----------------------------------------------------------------------------
    def active_job(self, owner: str) -> Job | None:
        return next((j for j in self._jobs.values() if j.owner == owner and j.active), None)

    def _refuse_second(self, owner: str) -> None:
        job = self.active_job(owner)
        if job is not None:
            raise TrainingError(f"You already have a run in progress ({job.name!r}, {job.state}). Stop it or let it "
                                "finish before starting another: one run per person keeps the queue fair.")

    def _refuse_crowding(self, address: str | None) -> None:
        """Bound the queue for everyone and per network address, whatever identities the asker makes up."""
        if len(self._waiting) >= self.limits.max_queue:
            raise TrainingError(f"The queue is full ({len(self._waiting)} runs waiting, GPT_MAX_QUEUE); "
                                "try again when some have finished.")
        if address is not None:
            mine = sum(1 for j in self._jobs.values() if j.active and j.address == address)
            if mine >= self.limits.max_runs_per_address:
                raise TrainingError(f"{mine} runs from your network address are queued or training "
                                    f"(GPT_MAX_RUNS_PER_ADDRESS); wait for one to finish.")

    def start(self, owner: str, corpus: corpora.Corpus, request: RunRequest, name: str | None = None,
              vocab_size: int | None = None, then: list | None = None, address: str | None = None) -> Job:
        """Queue a new run; returns at once. Raises a GPTError with a sentence when refused.

        `then`: (corpus, request, name) runs of the same owner to start one after another, each once the
        one before it finishes (an experiment of several runs still trains one run per person at a time).
        `address`: the asker's network address, for the per-address bound.
        """
        if not owner:
            raise TrainingError("The page has not finished loading; try again in a second.")
        with self._cond:
            self._refuse_second(owner)
            self._refuse_crowding(address)
        check_request(corpus, request, self.limits, self.device, vocab_size)
        path = folders.new_folder(self.root, f"{corpus.name}-{request.tokenizer}", name)
        try:
            if corpus.source == "text":
                ckpt.atomic_write_text(path / CORPUS_FILE, corpus.text)
            folders.write_app_info(path, {"owner": owner, "shared": bool(request.shared), "created": time.time(),
                                          "corpus": corpus.name, "source": corpus.source, "request": request.to_dict()})
            ckpt.write_status(path, "queued")
            job = Job(path.name, owner, path, corpus, request, then=list(then or []), address=address)
            with self._cond:
                self._refuse_second(owner)  # a double click that raced us here
                self._refuse_crowding(address)
                self._acquire_lock(path)
                self._enqueue(job)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return job

    def resume(self, owner: str, name: str, more_iters: int | None = None) -> Job:
        """Continue a stopped, interrupted or finished run of yours from its last checkpoint."""
        path = self._check_owner(owner, name, "resume")
        with self._cond:
            self._refuse_second(owner)
            live = self._jobs.get(name)
            if live is not None and live.active:
                raise TrainingError(f"Run {name!r} is already {live.state}.")
        info = folders.app_info(self.root, name)
        request = RunRequest.from_dict(info.get("request"))
        if info.get("source") == "text" or (path / CORPUS_FILE).exists():
            text = (path / CORPUS_FILE).read_text(encoding="utf-8")
            corpus = corpora.Corpus(info.get("corpus", "text"), text, "text")
        else:
            corpus = corpora.load(info.get("source", "shakespeare"))
        has_weights = (path / ckpt.WEIGHTS).exists()
        resume_train = None
        if has_weights:
            checked = check_checkpoint(path / ckpt.WEIGHTS, self.limits)  # an uploaded config is held to the limits
            resume_train = self._resume_settings(checked.meta, checked.model_config, more_iters)
        job = Job(name, owner, path, corpus, request, resume=has_weights, resume_train=resume_train)
        with self._cond:
            self._refuse_second(owner)
            self._acquire_lock(path)
            ckpt.write_status(path, "queued", step=int(resume_train["step"]) if resume_train else 0)
            self._enqueue(job)
        return job

    def _resume_settings(self, meta: dict, model_config: GPTConfig, more_iters: int | None) -> dict:
        train = dict(meta.get("train") or {})
        step = int(meta.get("step", 0))
        elapsed = float(meta.get("elapsed_s", 0.0))
        max_iters = int(train.get("max_iters", step))
        max_seconds = train.get("max_seconds")
        out_of_time = bool(max_seconds) and elapsed >= float(max_seconds) - 1e-6
        if step >= max_iters or out_of_time:  # it had finished: train for another stretch
            more = int(more_iters or max(100, max_iters))
            if step >= max_iters:
                max_iters = step + more
            if max_seconds:
                max_seconds = elapsed + float(max_seconds)
        train.update(max_iters=max_iters, max_seconds=max_seconds, device=self.device)
        self.limits.check_run(model_config, TrainConfig.from_dict(train))  # every limit, as for a new run
        return {"train": train, "step": step}

    def _enqueue(self, job: Job) -> None:
        """Register and queue the job (caller holds the condition)."""
        self._jobs[job.name] = job
        self.runs.remember(job.owner, job.name)
        self._waiting.append(job)
        job.thread = threading.Thread(target=self._worker, args=(job,), name=f"run-{job.name}", daemon=True)
        job.thread.start()
        self._cond.notify_all()

    # --- the worker thread ---------------------------------------------------------------------
    def _wait_for_slot(self, job: Job) -> bool:
        with self._cond:
            while True:
                if job.stop_event.is_set():
                    self._waiting.remove(job)
                    self._cond.notify_all()
                    return False
                if self._waiting[0] is job and self._running < self.limits.max_concurrent_jobs:
                    self._waiting.pop(0)
                    self._running += 1
                    self._cond.notify_all()
                    return True
                self._cond.wait(timeout=0.5)

    def _worker(self, job: Job) -> None:
        try:
            if not self._wait_for_slot(job):
                self._cancelled(job)
                return
            try:
                self._prepare_and_train(job)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
        except GPTError as err:
            self._fail(job, str(err))
        except Exception as err:  # noqa: BLE001 - a crash fails this run, never the server
            self._fail(job, f"{type(err).__name__}: {err}")
        finally:
            folders.release_lock(job.path)
        if job.then and job.state == "finished" and not self._closing:
            self._start_next(job)

    def _start_next(self, job: Job) -> None:
        (corpus, request, name), *rest = job.then
        try:
            self.start(job.owner, corpus, request, name=name, then=rest, address=job.address)
        except GPTError as err:
            job.message = f"Finished; the next run ({name}) could not start: {err}"

    def _cancelled(self, job: Job) -> None:
        message = "Cancelled while waiting in the queue."
        if not job.resume and not (job.path / ckpt.WEIGHTS).exists():
            with self._cond:  # nothing was trained: leave no empty folder behind
                self._jobs.pop(job.name, None)
                self.runs.forget(job.name)
            folders.release_lock(job.path)
            shutil.rmtree(job.path, ignore_errors=True)
        else:
            ckpt.write_status(job.path, "stopped", message, step=(job.resume_train or {}).get("step", 0))
        job.state, job.message = "stopped", message  # last: whoever waits on the state finds the folder settled

    def _fail(self, job: Job, message: str) -> None:
        job.state, job.error = "failed", message
        with contextlib.suppress(GPTError, OSError):
            ckpt.write_status(job.path, "failed", message)

    def _dataset(self, job: Job) -> tuple[Dataset, GPTConfig, TrainConfig]:
        if job.resume:
            saved = ckpt.load_checkpoint(job.path, device="cpu", limits=self.limits)
            ds = Dataset(job.corpus.text, saved.tokenizer, name=job.corpus.name)
            return ds, saved.model_config, TrainConfig.from_dict(job.resume_train["train"])
        req = job.request

        def progress(fraction: float, message: str) -> None:
            job.message = message

        ds = corpora.dataset(job.corpus, req.tokenizer, req.vocab_size, progress=progress)
        model_cfg, train_cfg = req.configs(ds.tokenizer.vocab_size, self.device)
        self.limits.check_run(model_cfg, train_cfg)  # exact, now the vocabulary is known
        return ds, model_cfg, train_cfg

    def _prepare_and_train(self, job: Job) -> None:
        job.state, job.message = "preparing", "Encoding the corpus" if job.request.tokenizer != "bpe" else "Training the BPE tokenizer"
        ckpt.write_status(job.path, "preparing", step=(job.resume_train or {}).get("step", 0))
        ds, model_cfg, train_cfg = self._dataset(job)
        job.own_max_seconds = train_cfg.max_seconds
        train_cfg.max_seconds = self.limits.cap_seconds(train_cfg.max_seconds)  # the class's time per run
        job.message = "Building the model"
        source = CORPUS_FILE if job.corpus.source == "text" else job.corpus.source  # never a server path
        trainer = Trainer(model_cfg, train_cfg, ds, job.path, resume=job.resume,
                          meta={"corpus": job.corpus.name, "data_source": source})
        job.trainer = trainer
        if job.stop_event.is_set():
            trainer.request_stop()
        job.state, job.message = "running", ""
        try:
            state = trainer.run()
        finally:
            job.trainer = None  # free the model, optimizer and batches; the run lives on disk now
        job.state, job.error = state, trainer.error
        reason = trainer.end_reason[:1].upper() + trainer.end_reason[1:]
        job.message = {"finished": f"Finished: {trainer.end_reason}.",
                       "stopped": f"{reason}; resume it to go on."}.get(state, "")
        if trainer.metrics and trainer.metrics[-1].get("tokens_per_sec"):
            estimate.observe(self.device, trainer.flops_per_token * trainer.metrics[-1]["tokens_per_sec"])

    # --- controlling -----------------------------------------------------------------------------
    def stop(self, owner: str, name: str) -> Job:
        self._check_owner(owner, name, "stop")
        job = self._jobs.get(name)
        if job is None or not job.active:
            raise TrainingError(f"Run {name!r} is not training.")
        job.stop_event.set()
        if job.trainer is not None:
            job.trainer.request_stop(by="you")
        with self._cond:
            self._cond.notify_all()
        return job

    def delete(self, owner: str, name: str) -> None:
        path = self._check_owner(owner, name, "delete")
        with self._cond:
            job = self._jobs.get(name)
            if job is not None and job.active:
                raise TrainingError(f"Run {name!r} is {job.state}; stop it before deleting it.")
            if self._sampling[name]:
                raise TrainingError(f"Someone is sampling from {name!r} right now; try again when they finish.")
            if folders.locked(path):  # a GPU slice (or another process) is writing it
                raise TrainingError(f"Run {name!r} is being trained right now; stop it before deleting it.")
            self._jobs.pop(name, None)
            self.runs.forget(name)
        shutil.rmtree(path)

    @contextlib.contextmanager
    def sampling(self, name: str):
        """Mark a run as being sampled from, so it is not deleted under the sampler."""
        with self._cond:
            self._sampling[name] += 1
        try:
            yield
        finally:
            with self._cond:
                self._sampling[name] -= 1

    def wait(self, name: str, timeout: float | None = None) -> Job | None:
        """Block until the run's thread ends (tests, scripts)."""
        job = self._jobs.get(name)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return job

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every run and wait for them to save."""
        self._closing = True
        for job in list(self._jobs.values()):
            job.stop_event.set()
            if job.trainer is not None:
                job.trainer.request_stop()
        with self._cond:
            self._cond.notify_all()
        for job in list(self._jobs.values()):
            if job.thread is not None:
                job.thread.join(timeout)

    # --- what only this process knows (RunBook reads it) ------------------------------------------
    def job(self, name: str) -> Job | None:
        return self._jobs.get(name)

    def queue_snapshot(self) -> tuple[list[Job], list[Job], int]:
        """The runs holding a slot, the runs waiting (in order) and the slots: what a queue estimate needs."""
        with self._cond:
            running = [j for j in self._jobs.values() if j.state in ("preparing", "running")]
            return running, list(self._waiting), self.limits.max_concurrent_jobs

    def set_limits(self, limits: Limits) -> None:
        """Replace the class's limits live (the teacher's page): the queue wakes, running runs get the new
        time per run. A run over a lowered limit of concurrent runs finishes; no new one starts until
        fewer run than the limit."""
        with self._cond:
            self.limits = limits
            for job in self._jobs.values():
                trainer = job.trainer
                if trainer is not None and job.state == "running":
                    trainer.config.max_seconds = limits.cap_seconds(job.own_max_seconds)
            self._cond.notify_all()

    def queue_position(self, name: str) -> int | None:
        """Where a run waits in the queue; None if it does not have to wait (it starts now, or runs)."""
        with self._cond:
            pos = next((k + 1 for k, j in enumerate(self._waiting) if j.name == name), None)
            if pos is None or (pos == 1 and self._running < self.limits.max_concurrent_jobs):
                return None
            return pos
