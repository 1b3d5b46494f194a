"""Runs trained in GPU slices (ZeroGPU), on top of the run service's folders.

On a ZeroGPU Space no background thread gets the GPU (`gpt.zerogpu`), so a
run there is not one of the JobManager's queued jobs. Its folder is made the
same way (owner, `app.json`, the limits, the writer lock), and then each
*slice* is one call of the GPU function, made from a page event
(`gpt.ui.zerogpu`). Between slices the run is a folder whose status says
'paused'; `slices.json` counts its slices and carries what the last one
measured (step, evaluation and save times) to the next.

What it guarantees, as the manager does for its runs:
- one slice at a time per run, holding the folder's writer lock; only the
  run's owner may train, continue or stop it;
- a slice that was killed or aborted loses only the steps since its last
  save, and the next one goes on; a run whose slices die twice in a row
  without saving anything new is paused with a sentence, not retried forever;
- a refusal by ZeroGPU (the visitor's daily quota is spent) pauses the run
  and says so; Continue tries again;
- `status()` reads like `RunBook.status()`, with the slice's progress line
  ("GPU slice 3, 42 s of GPU left in this slice") as its message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import checkpoint as ckpt
from .. import corpus as corpora
from .. import estimate
from ..errors import GPTError, TrainingError
from ..slices import STOP_REQUEST, SliceOrder, SliceResult, read_step_losses, saved_step
from ..zerogpu import SliceKilled, SliceSettings
from . import folder as folders
from .folder import CORPUS_FILE
from .manager import JobManager
from .request import RunRequest, check_request
from .status import RunStatus

RECORD = "slices.json"
MAX_STALLS = 2  # slices in a row cut off before saving anything new


@dataclass
class Flight:
    """A slice under way in this process."""

    number: int
    started: float  # time.time()
    duration: float

    def seconds_left(self, now: float | None = None) -> float:
        return max(0.0, self.started + self.duration - (time.time() if now is None else now))


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
    return {"slices": 0, "gpu_s": 0.0, "stalls": 0, "hints": {}, **folders.read_json(Path(path) / RECORD)}


def write_record(path: Path, record: dict) -> None:
    ckpt.atomic_write_text(Path(path) / RECORD, json.dumps(record, indent=2))


class SlicedRuns:
    """Start, slice, continue and stop runs that train in GPU slices; read them like the manager's runs."""

    def __init__(self, manager: JobManager, gpu_fn, settings: SliceSettings | None = None):
        self.m = manager
        self.gpu_fn = gpu_fn  # SliceOrder -> SliceResult, in a GPU process (gpt.zerogpu.gpu)
        self.settings = settings or SliceSettings.from_env()
        self._flights: dict[str, Flight] = {}
        self._lock = threading.Lock()

    # --- reading -------------------------------------------------------------------------------
    def is_sliced(self, name: str) -> bool:
        return bool(folders.app_info(self.m.root, name).get("slices"))

    def record(self, name: str) -> dict:
        """The run's slices so far: their number, the GPU seconds they took, what the last one measured."""
        return read_record(self.m.runs.run_path(name))

    def flight(self, name: str) -> Flight | None:
        return self._flights.get(name)

    def progress_line(self, name: str) -> str:
        flight = self._flights.get(name)
        if flight is None:
            return ""
        return f"GPU slice {flight.number}, {flight.seconds_left():.0f} s of GPU left in this slice"

    def status(self, name: str, owner: str | None = None) -> RunStatus:
        """RunBook.status(), corrected for a sliced run: 'running' during a slice, with its progress line."""
        info = self.m.runs.status(name, owner)
        if name not in self._flights or not self.is_sliced(name):
            return info
        losses = read_step_losses(self.m.runs.run_path(name))
        step = max(info.step, losses[-1][0] if losses else 0)
        return dataclasses.replace(info, state="running", message=self.progress_line(name), step=step,
                                   fraction=min(1.0, step / info.max_iters) if info.max_iters else 0.0)

    def step_losses(self, name: str) -> list[tuple[int, float]]:
        """Every step's loss: from the folder for a sliced run (the slices write it), else the manager's."""
        if self.is_sliced(name):
            return read_step_losses(self.m.runs.run_path(name))
        return self.m.runs.step_losses(name)

    # --- starting and stopping ---------------------------------------------------------------------
    def begin(self, owner: str, corpus: corpora.Corpus, request: RunRequest, name: str | None = None,
              vocab_size: int | None = None) -> str:
        """Make the folder of a new sliced run (no slice yet); returns its name."""
        if not owner:
            raise TrainingError("The page has not finished loading; try again in a second.")
        job = self.m.active_job(owner)
        running = self._in_flight_of(owner) or (job.name if job is not None else None)
        if running is not None:
            raise TrainingError(f"You already have a run in progress ({running!r}). Stop it or let it finish "
                                "before starting another: one run per person keeps the GPU fair.")
        check_request(corpus, request, self.m.limits, self.m.device, vocab_size)
        path = folders.new_folder(self.m.root, f"{corpus.name}-{request.tokenizer}", name)
        if corpus.source == "text":
            ckpt.atomic_write_text(path / CORPUS_FILE, corpus.text)
        folders.write_app_info(path, {"owner": owner, "shared": bool(request.shared), "created": time.time(),
                                      "corpus": corpus.name, "source": corpus.source, "request": request.to_dict(),
                                      "slices": True})
        ckpt.write_status(path, "paused", "Waiting for its first GPU slice.")
        self.m.runs.remember(owner, path.name)
        return path.name

    def continue_run(self, owner: str, name: str, more_iters: int | None = None) -> str:
        """Ready a paused, stopped, interrupted or finished run of yours for more slices; returns its state."""
        path = self._own(owner, name, "continue")
        if name in self._flights:
            raise TrainingError(f"Run {name!r} is already training a GPU slice.")
        with contextlib.suppress(FileNotFoundError):
            (path / STOP_REQUEST).unlink()
        record = read_record(path)
        record["stalls"] = 0
        if (path / ckpt.WEIGHTS).exists():
            record["more"] = self._more(ckpt.read_meta(path / ckpt.WEIGHTS), more_iters)
        write_record(path, record)
        ckpt.write_status(path, "paused", "Continuing in GPU slices.", step=saved_step(path))
        return "paused"

    def _more(self, meta: dict, more_iters: int | None) -> dict:
        """A finished run (out of steps or of seconds) gets another stretch, as the manager's resume gives."""
        train, step = dict(meta.get("train") or {}), int(meta.get("step", 0))
        elapsed, max_iters = float(meta.get("elapsed_s", 0.0)), int(train.get("max_iters", step))
        max_seconds = train.get("max_seconds")
        out_of_time = bool(max_seconds) and elapsed >= float(max_seconds) - 1e-6
        if step < max_iters and not out_of_time:
            return {}
        more = {"max_iters": step + int(more_iters or max(100, max_iters)) if step >= max_iters else max_iters}
        if max_seconds:
            more["max_seconds"] = elapsed + float(max_seconds)
        self.m.limits.check_iters(more["max_iters"])
        return more

    def stop(self, owner: str, name: str) -> str:
        """Stop after this slice's next step (during a slice) or at once (between slices)."""
        path = self._own(owner, name, "stop")
        if name in self._flights:
            ckpt.atomic_write_text(path / STOP_REQUEST, str(time.time()))
            return f"Stopping **{name}**: the GPU slice saves its weights and stops within a step."
        if ckpt.read_status(path).get("state") != "paused":
            raise TrainingError(f"Run {name!r} is not training.")
        ckpt.write_status(path, "stopped", "Stopped between GPU slices; Continue to go on.",
                          step=saved_step(path))
        return f"Stopped **{name}** between GPU slices."

    # --- one slice -----------------------------------------------------------------------------------
    def run_slice(self, owner: str, name: str) -> SliceReport:
        """Train one GPU slice of `name` (blocks for up to the slice's duration) and say what happened."""
        path = self._own(owner, name, "train")
        with self._lock:
            if name in self._flights:
                raise TrainingError(f"Run {name!r} is already training a GPU slice.")
            folders.acquire_lock(path, busy_here=False)
            record = read_record(path)
            flight = Flight(record["slices"] + 1, time.time(), self.settings.duration_s)
            self._flights[name] = flight
        before = saved_step(path)
        try:
            order = self._order(path, record)
            ckpt.write_status(path, "running", f"GPU slice {flight.number}", step=before)
            try:
                outcome: SliceResult | BaseException = self.gpu_fn(order)
            except Exception as err:  # noqa: BLE001 - a kill, an abort, a refusal: each gets its sentence below
                outcome = err
            return self._after(path, record, flight, before, outcome)
        except GPTError as err:
            ckpt.write_status(path, "failed", str(err), step=before)
            raise
        finally:
            with self._lock:
                self._flights.pop(name, None)
            folders.release_lock(path)

    def _order(self, path: Path, record: dict) -> SliceOrder:
        """What the GPU process needs: the saved settings (or, before the first save, the request's)."""
        info = folders.app_info(self.m.root, path.name)
        corpus = folders.corpus_of(path, info)
        if (path / ckpt.WEIGHTS).exists():
            meta = ckpt.read_meta(path / ckpt.WEIGHTS)
            model, tokenizer, train = meta["model"], meta["tokenizer"], dict(meta.get("train") or {})
        else:
            request = RunRequest.from_dict(info.get("request"))
            ds = corpora.dataset(corpus, request.tokenizer, request.vocab_size)
            model_cfg, train_cfg = request.configs(ds.tokenizer.vocab_size, "auto")
            self.m.limits.check_params(estimate.parameters(model_cfg))
            model, tokenizer, train = model_cfg.to_dict(), ds.tokenizer.spec(), train_cfg.to_dict()
        more = record.get("more") or {}  # Continue on a finished run: another stretch
        if "max_iters" in more:
            train["max_iters"] = max(int(train.get("max_iters", 0)), int(more["max_iters"]))
        if "max_seconds" in more:
            train["max_seconds"] = max(float(train.get("max_seconds") or 0), float(more["max_seconds"]))
        train["device"] = "auto"  # inside the GPU process: the lent GPU
        source = str(path / CORPUS_FILE) if corpus.source == "text" else corpus.source
        return SliceOrder(run_dir=str(path), budget_s=self.settings.budget_s, model=model, train=train,
                          tokenizer=tokenizer, text=corpus.text, corpus_name=corpus.name,
                          meta={"corpus": corpus.name, "data_source": source}, hints=record.get("hints") or {})

    def _after(self, path: Path, record: dict, flight: Flight, before: int, outcome) -> SliceReport:
        """Write down what the slice did and decide whether another should follow."""
        n, step = flight.number, saved_step(path)
        record.update(slices=n, gpu_s=round(record["gpu_s"] + time.time() - flight.started, 1))
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
            message = f"ZeroGPU lent no GPU for slice {n}: {outcome} Click Continue to try again later."
        elif isinstance(outcome, GPTError) and not isinstance(outcome, SliceKilled):
            raise outcome
        else:
            record["stalls"] = 0 if step > before else record["stalls"] + 1
            state, more = "paused", record["stalls"] < MAX_STALLS
            message = (f"GPU slice {n} was cut off at its deadline; it had saved step {step:,}, and the next slice "
                       "goes on from there." if more else
                       f"GPU slices {n - 1} and {n} were both cut off before they could save anything new (at step "
                       f"{step:,}). Use a smaller model, or a longer slice (GPT_ZEROGPU_SLICE_S), then Continue.")
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
                              "goes on from there (by itself while this page is open, or click Continue).")
        if result.state == "finished":
            return "finished", f"Finished: step {result.step:,}, in {n} GPU slice{'s' if n > 1 else ''}."
        if result.state == "stopped":
            return "stopped", f"Stopped at step {result.step:,} after GPU slice {n}; Continue to go on."
        return "failed", result.error or "The GPU slice failed."

    # --- helpers -------------------------------------------------------------------------------------
    def _own(self, owner: str, name: str, action: str) -> Path:
        path = self.m.runs.run_path(name)
        info = folders.app_info(self.m.root, name)
        if not owner or info.get("owner") != owner:
            raise TrainingError(f"Run {name!r} is not yours; only its owner may {action} it. You can sample from it.")
        if not info.get("slices"):
            raise TrainingError(f"Run {name!r} trains on this server's CPU, not in GPU slices; use Resume.")
        job = self.m.job(name)
        if job is not None and job.active:
            raise TrainingError(f"Run {name!r} is already {job.state}.")
        return path

    def _in_flight_of(self, owner: str) -> str | None:
        return next((n for n in self._flights if self.m.runs.owner_of(n) == owner), None)


def _refused(err: BaseException) -> bool:
    """ZeroGPU said no before the slice began (its messages: 'exceeded your GPU quota', 'No GPU was available')."""
    text = str(err).lower()
    return not isinstance(err, GPTError) and ("quota" in text or "no gpu was available" in text)
