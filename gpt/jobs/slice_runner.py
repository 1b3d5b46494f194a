"""How a run trains on a ZeroGPU Space: a chain of GPU slices, each one call of the GPU function from a page event.

On a ZeroGPU Space no background thread gets the GPU (`gpt.jobs.zerogpu`):
the GPU is lent only to a `@spaces.GPU` call made from a Gradio event, and
charged to the visitor who made it. So a run there starts, resumes, stops and
is checked for its owner by the manager like any other (`gpt.jobs.manager`),
and then this runner trains it one *slice* at a time: the page's timer calls
`JobManager.run_slice`, which lands in `run_slice` here (the GPU call itself is
`gpt.jobs.slices.train_slice`). Between slices the run is a folder whose status
says 'paused'; `slices.json` counts its slices, says whether another should
follow (so a reloaded page goes on by itself) and carries what the last one
measured (step, evaluation and save times) to the next.

What it guarantees:
- one slice at a time per run, holding the folder's writer lock;
- a slice that was killed or aborted loses only the steps since its last
  save, and the next one goes on; a run whose slices die twice in a row
  without saving anything new is paused with a sentence, not retried forever;
- a refusal by ZeroGPU (the visitor's daily quota is spent) pauses the run
  and says so; Resume tries again;
- while a slice runs, the run reads as 'running' with the slice's progress
  line ("GPU slice 3, 42 s of GPU left in this slice"), its curve growing from
  the folder's steps.jsonl.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import checkpoint as ckpt
from .. import corpus as corpora
from ..errors import GPTError, TrainingError
from . import folder as folders
from . import kinds
from .registry import Job
from .runner import Service
from .request import RunRequest
from .slices import STOP_REQUEST, SliceOrder, SliceResult, saved_step, train_slice
from .zerogpu import SliceKilled, SliceSettings, gpu, zero_gpu_mode

if TYPE_CHECKING:
    from ..limits import Limits

RECORD = "slices.json"
MAX_STALLS = 2  # slices in a row cut off before saving anything new
SETTINGS = SliceSettings.from_env()
TRAIN_ON_GPU = gpu(train_slice, SETTINGS.duration_s)  # registered at import, as ZeroGPU wants


@dataclass(frozen=True)
class SliceReport:
    """What one slice did, for the page: a sentence, and whether another slice should follow."""

    name: str
    state: str  # the run's state now: paused, finished, stopped, failed
    number: int
    step: int
    max_iters: int
    message: str
    more: bool  # chain another slice (the run is paused and the last slice got somewhere)


def read_record(path: Path) -> dict:
    return {"slices": 0, "gpu_s": 0.0, "stalls": 0, "hints": {}, "chain": False, **folders.read_json(Path(path) / RECORD)}


def write_record(path: Path, record: dict) -> None:
    ckpt.atomic_write_text(Path(path) / RECORD, json.dumps(record, indent=2))


class SliceRunner:
    """Trains each run in GPU slices, one per call of `run_slice` (the page's timer makes the calls)."""

    folder_info = {"slices": True}

    def __init__(self, gpu_fn=None, settings: SliceSettings | None = None):
        self.gpu_fn = gpu_fn or TRAIN_ON_GPU  # SliceOrder -> SliceResult, in a GPU process (gpt.jobs.zerogpu.gpu)
        self.settings = settings or SETTINGS
        self._lock = threading.Lock()

    def attach(self, manager: Service) -> None:
        self.m = manager
        self.reg = manager.registry

    # --- what the manager asks ---------------------------------------------------------------------
    def launch(self, job: Job) -> None:
        """A new run waits for its first slice; a resumed one for its next (the caller holds the registry)."""
        with contextlib.suppress(FileNotFoundError):
            (job.path / STOP_REQUEST).unlink()
        record = read_record(job.path)
        record.update(stalls=0, chain=True, train=(job.resume_train or {}).get("train"))
        write_record(job.path, record)
        first = not (job.path / ckpt.WEIGHTS).exists()
        ckpt.write_status(job.path, "paused", "Waiting for its first GPU slice." if first else
                          "Continuing in GPU slices.", step=saved_step(job.path))
        job.state = "paused"
        self.reg.jobs[job.name] = job
        self.m.runs.remember(job.owner, job.name)

    def describe_start(self, job: Job, resumed: bool = False) -> str:
        d = self.settings.duration_s
        if resumed:
            return (f"Resuming **{job.name}** in GPU slices of {d:g} s while a page of yours is open (a reload goes "
                    "on).")
        return (f"Run **{job.name}** trains on the GPU in slices of {d:g} s, each from your ZeroGPU quota; the "
                "first slice starts now and the next ones follow while a page of yours is open (a reload goes on).")

    def stop(self, name: str, by: str) -> str:
        """Stop after this slice's next step (during a slice) or at once (between slices)."""
        path = self.m.runs.run_path(name)
        job = self.reg.job(name)
        with self._lock:  # a slice's start and end hold it too: a Stop lands before its report or between slices
            record = read_record(path)
            record["chain"] = False
            write_record(path, record)
            if job is not None and job.slice_ends is not None:
                ckpt.atomic_write_text(path / STOP_REQUEST, str(time.time()))
                return f"Stopping **{name}**: the GPU slice saves its weights and stops within a step."
            if ckpt.read_status(path).get("state") != "paused":
                raise TrainingError(f"Run {name!r} is not training.")
            ckpt.write_status(path, "stopped", f"Stopped by {by} between GPU slices; Resume to go on.",
                              step=saved_step(path), end_reason=f"stopped by {by} between GPU slices")
            if job is not None:
                job.state = "stopped"
        return f"Stopped **{name}** between GPU slices."

    def lost(self, job: Job) -> None:
        job.state = "failed"

    def limits_changed(self, limits: "Limits") -> None:
        """A slice's own budget bounds it; the class's limits apply to the next Start."""

    def shutdown(self, timeout: float) -> None:
        """A slice in flight ends at its deadline by itself; nothing to wait for."""

    # --- slices ----------------------------------------------------------------------------------------
    def wants_slice(self, name: str) -> bool:
        """True when the run waits between slices and the last one said another should follow."""
        job = self.reg.job(name)
        if job is not None and job.slice_ends is not None:
            return False
        with contextlib.suppress(GPTError, OSError):
            path = self.m.runs.run_path(name)
            return ckpt.read_status(path).get("state") == "paused" and bool(read_record(path)["chain"])
        return False

    def record(self, name: str) -> dict:
        """The run's slices so far: their number, the GPU seconds they took, what the last one measured."""
        return read_record(self.m.runs.run_path(name))

    def run_slice(self, job: Job) -> SliceReport:
        """Train one GPU slice of the job's run (blocks for up to the slice's duration) and say what happened."""
        path = job.path
        with self._lock:
            if job.slice_ends is not None:
                raise TrainingError(f"Run {job.name!r} is already training a GPU slice.")
            if ckpt.read_status(path).get("state") == "stopped":  # Stop came after the timer asked for this slice
                raise TrainingError(f"Run {job.name!r} was stopped; click Resume to go on.")
            folders.acquire_lock(path, busy_here=False)
            record = read_record(path)
            job.slice_number, job.slice_ends = record["slices"] + 1, time.time() + self.settings.duration_s
            job.state = "running"
        started, before = time.time(), saved_step(path)
        job.slice_from = (started, before, _saved_elapsed(path))
        try:
            order = self._order(path, record)
            ckpt.write_status(path, "running", f"GPU slice {job.slice_number}", step=before)
            try:
                outcome: SliceResult | BaseException = self.gpu_fn(order)
            except Exception as err:  # noqa: BLE001 - a kill, an abort, a refusal: each gets its sentence below
                outcome = err
            with self._lock:
                report = self._after(path, record, job.slice_number, started, before, outcome)
                job.state, job.slice_ends = report.state, None
            return report
        except GPTError as err:
            ckpt.write_status(path, "failed", str(err), step=before)
            job.state = "failed"
            raise
        finally:
            job.slice_ends = None
            folders.release_lock(path)

    def _order(self, path: Path, record: dict) -> SliceOrder:
        """What the GPU process needs: the saved settings (or, before the first save, the ones built at Start; a
        fine-tune's step 0, the parent made into a chat model, is written here, on this CPU)."""
        info = folders.app_info(self.m.root, path.name)
        corpus = folders.corpus_of(path, info)
        request = RunRequest.from_dict(info.get("request"))
        meta = kinds.meta(request, corpus)
        job = self.reg.job(path.name)
        if not (path / ckpt.WEIGHTS).exists() and request.kind in kinds.FROM_PARENT:
            _, train_cfg = job.configs if job is not None and job.configs else kinds.check(
                corpus, request, self.m.limits, "auto", None, self.m.runs.run_path(request.parent))
            meta["grown"] = kinds.write_initial(path, request, corpus, self.m.runs.run_path(request.parent),
                                                self.m.limits, train_cfg, meta)
        if (path / ckpt.WEIGHTS).exists():
            saved = ckpt.read_meta(path / ckpt.WEIGHTS)
            model, tokenizer, train = saved["model"], saved["tokenizer"], dict(saved.get("train") or {})
            meta["grown"] = saved.get("grown") or meta.get("grown", "")
        else:  # built on this CPU (and cached), not inside a GPU slice
            ds = corpora.dataset(corpus, request.tokenizer, request.vocab_size)
            if job is not None and job.configs and job.configs[0].vocab_size == ds.tokenizer.vocab_size:
                model_cfg, train_cfg = job.configs  # checked at Start
            else:  # a run made before the app restarted
                model_cfg, train_cfg = request.configs(ds.tokenizer.vocab_size, "auto")
                self.m.limits.check_run(model_cfg, train_cfg)
            model, tokenizer, train = model_cfg.to_dict(), ds.tokenizer.spec(), train_cfg.to_dict()
        if record.get("train"):  # a resume's settings (another stretch for a finished run) until the next save
            train = {**train, **{k: v for k, v in record["train"].items() if k in ("max_iters", "max_seconds")}}
        train["device"] = "auto"  # inside the GPU process: the lent GPU
        return SliceOrder(run_dir=str(path), budget_s=self.settings.budget_s, model=model, train=train,
                          tokenizer=tokenizer, text=corpus.text, corpus_name=corpus.name, request=request.to_dict(),
                          source=corpus.source, meta={k: v for k, v in meta.items() if v},
                          hints=record.get("hints") or {})

    def _after(self, path: Path, record: dict, n: int, started: float, before: int, outcome) -> SliceReport:
        """Write down what the slice did and decide whether another should follow."""
        step = saved_step(path)
        record.update(slices=n, gpu_s=round(record["gpu_s"] + time.time() - started, 1))
        max_iters = 0
        if isinstance(outcome, SliceResult):
            record.update(stalls=0 if outcome.step > outcome.start_step else record["stalls"] + 1, hints=outcome.hints)
            max_iters = outcome.max_iters
            state, message = self._said(outcome, n)
            more = state == "paused" and record["stalls"] < MAX_STALLS
            if state == "paused" and not more:
                message = (f"GPU slices {n - 1} and {n} ended without training a step (at step {step:,}): the slice is "
                           "too short for this model. Use a longer slice (GPT_ZEROGPU_SLICE_S) or a smaller model.")
        elif _refused(outcome):
            state, more = "paused", False
            message = f"ZeroGPU lent no GPU for slice {n}: {str(outcome).rstrip('. ')}. Click Resume to try again later."
        elif isinstance(outcome, GPTError) and not isinstance(outcome, SliceKilled):
            raise outcome
        else:
            record["stalls"] = 0 if step > before else record["stalls"] + 1
            state, more = "paused", record["stalls"] < MAX_STALLS
            message = (f"GPU slice {n} was cut off at its deadline; it had saved step {step:,}, and the next slice "
                       "goes on from there." if more else
                       f"GPU slices {n - 1} and {n} were both cut off before they could save anything new (at step "
                       f"{step:,}). Use a smaller model, or a longer slice (GPT_ZEROGPU_SLICE_S), then Resume.")
        if state == "paused" and (path / STOP_REQUEST).exists():  # Stop came after the slice's last step
            state, more, message = "stopped", False, f"Stopped at step {step:,} after GPU slice {n}; Resume to go on."
        if step > before:
            record["train"] = None  # the checkpoint carries the resumed settings from now on
        record["chain"] = more
        write_record(path, record)
        if state in ("paused", "stopped"):
            ckpt.write_status(path, state, message, step=step)
        with contextlib.suppress(FileNotFoundError):
            (path / STOP_REQUEST).unlink()
        return SliceReport(path.name, state, n, step, max_iters, message, more)

    @staticmethod
    def _said(result: SliceResult, n: int) -> tuple[str, str]:
        if result.state == "paused":
            return "paused", (f"GPU slice {n} trained to step {result.step:,} of {result.max_iters:,}; the next slice "
                              "goes on from there while a page of yours is open.")
        if result.state == "finished":
            return "finished", f"Finished: step {result.step:,}, in {n} GPU slice{'s' if n > 1 else ''}."
        if result.state == "stopped":
            return "stopped", f"Stopped at step {result.step:,} after GPU slice {n}; Resume to go on."
        return "failed", result.error or "The GPU slice failed."


def _saved_elapsed(path: Path) -> float:
    with contextlib.suppress(GPTError, OSError, ValueError, TypeError):
        return float(ckpt.read_meta(path / ckpt.WEIGHTS).get("elapsed_s") or 0.0)
    return 0.0


def default_runner() -> SliceRunner | None:
    """The runner the app uses: GPU slices on a ZeroGPU Space (or with GPT_ZEROGPU=1), else None (threads)."""
    return SliceRunner() if zero_gpu_mode() else None


def _refused(err: BaseException) -> bool:
    """ZeroGPU said no before the slice began (its messages: 'exceeded your GPU quota', 'No GPU was available')."""
    text = str(err).lower()
    return not isinstance(err, GPTError) and ("quota" in text or "no gpu was available" in text)
