"""One slice of a training run: from the last checkpoint until a time budget is nearly spent.

On a ZeroGPU Space the GPU is lent for one function call of a minute or so
(`gpt.jobs.zerogpu`), so a run trains as a chain of calls to `train_slice`. Each
one loads the run folder's last checkpoint (weights, optimizer state, step:
`Trainer(resume=True)` is exact), trains, stops itself before its budget runs
out, saves atomically and returns a `SliceResult`. The next slice goes on from
there, so a run trained in slices equals, weight for weight, one trained in
one go (same seed, same batches, the same dropout stream: its state is saved
with each checkpoint).

What crosses into a slice is a `SliceOrder` and what comes out a
`SliceResult`: plain numbers, strings and dicts, picklable, nothing CUDA.
Everything else travels through the run folder: the checkpoint, the
metrics rows, `steps.jsonl` (the loss of each step, which the trainer writes
live, so the page draws the curve while the slice runs) and `stop.request` (a
Stop click during a slice). The slice only listens to the trainer's events:
each step asks the pacer whether the next one still fits, each evaluation and
save tells the pacer what it cost.

If the slice is killed at its deadline anyway (a step slower than foreseen),
what it saved is whole (`gpt.checkpoint` writes atomically) and the next slice
retrains only the steps since that save.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import checkpoint as ckpt
from ..corpus import Corpus
from ..limits import Limits
from ..model import GPTConfig
from ..tokenizers import tokenizer_from_spec
from ..train import TrainConfig, Trainer
from . import kinds
from .request import RunRequest

STOP_REQUEST = "stop.request"  # made by the app when Stop is clicked during a slice


@dataclass(frozen=True)
class SliceOrder:
    """Everything a slice needs, as plain data (it is pickled into the GPU process)."""

    run_dir: str
    budget_s: float  # train until this many seconds after the slice starts, save included
    model: dict  # GPTConfig.to_dict()
    train: dict  # TrainConfig.to_dict()
    tokenizer: dict  # Tokenizer.spec()
    text: str  # the corpus (a fine-tune's conversation file; '' for a built-in task)
    corpus_name: str
    request: dict = field(default_factory=dict)  # RunRequest.to_dict(): the kind of run, a fine-tune's task
    source: str = "text"  # the corpus' source (gpt.corpus.Corpus)
    meta: dict = field(default_factory=dict)  # extra checkpoint metadata (corpus, data_source)
    hints: dict = field(default_factory=dict)  # costs the last slice measured: step_s, eval_s, save_s


@dataclass(frozen=True)
class SliceResult:
    """What a slice did, as plain data: nothing CUDA comes back out."""

    state: str  # 'paused' (budget spent, more to train), 'finished', 'stopped' (Stop clicked), 'failed'
    step: int  # the step of the checkpoint on disk now
    start_step: int
    max_iters: int
    seconds: float  # how long the slice ran
    device: str
    error: str = ""
    hints: dict = field(default_factory=dict)


class Pacer:
    """Says, after each step, whether the next step (and the save after it) still fits before the deadline.

    It measures what it can (a step, an evaluation, a save) and keeps a step's
    worth of slack on top; `hints` carry the previous slice's measurements.
    """

    def __init__(self, deadline: float, cfg: TrainConfig, hints: dict | None = None, clock=time.monotonic):
        hints = hints or {}
        self.deadline, self.cfg, self.clock = deadline, cfg, clock
        self.step_s = float(hints.get("step_s", 0.0))
        self.eval_s = hints.get("eval_s")
        self.save_s = float(hints.get("save_s", 0.2))
        self._mark = clock()
        self._eval_from: float | None = None

    def _evaluates(self, step: int) -> bool:
        return self.cfg.eval_batches(step, step >= self.cfg.max_iters) > 0

    def _eval_cost(self) -> float:
        if self.eval_s is not None:
            return float(self.eval_s)
        return 2 * self.cfg.eval_iters * self.step_s + self.save_s + 0.5  # forward-only batches, a sample

    def after_step(self, step: int) -> bool:
        """Called after step `step`; True means: stop now (after this step's evaluation, if it has one)."""
        now = self.clock()
        took = now - self._mark
        self.step_s = took if not self.step_s else max(took, 0.8 * self.step_s + 0.2 * took)
        self._mark = now
        committed = 0.0
        if self._evaluates(step):
            self._eval_from = now
            committed = self._eval_cost()
        upcoming = 2 * self.step_s + (self._eval_cost() if self._evaluates(step + 1) else 0.0) + self.save_s
        return now + committed + upcoming > self.deadline

    def evaluated(self) -> None:
        now = self.clock()
        if self._eval_from is not None:
            self.eval_s = max(float(self.eval_s or 0.0), now - self._eval_from)
            self._eval_from = None
        self._mark = now

    def saved(self, seconds: float) -> None:
        self.save_s = max(self.save_s * 0.5, seconds)

    def hints(self) -> dict:
        return {"step_s": self.step_s, "eval_s": self.eval_s, "save_s": self.save_s}


# --- the slice -----------------------------------------------------------------------------------


def train_slice(order: SliceOrder) -> SliceResult:
    """Train the run in `order.run_dir` from its last checkpoint until `order.budget_s` is nearly spent.

    1) rebuild the dataset and the trainer (resuming when a checkpoint exists: the trainer cuts the
       curve back to it and re-evaluates a row a kill lost);
    2) listen: after each step, stop on a Stop click or when the pacer says the next step would not fit;
    3) train;
    4) return what happened, as plain data.
    """
    started = time.monotonic()
    run = Path(order.run_dir)
    model_cfg, train_cfg = GPTConfig.from_dict(order.model), TrainConfig.from_dict(order.train)
    objective = kinds.objective_for(RunRequest.from_dict(order.request), Corpus(order.corpus_name, order.text,
                                    order.source), tokenizer_from_spec(order.tokenizer), model_cfg.block_size, Limits())
    pacer = Pacer(started + order.budget_s, train_cfg, order.hints)
    trainer = Trainer(model_cfg, train_cfg, objective, run, resume=(run / ckpt.WEIGHTS).exists(), meta=order.meta)
    start_step = trainer.step
    stopped_by_user = False

    def after_step(p: dict) -> None:
        nonlocal stopped_by_user
        if (run / STOP_REQUEST).exists():
            stopped_by_user = True
            trainer.request_stop()
        elif pacer.after_step(p["step"]):
            trainer.request_stop()

    trainer.add_callback("on_step", after_step)
    trainer.add_callback("on_eval", lambda row: pacer.evaluated())
    trainer.add_callback("on_save", pacer.saved)
    state = trainer.run()
    if state == "stopped":
        state = "stopped" if stopped_by_user else "paused"
    return SliceResult(
        state=state, step=saved_step(run), start_step=start_step, max_iters=train_cfg.max_iters,
        seconds=time.monotonic() - started, device=str(trainer.device), error=trainer.error or "",
        hints=pacer.hints(),
    )


def saved_step(run_dir: str | os.PathLike) -> int:
    """The step of the run folder's checkpoint (0 before its first save)."""
    try:
        return int(ckpt.read_meta(Path(run_dir) / ckpt.WEIGHTS).get("step", 0))
    except (OSError, ValueError):
        return 0
