"""The training loop, one for every kind of run: in the foreground (CLI), a background thread (app) or another process.

Like minGPT's trainer, the loop knows neither what the model learns nor who
listens. What the model learns is an *objective* (`gpt.train.objective`):
where batches come from, what the loss is, what an evaluation measures
(next-token pretraining, fine-tuning on conversations, RL with a grader).
Who listens registers callbacks (`add_callback`): "on_step" gets the progress
after every step, "on_eval" every evaluation row, "on_save" the seconds a
save took. A CLI progress bar, a live web plot, a pacer that stops a run before a deadline and a
test all listen to the same loop.

What a run guarantees:
- a checkpoint at every evaluation, written atomically (gpt.checkpoint),
  with the curve so far (gpt.history) and the dropout stream's state;
- `request_stop()` ends the run within a step and saves the current weights;
- resume continues the same step, schedule, optimizer state and dropout
  stream, with the same batches an uninterrupted run would have drawn
  (batches are seeded by step): weight for weight the same run;
- a NaN or infinite loss stops the run with a clear error and keeps the
  last good checkpoint untouched.

The step itself is `train_step`, in the lecture's order: batch, forward,
loss, backward, clip, step.

Run it: `python -m gpt.train --data shakespeare --tokenizer char --preset small` (the CLI: `gpt.train.cli`).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from .. import checkpoint as ckpt
from .. import distributed, history
from ..data import Dataset
from ..device import autocast, configure_cpu_threads, detect_device, device_type, enable_tf32, resolve_dtype
from ..errors import ConfigError, GPTError, TrainingError
from ..estimate import human_seconds
from ..model import GPTConfig, build_model, flops_per_token, parameter_breakdown
from ..optim import build_optimizers, lr_multiplier, set_lr
from .config import TrainConfig
from .objective import Batch, NextToken, Objective

EVENTS = ("on_step", "on_eval", "on_save")


def peak_flops(device: str) -> float | None:
    """Dense bf16 peak of the accelerator, for model FLOPs utilisation; None when unknown."""
    env = os.environ.get("GPT_PEAK_FLOPS")
    if env:
        return float(env)
    if device_type(device) != "cuda":
        return None
    name = torch.cuda.get_device_name().lower()
    for key, flops in (("h200", 989e12), ("h100", 989e12), ("a100", 312e12), ("l4", 121e12), ("a10", 125e12), ("t4", 65e12)):
        if key in name:
            return flops
    return None


def rng_state(device: str) -> dict[str, torch.Tensor]:
    """The global random generators' states (dropout draws from them), to save with a checkpoint."""
    state = {"cpu": torch.get_rng_state()}
    if device_type(device) == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


