"""The run service: training runs that outlive the page that started them, whatever trains them.

A browser tab only asks; the runs live here. Each run is a folder under the
runs root (see `gpt.checkpoint`) plus, while it trains, a `Job` in this
process. So a refresh, a second tab or a `gradio_client` all see the same
run, its state and its curve.

`JobManager` is the one place a run starts, resumes, stops or is deleted,
and the one place that checks who may do it. How a run then executes is
its runner's business:
- `ThreadRunner` (`gpt.jobs.thread_runner`): a worker thread in this process
  once the first-come queue gives it a slot (a CPU, a dedicated GPU);
- `SliceRunner` (`gpt.jobs.slice_runner`): on a ZeroGPU Space, a chain of GPU
  slices, each one call of the GPU function made from a page event.

What the manager guarantees:
- one person, one run in progress: a second Start is refused with a sentence;
- one writer per run folder: a lock file holding the writer's pid, checked
  against live jobs here and live processes elsewhere (the CLI, another app);
- a run whose status.json says 'running' but that no live process trains (the
  app was killed) is shown as 'interrupted' and can be resumed;
- a run cannot be deleted while it trains or someone samples from it.

Who sees what: a run belongs to the browser (or API session) that started or
uploaded it. Runs with no owner (the pretrained ones shipped with the app, or
made with the CLI) and runs marked shared are visible to everyone, but only
their owner may resume, stop or delete them. Someone else's private run does
not exist for anyone but its owner: every refusal about it reads as for a run
that is not there. What the app keeps in a run folder (owner, lock, corpus)
is `gpt.jobs.folder`'s business; what runs there are and how they are doing
is `gpt.jobs.book.RunBook`'s (`manager.runs`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from .. import checkpoint as ckpt
from .. import corpus as corpora
from ..checkpoint_check import check_checkpoint
from ..errors import CheckpointError, TrainingError
from ..estimate import human_seconds
from ..limits import Limits
from ..model import GPTConfig
from ..train import TrainConfig
from . import folder as folders
from .book import RunBook
from .folder import CORPUS_FILE
from .signing import Signer
from .labels import Labels
from .registry import Job, Registry
from . import kinds
from .request import RunRequest
from .storage import runs_root
from .thread_runner import ThreadRunner
from .zerogpu import training_device

TEACHER = object()  # the owner argument of the teacher's page: no string a client sends is ever this object


class JobManager:
    def __init__(self, root: str | os.PathLike | None = None, limits: Limits | None = None, device: str | None = None,
                 runner=None):
        self.root = Path(root) if root is not None else runs_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.device = device or training_device()
        self.limits = limits or Limits.from_env(default_jobs=1 if self.device == "cpu" else 2)
        self.limits_set_at: float | None = None  # when the teacher last changed the class's time per run
        self.registry = Registry(self.limits.max_concurrent_jobs)
        self.runs = RunBook(self.root, self.registry, lambda: self.limits, self.device)
        self.labels = Labels(self.root)  # display names, for the teacher's page and the class board
        self.identity = Signer(self.root)
        self.runner = runner or ThreadRunner()
        self.runner.attach(self)
        folders.mark_interrupted(self.root, set())  # runs left 'running' by a process that is gone
        ckpt.clean_stale_temp_files(self.root)  # half-written saves of a process that was killed

    # --- who may touch a run ----------------------------------------------------------------
    def check_owner(self, owner, name: str, action: str) -> Path:
        """The run's folder if `owner` may `action` it; else a sentence. Someone else's private run gets the
        same sentence as a run that does not exist: a stranger never learns it is there."""
        lost = self.runs.lost(name, owner)
        if lost is not None:
            if lost.active:
                self.runner.lost(lost)
            raise TrainingError(f"Run {name!r} was deleted from the server while it trained, so nothing of it is left "
                                f"to {action}; start it again.")
        path = self.runs.run_path(name)
        if owner is TEACHER:  # the teacher's page, once its token checked out
            return path
        if not self.runs.visible(owner, name):
            raise CheckpointError(f"There is no run named {name!r}.")
        run_owner = self.runs.owner_of(name)
        if run_owner != owner or not owner:
            who = "ships with the app" if run_owner is None else "is shared by someone else"
            raise TrainingError(f"Run {name!r} {who}; only its owner may {action} it. You can sample from it.")
        return path

    def acquire_lock(self, path: Path) -> None:
        busy = any(j.path == path and j.active for j in self.registry.jobs.values())
        folders.acquire_lock(path, busy_here=busy)

    def active_job(self, owner: str) -> Job | None:
        return self.registry.active_job(owner)

    def job(self, name: str) -> Job | None:
        """The live job of run `name` in this process, if any."""
        return self.registry.job(name)

    def _refuse_second(self, owner: str) -> None:
        job = self.registry.active_job(owner)
        if job is not None and not job.path.is_dir():  # its folder was deleted under it: it ends, and frees its owner
            self.runner.lost(job)
            job = None
        if job is not None:
            raise TrainingError(f"You already have a run in progress ({job.name!r}, {job.state}). Stop it or let it "
                                "finish before starting another: one run per person keeps the queue fair.")

    def _refuse_crowding(self, address: str | None) -> None:
        """Bound the queue for everyone and per network address, whatever identities the asker makes up."""
        reg = self.registry
        if len(reg.waiting) >= self.limits.max_queue:
            raise TrainingError(f"The queue is full ({len(reg.waiting)} runs waiting, GPT_MAX_QUEUE); "
                                "try again when some have finished.")
        if address is not None:
            mine = sum(1 for j in reg.jobs.values() if j.active and j.address == address)
            if mine >= self.limits.max_runs_per_address:
                raise TrainingError(f"{mine} runs from your network address are queued or training "
                                    f"(GPT_MAX_RUNS_PER_ADDRESS); wait for one to finish.")

    # --- starting ----------------------------------------------------------------------------
    def start(self, owner: str, corpus: corpora.Corpus | None, request: RunRequest, name: str | None = None,
              vocab_size: int | None = None, then: list | None = None, address: str | None = None) -> Job:
        """Make a new run and hand it to the runner; returns at once. Raises a GPTError with a sentence when refused.

        What it trains on: `corpus` for a pretraining run; for a fine-tune (`request.kind`), the parent run
        `request.parent` (one the owner may see) on the task `request.task` or the conversations in `corpus`.

        `vocab_size`: the tokenizer's, if the caller built it (else it is built here: a BPE is trained now, not
        in the queue, and a GPT-2 vocabulary that needs a network fails now). The configs are built and every
        limit checked once, here.
        `then`: (corpus, request, name) runs of the same owner to start one after another, each once the
        one before it finishes (an experiment of several runs still trains one run per person at a time).
        `address`: the asker's network address, for the per-address bound.
        """
        if not owner:
            raise TrainingError("The page has not finished loading; try again in a second.")
        with self.registry.cond:
            self._refuse_second(owner)
            self._refuse_crowding(address)
        parent, corpus = self._source(owner, corpus, request)
        if request.kind == "pretrain":
            vocab_size = vocab_size or self._vocab(corpus, request)
        configs = kinds.check(corpus, request, self.limits, self.device, vocab_size, parent)
        base = f"{corpus.name}-{request.tokenizer}" if parent is None else f"{parent.name}-{kinds.SUFFIX[request.kind]}"
        path = folders.new_folder(self.root, base, name)
        try:
            if corpus.source == "text":
                ckpt.atomic_write_text(path / CORPUS_FILE, corpus.text)
            folders.write_app_info(path, {"owner": owner, "shared": bool(request.shared), "created": time.time(),
                                          "corpus": corpus.name, "source": corpus.source, "request": request.to_dict(),
                                          **({"parent": parent.name} if parent else {}), **self.runner.folder_info})
            job = Job(path.name, owner, path, corpus, request, configs=configs, then=list(then or []), address=address)
            with self.registry.cond:
                self._refuse_second(owner)  # a double click that raced us here
                self._refuse_crowding(address)
                self.runner.launch(job)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return job

    def resume(self, owner: str, name: str, more_iters: int | None = None, then: list | None = None) -> Job:
        """Continue a stopped, interrupted or finished run of yours from its last checkpoint (from the start if
        it saved nothing); `then`, as for `start`: runs to start one after another once it finishes."""
        path = self.check_owner(owner, name, "resume")
        with self.registry.cond:
            self._refuse_second(owner)
            live = self.registry.job(name)
            if live is not None and live.active:
                raise TrainingError(f"Run {name!r} is already {live.state}.")
        info = folders.app_info(self.root, name)
        request = RunRequest.from_dict(info.get("request"))
        corpus = folders.corpus_of(path, info)
        has_weights = (path / ckpt.WEIGHTS).exists()
        resume_train = None
        if has_weights:
            checked = check_checkpoint(path / ckpt.WEIGHTS, self.limits)  # an uploaded config is held to the limits
            resume_train = self._resume_settings(checked.meta, checked.model_config, more_iters)
        job = Job(name, owner, path, corpus, request, resume=has_weights, resume_train=resume_train,
                  then=list(then or []))
        if not has_weights:  # nothing saved (cancelled while it waited): it starts over, its settings checked again
            parent = self.runs.run_path(request.parent) if request.kind in kinds.FROM_PARENT else None
            vocab = self._vocab(corpus, request) if request.kind == "pretrain" else None
            job.configs = kinds.check(corpus, request, self.limits, self.device, vocab, parent)
        with self.registry.cond:
            self._refuse_second(owner)
            self.runner.launch(job)
        return job

    def _source(self, owner: str, corpus: corpora.Corpus | None, request: RunRequest):
        """(the parent run's folder or None, what the run learns from). A fine-tune's parent must be a run the
        owner may see; its data is a built-in task (named by the request) or the conversation file given."""
        if request.kind not in kinds.FROM_PARENT:
            if corpus is None:
                raise TrainingError("Choose a text to train on.")
            return None, corpus
        if not request.parent or not self.runs.visible(owner, request.parent):
            raise CheckpointError(f"There is no run named {request.parent!r}.")
        parent = self.runs.run_path(request.parent)
        if request.task:
            corpus = corpora.Corpus(request.task.replace(":", "-").replace("=", "").replace(",", "-")[:40],
                                    "", "task")
        elif corpus is None or corpus.source != "text":
            raise TrainingError("Choose a built-in task or upload a conversation file (JSONL or Alpaca) to "
                                "fine-tune on.")
        return parent, corpus

    @staticmethod
    def _vocab(corpus: corpora.Corpus, request: RunRequest) -> int | None:
        """The tokenizer's vocabulary, built now (cached): a BPE is trained here, not in the queue, and a GPT-2
        vocabulary that needs a network fails here. None for characters, which need no building."""
        if request.tokenizer == "char":
            return None
        return corpora.dataset(corpus, request.tokenizer, request.vocab_size).tokenizer.vocab_size

    def _resume_settings(self, meta: dict, model_config: GPTConfig, more_iters: int | None) -> dict:
        """The training settings a resume continues with: the saved ones, and another stretch if the run had
        finished (out of steps: `more_iters` more, at least 100; out of time: its time limit again)."""
        train = dict(meta.get("train") or {})
        step = int(meta.get("step", 0))
        elapsed = float(meta.get("elapsed_s", 0.0))
        saved = TrainConfig.from_dict({**train, "device": "auto"})
        if saved.fraction_done(step, elapsed) >= 1.0 - 1e-9:  # it had finished: train for another stretch
            if step >= saved.max_iters:
                train["max_iters"] = step + int(more_iters or max(100, saved.max_iters))
            if saved.max_seconds:
                train["max_seconds"] = elapsed + float(saved.max_seconds)
        train["device"] = self.device
        self.limits.check_run(model_config, TrainConfig.from_dict(train))  # every limit, as for a new run
        return {"train": train, "step": step}

    # --- controlling -----------------------------------------------------------------------------
    def stop(self, owner, name: str) -> str:
        """Stop (or cancel, while it waits) a run; returns the sentence saying what happens."""
        self.check_owner(owner, name, "stop")
        return self.runner.stop(name, by="the teacher" if owner is TEACHER else "you")

    def delete(self, owner, name: str) -> None:
        path = self.check_owner(owner, name, "delete")
        reg = self.registry
        with reg.cond:
            job = reg.job(name)
            if job is not None and job.active:
                raise TrainingError(f"Run {name!r} is {job.state}; stop it before deleting it.")
            if reg.sampling[name]:
                raise TrainingError(f"Someone is sampling from {name!r} right now; try again when they finish.")
            if folders.locked(path):  # a GPU slice (or another process) is writing it
                raise TrainingError(f"Run {name!r} is being trained right now; stop it before deleting it.")
            reg.jobs.pop(name, None)
            self.runs.forget(name)
        shutil.rmtree(path)

    @contextlib.contextmanager
    def sampling(self, name: str):
        """Mark a run as being sampled from, so it is not deleted under the sampler."""
        reg = self.registry
        with reg.cond:
            reg.sampling[name] += 1
        try:
            yield
        finally:
            with reg.cond:
                reg.sampling[name] -= 1

    def wait(self, name: str, timeout: float | None = None) -> Job | None:
        """Block until the run's thread ends (tests, scripts)."""
        job = self.registry.job(name)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return job

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every run and wait for them to save."""
        self.runner.shutdown(timeout)

    def run_slice(self, owner: str, name: str):
        """Train the next GPU slice of a run of yours (ZeroGPU; the page's timer asks): a `SliceReport`."""
        path = self.check_owner(owner, name, "train")
        if not hasattr(self.runner, "run_slice"):
            raise TrainingError(f"Run {name!r} trains on this server's CPU, not in GPU slices; use Resume.")
        with self.registry.cond:
            job = self.registry.job(name)
            if job is None:  # a run from before the app restarted
                info = folders.app_info(self.root, name)
                job = Job(name, owner, path, folders.corpus_of(path, info), RunRequest.from_dict(info.get("request")),
                          resume=(path / ckpt.WEIGHTS).exists(), state="paused")
                self.registry.jobs[name] = job
            elif job.active:
                raise TrainingError(f"Run {name!r} is already training a GPU slice.")
        return self.runner.run_slice(job)

    # --- the class's limits and the queue ---------------------------------------------------------
    def set_limits(self, limits: Limits) -> None:
        """Replace the class's limits live (the teacher's page): the queue wakes, running runs get the new
        time per run. A run over a lowered limit of concurrent runs finishes; no new one starts until
        fewer run than the limit."""
        with self.registry.cond:
            if limits.max_run_seconds != self.limits.max_run_seconds:
                self.limits_set_at = time.time()
            self.limits = limits
            self.registry.slots = limits.max_concurrent_jobs
            self.runner.limits_changed(limits)
            self.registry.cond.notify_all()

    def class_time_limit(self) -> tuple[float | None, str]:
        """The class's training time per run (None: none) and how to name it: "the class's limit of 25 s per run,
        set by the teacher at 14:32" (or "..., GPT_MAX_RUN_SECONDS" when it comes from the server's start)."""
        seconds = self.limits.max_run_seconds or None
        if seconds is None:
            return None, ""
        when = (f"set by the teacher at {time.strftime('%H:%M', time.localtime(self.limits_set_at))}"
                if self.limits_set_at else "GPT_MAX_RUN_SECONDS")
        return float(seconds), f"the class's limit of {human_seconds(seconds)} per run, {when}"

    def queue_position(self, name: str) -> int | None:
        return self.registry.position(name)
