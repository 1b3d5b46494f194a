"""How a run trains on this server's own CPU (or a dedicated GPU): a worker thread, once the queue gives it a slot.

The manager (`gpt.jobs.manager`) decides whether a run may start and writes
its folder; this runner then queues it first come, first served, and its
worker thread waits for one of `limits.max_concurrent_jobs` slots, encodes
the dataset, builds the one `Trainer` and calls `run()`.

What it guarantees:
- at most `max_concurrent_jobs` runs train at once; the others know their
  place in the queue (and, through `gpt.jobs.queue_eta`, when they start);
- an exception in a training thread fails that run, with its message, and
  nothing else;
- a run stopped while it waits is cancelled, and stays visible to its owner
  as cancelled, with who cancelled it; it can be started again;
- the class's time per run (the teacher's page) applies to the runs
  training now from the moment it is set;
- sampling first: while this process decodes text (`gpt.batching`), a run
  waits after its steps (`SamplingFirst`: a burst of requests gets the CPU,
  requests that never stop take at most a fifth of the run's time); the
  waiting does not count as its training time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

from .. import checkpoint as ckpt
from .. import corpus as corpora
from .. import estimate
from ..batching import decoding, wait_until_idle
from ..errors import GPTError, TrainingError
from ..estimate import human_seconds
from ..train import TrainConfig, Trainer
from . import folder as folders
from . import kinds
from .book import LOST
from .registry import Job
from .runner import Service

if TYPE_CHECKING:
    from ..limits import Limits

# Sampling first: while text is being decoded in this process, a run waits after its steps, out of a budget
# of waiting that holds SAMPLING_FIRST_BURST_S and refills at SAMPLING_FIRST_SHARE of the time. Training and
# decoding share one interpreter lock: a class's 30 Generates at once on a 2-core machine ended ~20% sooner
# with the run waiting (p95 1.89 s against 2.34, docs/benchmarks.md); sampling that never stops (a class
# pressing Generate all lesson) takes at most a fifth of a run's time, so the queue of runs keeps moving.
# The waiting does not count towards a run's time limit, which counts training.
SAMPLING_FIRST_BURST_S = 2.0
SAMPLING_FIRST_SHARE = 0.2


class SamplingFirst:
    """A run's step callback: while this process decodes text (`gpt.batching`), wait, drawing on a budget of
    waiting that holds `burst_s` seconds and refills at `share` of the time that passes. A burst of requests
    (a class at once, ~2 s) gets the CPU to itself; with requests that never stop, the run still trains
    1 - share of the time."""

    def __init__(self, burst_s: float, share: float):
        self.burst_s, self.share = burst_s, share
        self.budget, self.last = burst_s, time.monotonic()

    def __call__(self, progress: dict | None = None) -> None:
        now = time.monotonic()
        self.budget = min(self.burst_s, self.budget + (now - self.last) * self.share)  # the wait before counts too
        self.last = now
        if self.budget > 0 and decoding():
            wait_until_idle(self.budget)
            self.budget -= time.monotonic() - now


class ThreadRunner:
    """Trains each job in a daemon thread of this process, `max_concurrent_jobs` at a time."""

    folder_info: dict = {}  # nothing to add to a run's app.json

    def attach(self, manager: Service) -> None:
        self.m = manager
        self.reg = manager.registry
        self._closing = False

    # --- what the manager asks ---------------------------------------------------------------------
    def launch(self, job: Job) -> None:
        """Queue a new or resumed job (the caller holds the registry's condition)."""
        step = (job.resume_train or {}).get("step", 0)
        self.m.acquire_lock(job.path)  # first: another process's status must not be overwritten before it is seen
        ckpt.write_status(job.path, "queued", step=int(step))
        self.reg.jobs[job.name] = job
        self.m.runs.remember(job.owner, job.name)
        self.reg.waiting.append(job)
        job.thread = threading.Thread(target=self._worker, args=(job,), name=f"run-{job.name}", daemon=True)
        job.thread.start()
        self.reg.cond.notify_all()

    def describe_start(self, job: Job, resumed: bool = False) -> str:
        """The sentence a Start (or a Resume) answers with."""
        pos = self.reg.position(job.name)
        if resumed:
            where = "from its last checkpoint" if job.resume else "from the start (it had saved nothing)"
            return f"Resuming **{job.name}** {where}." + (f" Position {pos} in the queue." if pos else "")
        if pos:
            return f"Run **{job.name}** is queued: position {pos} in the queue. It starts when a slot frees up."
        return f"Run **{job.name}** started. The curve below updates every second."

    def stop(self, name: str, by: str) -> str:
        job = self.reg.job(name)
        with self.reg.cond:  # a run that has just finished and not yet started the next one of its plan
            if job is not None and not job.active and job.then:
                k, job.then, job.stopped_by = len(job.then), [], by
                return (f"**{name}** had just finished; the {k} run{'s' if k > 1 else ''} planned after it will not "
                        "start.")
        if job is None or not job.active:
            raise TrainingError(f"Run {name!r} is not training.")
        waiting = job.state == "queued"
        job.stopped_by = by
        job.stop_event.set()
        if job.trainer is not None:
            job.trainer.request_stop(by=by)
        with self.reg.cond:
            self.reg.cond.notify_all()
        after = ""
        if job.then:  # a ladder's next rungs, the unmasked half of an experiment: they will not start now
            k = len(job.then)
            after = f" The {k} run{'s' if k > 1 else ''} planned after it will not start."
            job.then = []
        if waiting:
            whose = "Its owner sees" if by == "the teacher" else "You see"
            return (f"Cancelled **{name}** while it waited in the queue: nothing was trained. {whose} it, marked "
                    f"cancelled, and can start it again.{after}")
        return f"Stopping **{name}**: it saves its weights and stops within a step.{after}"

    def lost(self, job: Job) -> None:
        """The job's folder was deleted from under it: stop it and say so where its owner looks."""
        job.stop_event.set()
        if job.trainer is not None:
            job.trainer.request_stop()
        job.state, job.error = "failed", LOST
        job.message = LOST

    def limits_changed(self, limits: "Limits") -> None:
        """The class's time per run applies to the runs training now from this moment: each may train that much
        more (or to its own limit, if that comes first)."""
        for job in self.reg.jobs.values():
            trainer = job.trainer
            if trainer is not None and job.state == "running":
                self._cap(job, trainer, trainer.elapsed)

    def _cap(self, job: Job, trainer: Trainer, from_s: float) -> None:
        """The run's time limit: its own, or `from_s` plus the class's time per run if that ends it sooner."""
        seconds, note = self.m.class_time_limit()
        own = job.own_max_seconds
        if seconds is not None and (not own or from_s + seconds < own):
            trainer.config.max_seconds = from_s + seconds
            trained = f" when it had trained {human_seconds(from_s)}" if from_s >= 1 else ""
            job.limit_note = note + trained
        else:
            trainer.config.max_seconds = own
            job.limit_note = ""

    def shutdown(self, timeout: float) -> None:
        self._closing = True
        for job in list(self.reg.jobs.values()):
            job.stop_event.set()
            if job.trainer is not None:
                job.trainer.request_stop()
        with self.reg.cond:
            self.reg.cond.notify_all()
        for job in list(self.reg.jobs.values()):
            if job.thread is not None:
                job.thread.join(timeout)

    # --- the worker thread ---------------------------------------------------------------------------
    def _wait_for_slot(self, job: Job) -> bool:
        reg = self.reg
        with reg.cond:
            while True:
                if job.stop_event.is_set():
                    reg.waiting.remove(job)
                    reg.cond.notify_all()
                    return False
                if reg.waiting[0] is job and reg.running < reg.slots:
                    reg.waiting.pop(0)
                    reg.running += 1
                    reg.cond.notify_all()
                    return True
                reg.cond.wait(timeout=0.5)

    def _worker(self, job: Job) -> None:
        try:
            if not self._wait_for_slot(job):
                self._cancelled(job)
                return
            try:
                self._prepare_and_train(job)
            finally:
                with self.reg.cond:
                    self.reg.running -= 1
                    self.reg.cond.notify_all()
        except GPTError as err:
            self._fail(job, str(err))
        except Exception as err:  # noqa: BLE001 - a crash fails this run, never the server
            self._fail(job, f"{type(err).__name__}: {err}")
        finally:
            folders.release_lock(job.path)
        if job.then and job.state == "finished" and not self._closing:
            self._start_next(job)

    def _start_next(self, job: Job) -> None:
        """Start the next run of the finished job's plan. The plan stays on the job until the next run exists, so
        a Stop that lands while it is set up finds the plan, clears it, and the new run is cancelled at once."""
        with self.reg.cond:  # a Stop may have cleared the plan since the worker looked: then nothing starts
            plan = list(job.then)
        if not plan:
            return
        (corpus, request, name), *rest = plan
        try:
            self.m.start(job.owner, corpus, request, name=name, then=rest, address=job.address)
        except GPTError as err:
            job.message = f"Finished; the next run ({name}) could not start: {err}"
            return
        with self.reg.cond:
            stopped_meanwhile, job.then = not job.then, []
        if stopped_meanwhile:
            self.stop(name, by=job.stopped_by or "you")

    def _cancelled(self, job: Job) -> None:
        """Stopped before it had a slot: nothing trained; it stays, marked cancelled, for its owner to see."""
        by = job.stopped_by or "you"
        reason = f"cancelled by {by} while it waited in the queue"
        message = f"Cancelled by {by} while it waited in the queue; nothing was trained. Resume starts it again."
        step = (job.resume_train or {}).get("step", 0)
        ckpt.write_status(job.path, "stopped", message, step=step, end_reason=reason)
        job.state, job.message = "stopped", message  # last: whoever waits on the state finds the folder settled

    def _fail(self, job: Job, message: str) -> None:
        job.state, job.error = "failed", message
        with contextlib.suppress(GPTError, OSError):
            ckpt.write_status(job.path, "failed", message)

    def _prepare(self, job: Job, meta: dict):
        """The objective and configs: a resume's saved ones, or a new run's (built and checked once, at Start).
        A new fine-tune first writes its step 0, the parent made into a chat model, then trains on from it."""
        req, limits = job.request, self.m.limits
        if not job.resume and req.kind in kinds.FROM_PARENT:
            model_cfg, train_cfg = job.configs
            job.message = kinds.PREPARING[req.kind]
            job.note = meta["grown"] = kinds.write_initial(job.path, req, job.corpus,
                                                           self.m.runs.run_path(req.parent), limits, train_cfg, meta)
            job.resume, job.resume_train = True, {"train": train_cfg.to_dict(), "step": 0}
        if job.resume:
            saved = ckpt.load_checkpoint(job.path, device="cpu", limits=limits)
            objective = kinds.objective_for(req, job.corpus, saved.tokenizer, saved.model_config.block_size, limits)
            return objective, saved.model_config, TrainConfig.from_dict(job.resume_train["train"])

        def progress(fraction: float, message: str) -> None:
            job.message = message

        ds = corpora.dataset(job.corpus, req.tokenizer, req.vocab_size, progress=progress)
        model_cfg, train_cfg = job.configs
        if model_cfg.vocab_size != ds.tokenizer.vocab_size:  # the corpus' cache was emptied and rebuilt otherwise
            model_cfg, train_cfg = req.configs(ds.tokenizer.vocab_size, self.m.device)
            limits.check_run(model_cfg, train_cfg)
        return kinds.objective_for(req, job.corpus, ds.tokenizer, model_cfg.block_size, limits, ds), model_cfg, train_cfg

    def _prepare_and_train(self, job: Job) -> None:
        job.state, job.message = "preparing", "Encoding the corpus" if job.request.tokenizer != "bpe" else "Training the BPE tokenizer"
        ckpt.write_status(job.path, "preparing", step=(job.resume_train or {}).get("step", 0))
        meta = kinds.meta(job.request, job.corpus)
        objective, model_cfg, train_cfg = self._prepare(job, meta)
        job.own_max_seconds = train_cfg.max_seconds
        job.message = "Building the model"
        trainer = Trainer(model_cfg, train_cfg, objective, job.path, resume=job.resume, meta=meta)
        trainer.add_callback("on_step", SamplingFirst(SAMPLING_FIRST_BURST_S, SAMPLING_FIRST_SHARE))
        with self.reg.cond:
            self._cap(job, trainer, trainer.elapsed)  # the class's time per run, from this start
            job.trainer = trainer
        if job.stop_event.is_set():
            trainer.request_stop(by=job.stopped_by)
        job.state, job.message = "running", ""
        try:
            state = trainer.run()
        finally:
            job.trainer = None  # free the model, optimizer and batches; the run lives on disk now
        job.state, job.error = state, trainer.error
        if state == "finished" and job.limit_note and trainer.step < trainer.config.max_iters:  # the class's limit
            trained = trainer.metrics[-1]["elapsed_s"] if trainer.metrics else trainer.elapsed
            trainer.end_reason = (f"reached {job.limit_note} at step {trainer.step:,}, after "
                                  f"{human_seconds(trained)} of training")
            ckpt.write_status(job.path, state, step=trainer.step, end_reason=trainer.end_reason)
        reason = trainer.end_reason[:1].upper() + trainer.end_reason[1:]
        job.message = {"finished": f"Finished: {trainer.end_reason}.",
                       "stopped": f"{reason}; resume it to go on."}.get(state, "")
        if trainer.metrics and trainer.metrics[-1].get("tokens_per_sec"):
            estimate.observe(self.m.device, trainer.flops_per_token * trainer.metrics[-1]["tokens_per_sec"])