class Trainer:
    """One training run of `model_config` on `objective` (a `Dataset` means next-token pretraining on it).

    `run()` trains until the step or time limit or a stop request; the caller decides where it runs
    (the CLI's main thread, the run service's worker thread, another process).
    """

    def __init__(
        self,
        model_config: GPTConfig,
        train_config: TrainConfig,
        objective: Objective | Dataset,
        out_dir: str | os.PathLike | None = None,
        *,
        resume: bool = False,
        on_eval: Callable[[dict], None] | None = None,
        on_step: Callable[[dict], None] | None = None,
        meta: dict | None = None,
    ):
        self.model_config = model_config
        self.config = train_config
        self.objective = NextToken(objective) if isinstance(objective, Dataset) else objective
        self.tokenizer = self.objective.tokenizer
        self.out_dir = Path(out_dir) if out_dir else None
        self.extra_meta = dict(meta or {})  # what a checkpoint records besides the run (corpus, parent run, ...)
        self.callbacks: dict[str, list[Callable]] = {event: [] for event in EVENTS}
        for event, fn in (("on_eval", on_eval), ("on_step", on_step)):
            if fn is not None:
                self.add_callback(event, fn)
        self.state = "created"  # created, running, finished, stopped, failed
        self.error: str | None = None
        self.end_reason = ""  # once it ended: why, as a sentence ("reached its 2,000 steps")
        self.metrics: list[dict] = []  # every evaluation row, resumes included
        self.step_losses: list[tuple[int, float]] = []  # (step, batch loss): the whole curve, resumes included
        self.progress: dict = {}
        self.step = 0
        self.elapsed = 0.0  # training wall time, carried across resumes
        self.lr = 0.0  # the learning rate of the latest step
        self._stopped_by: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # held while weights change; sampling copies under it
        self._last_saved_step: int | None = None

        self.objective.check(model_config)
        self._setup_device()
        torch.manual_seed(train_config.seed)
        self.model = build_model(model_config).to(self.device)
        self.optimizers = build_optimizers(
            self.model, train_config.optimizer, train_config.lr, train_config.weight_decay,
            (train_config.beta1, train_config.beta2), device_type(self.device), muon_lr=train_config.muon_lr,
            muon_weight_decay=train_config.muon_weight_decay,
        )
        self.steps_log: history.StepLog | None = None  # the run folder's steps.jsonl, once the run opens it
        if resume:
            self._resume()
        self.n_params = parameter_breakdown(self.model)["total"]
        self.flops_per_token = flops_per_token(model_config, self.n_params)
        self.forward = torch.compile(self.model) if train_config.compile else self.model
        self._train_forward = self.forward
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.dist.local_rank] if device_type(self.device) == "cuda" else None
            self._train_forward = DDP(self.forward, device_ids=ids)

    def add_callback(self, event: str, fn: Callable) -> None:
        """Listen to the loop: "on_step" (the progress dict), "on_eval" (the row), "on_save" (seconds taken)."""
        if event not in EVENTS:
            raise ValueError(f"Unknown trainer event {event!r}; one of {', '.join(EVENTS)}.")
        self.callbacks[event].append(fn)

    def _emit(self, event: str, payload) -> None:
        for fn in self.callbacks[event]:
            fn(payload)

    # --- set-up ---------------------------------------------------------------------------
    def _setup_device(self) -> None:
        """The device, this process's rank under torchrun, threads, TF32 and the autocast dtype."""
        cfg = self.config
        self.dist, self.device = distributed.setup(detect_device(cfg.device))
        shards = self.dist.world_size * cfg.grad_accum
        if cfg.batch_size % shards:
            raise ConfigError(
                f"batch_size {cfg.batch_size} must divide evenly over {self.dist.world_size} process(es) x "
                f"{cfg.grad_accum} accumulation step(s); try {shards * max(1, cfg.batch_size // shards)}."
            )
        if not self.dist.is_main:
            self.out_dir = None  # only rank 0 evaluates, logs and writes
        if device_type(self.device) == "cpu":
            configure_cpu_threads()
        enable_tf32()
        self.dtype = resolve_dtype(cfg.dtype, self.device)

    def _resume(self) -> None:
        """Weights, optimizer moments, the dropout stream, step, time and curve from the run folder."""
        if self.out_dir is None or not (self.out_dir / ckpt.WEIGHTS).exists():
            raise TrainingError(f"Nothing to resume in {self.out_dir}: it has no {ckpt.WEIGHTS}.")
        saved = ckpt.load_checkpoint(self.out_dir, device=self.device, with_optimizer=True)
        if saved.model_config != self.model_config:
            raise TrainingError("The checkpoint's model settings differ from the ones given; resume with the saved settings.")
        self.model.load_state_dict(saved.model.state_dict())
        if saved.optimizer_state is not None and len(saved.optimizer_state) == len(self.optimizers):
            for opt, state in zip(self.optimizers, saved.optimizer_state):
                opt.load_state_dict(state)
        if saved.rng_state:
            torch.set_rng_state(saved.rng_state["cpu"])
            if "cuda" in saved.rng_state and device_type(self.device) == "cuda":
                torch.cuda.set_rng_state(saved.rng_state["cuda"], self.device)
        self.step = saved.step
        self.elapsed = float(saved.meta.get("elapsed_s", 0.0))
        self.metrics, self.step_losses = history.restore(self.out_dir, saved.meta, self.step)
        self._last_saved_step = self.step

    # --- progress -------------------------------------------------------------------------
    def _done(self) -> bool:
        return self.step >= self.config.max_iters or bool(self.config.max_seconds and self.elapsed >= self.config.max_seconds)

    def _eta(self, tokens_per_sec: float) -> float | None:
        if tokens_per_sec <= 0:
            return None
        remaining_steps = self.config.max_iters - self.step
        tokens_per_step = self.config.batch_size * self.model_config.block_size
        eta = remaining_steps * tokens_per_step / tokens_per_sec
        if self.config.max_seconds:
            eta = min(eta, max(0.0, self.config.max_seconds - self.elapsed))
        return eta

    def _set_lr(self) -> float:
        """This step's learning rate: warm-up, then cosine over the run's steps or seconds (whichever is nearer)."""
        cfg = self.config
        return set_lr(self.optimizers, lr_multiplier(self.step, cfg.warmup_iters,
                                                     cfg.fraction_done(self.step, self.elapsed), cfg.min_lr_ratio))

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # --- evaluation and saving ------------------------------------------------------------
    def evaluate_and_save(self, tokens_per_sec: float = 0.0, eval_iters: int | None = None, save: bool = True) -> dict:
        """Evaluate (the objective's numbers), save a checkpoint (unless `save` is False: an early, cheaper point
        of the curve), append the row to metrics.jsonl."""
        self.model.eval()
        try:
            row = {"step": self.step, **self.objective.evaluate(self, eval_iters or self.config.eval_iters)}
        finally:
            self.model.train()
        row.update(lr=self.lr, tokens_per_sec=tokens_per_sec, elapsed_s=self.elapsed, eta_s=self._eta(tokens_per_sec))
        peak = peak_flops(self.device)
        if peak and tokens_per_sec:
            row["mfu"] = self.flops_per_token * tokens_per_sec / peak
        if not all(math.isfinite(v) for k, v in row.items() if k.endswith("_loss")):
            raise TrainingError(self._nan_message("evaluation"))
        self.metrics.append(row)
        if self.out_dir is not None:
            if save:
                self.save()
            self._check_folder()
            ckpt.append_metrics(self.out_dir, row)
        self._emit("on_eval", row)
        return row

    def save(self) -> None:
        """A checkpoint of this step: weights, optimizer, dropout stream, settings and the curve so far."""
        if self.out_dir is None:
            return
        self._check_folder()
        t0 = time.monotonic()
        best = min((r["val_loss"] for r in self.metrics if "val_loss" in r), default=None)
        if self.steps_log is not None:
            self.steps_log.flush()  # every step up to this one is on disk before the checkpoint that follows it
        with self._lock:
            if not all(torch.isfinite(p).all() for p in self.model.parameters()):  # never overwrite a good save
                raise TrainingError(self._nan_message("saving"))
            ckpt.save_checkpoint(
                self.out_dir, self.model, self.model_config, self.tokenizer, self.step, self.optimizers,
                rng_state=rng_state(self.device), train=self.config.to_dict(), elapsed_s=self.elapsed,
                best_val_loss=best, n_params=self.n_params, world_size=self.dist.world_size,
                history=history.embedded(self.metrics, self.step_losses), **self.extra_meta,
            )
        self._last_saved_step = self.step
        self._emit("on_save", time.monotonic() - t0)

    def _check_folder(self) -> None:
        if not self.out_dir.is_dir():  # deleted under us: writing would recreate it without its owner file
            raise TrainingError("The run's folder was deleted while it trained, so training stopped and nothing "
                                "was written; start the run again.")

    def _nan_message(self, where: str) -> str:
        kept = (
            f"the last good checkpoint (step {self._last_saved_step}) is kept"
            if self._last_saved_step is not None
            else "no checkpoint had been saved yet"
        )
        return (
            f"The loss became NaN or infinite at step {self.step} ({where}); training stopped and {kept}. "
            f"The learning rate ({self.config.lr:g}) is probably too high: try a tenth of it."
        )

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> str:
        """Train until max_iters, max_seconds or a stop request. Returns the final state."""
        self.state = "running"
        try:
            if self.out_dir is not None:
                self._open_folder()
            self._loop()
            if self.state == "running":
                self.state = "finished"
        except GPTError as err:
            self.state, self.error = "failed", str(err)
        except OSError as err:  # metrics or status in a folder gone read-only: no server path in the message
            self.state, self.error = "failed", f"Writing the run folder failed: {ckpt.why_write_failed(err)}."
        except Exception as err:  # noqa: BLE001 - any crash becomes a failed run with its message
            self.state, self.error = "failed", f"{type(err).__name__}: {err}"
        self.end_reason = self._why_it_ended()
        if self.out_dir is not None:
            with contextlib.suppress(GPTError, OSError):
                if self.steps_log is not None:
                    self.steps_log.flush()
                ckpt.write_status(self.out_dir, self.state, self.error or "", step=self._last_saved_step or 0,
                                  end_reason=self.end_reason)
        return self.state

    def _open_folder(self) -> None:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TrainingError(f"Cannot make the run folder {self.out_dir.name}: {ckpt.why_write_failed(err)}.") from None
        if self._last_saved_step is None:
            history.clear(self.out_dir)  # a new run: no rows of an earlier attempt that never saved
        self.steps_log = history.StepLog(self.out_dir)
        ckpt.write_status(self.out_dir, "running", step=self.step)

    def _why_it_ended(self) -> str:
        cfg = self.config
        if self.state == "failed":
            return f"failed: {self.error}"
        if self.state == "stopped":
            by = f" by {self._stopped_by}" if self._stopped_by else ""
            return f"stopped{by} at step {self.step:,}"
        if self.step >= cfg.max_iters:
            return f"reached its {cfg.max_iters:,} steps"
        return f"reached its {human_seconds(cfg.max_seconds)} time limit at step {self.step:,}"

    def _eval_batches(self) -> int:
        return self.config.eval_batches(self.step, self._done())

    def _first_evaluation(self) -> None:
        """Before the first step, or on resume where an evaluation's row is missing (a kill between the
        checkpoint and its metrics row): evaluate, so the curve keeps every point."""
        cfg = self.config
        if self.step == 0:
            # an untrained model's loss is near ln(vocab) on every batch, so a quarter of the evaluation
            # batches measure it as well and show the first point ~4x sooner
            self.evaluate_and_save(eval_iters=max(1, cfg.eval_iters // 4))
        elif self._eval_batches() == cfg.eval_iters and not any(r.get("step") == self.step for r in self.metrics):
            self.evaluate_and_save()

    def _loop(self) -> None:
        cfg = self.config
        self.model.train()
        tokens_per_step = cfg.batch_size * self.model_config.block_size
        tokens_per_sec = 0.0
        self.lr = self._set_lr()
        self._first_evaluation()
        check_every = 1 if device_type(self.device) == "cpu" else 10
        window_t, window_steps = time.perf_counter(), 0
        nan = False
        while True:
            stop, done, nan = distributed.agree([self._stop.is_set(), self._done(), nan], self.dist, self.device)
            if nan:
                raise TrainingError(self._nan_message("training"))
            if done:
                break
            if stop:
                self.state = "stopped"
                self.save()
                return
            t0 = time.perf_counter()
            loss = self.train_step(check_finite=self.step % check_every == 0)
            if loss is None:
                nan = True
                continue  # every rank learns of it at the top of the loop, before any update
            self.elapsed += time.perf_counter() - t0
            value = loss.item() if check_every == 1 or self.step % check_every == 0 else None  # a GPU syncs every 10
            if value is not None:
                self.step_losses.append((self.step, value))
                if self.steps_log is not None:
                    self.steps_log.add(self.step, value)
            window_steps += 1
            now = time.perf_counter()
            window_rate = window_steps * tokens_per_step / max(now - window_t, 1e-9)
            if now - window_t >= 1.0 or window_steps >= 50:  # a fresh figure about once a second
                tokens_per_sec = window_rate
                window_t, window_steps = now, 0
            elif tokens_per_sec == 0.0:  # no full window yet: the partial one beats showing 0
                tokens_per_sec = window_rate
            self.progress = {
                "step": self.step, "max_iters": cfg.max_iters, "loss": value if check_every == 1 else None,
                "lr": self.lr, "tokens_per_sec": tokens_per_sec, "elapsed_s": self.elapsed, "eta_s": self._eta(tokens_per_sec),
                "fraction": min(1.0, cfg.fraction_done(self.step, self.elapsed)),
            }
            self._emit("on_step", self.progress)
            batches = self._eval_batches()
            if batches:
                t_eval = time.perf_counter()
                self.evaluate_and_save(tokens_per_sec, batches, save=batches == cfg.eval_iters)
                self.elapsed += time.perf_counter() - t_eval  # evaluation counts toward wall time
                window_t, window_steps = time.perf_counter(), 0

    def next_batch(self) -> Batch:
        """The training batch of this step: drawn from a generator seeded by the step alone (exact resume)."""
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step)
        return self.objective.batch(self, "train", gen)  # the global batch, the same on every rank

    def train_step(self, batch: Batch | None = None, check_finite: bool = True) -> torch.Tensor | None:
        """One optimizer step, in the lecture's order; returns the batch loss (None if it was NaN).

        1) the learning rate for this step (warm-up, then cosine over steps or seconds);
        2) the batch (B, T): this process's rows of it, in `grad_accum` micro-batches;
        3) forward and the loss, then backward, on each micro-batch (DDP syncs gradients on the last);
        4) clip the gradient norm;
        5) a NaN or infinite loss: None, and the weights stay as they were;
        6) the optimizer step, under the lock that sampling copies the weights with.
        """
        cfg = self.config
        lr = self._set_lr()
        batch = (batch or self.next_batch()).rows(lambda t: distributed.shard(t, self.dist))
        loss = torch.zeros((), device=self.device)
        micro = batch.split(cfg.grad_accum)
        for i, part in enumerate(micro):
            last = i == len(micro) - 1
            with contextlib.nullcontext() if (last or not self.dist.enabled) else self._train_forward.no_sync():
                with autocast(self.device, self.dtype):
                    part_loss = self.objective.loss(self._train_forward, part)
                (part_loss / len(micro)).backward()
            loss += part_loss.detach() / len(micro)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        if check_finite and not torch.isfinite(loss):
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            return None
        with self._lock:
            for opt in self.optimizers:
                opt.step()
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        self.step += 1
        self.lr = lr
        return loss

    # --- from other threads ---------------------------------------------------------------
    def request_stop(self, by: str | None = None) -> None:
        """Stop at the next step, saving first; `by` ('you') says who asked, in the end reason."""
        self._stopped_by = by or self._stopped_by
        self._stop.set()

    def snapshot_model(self) -> torch.nn.Module:
        """A copy of the current weights (for sampling while training goes on)."""
        copy = build_model(self.model_config)
        with self._lock:
            copy.load_state_dict(self.model.state_dict())
        return copy.eval()
