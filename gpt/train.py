"""The training loop: in the foreground (CLI) or a background thread (app).

Like minGPT's trainer, the loop knows nothing of who listens: it calls
`on_eval(row)` after every evaluation and `on_step(progress)` after every
step, and a CLI progress bar, a live web plot and a test can all listen.

What a run guarantees:
- a checkpoint at every evaluation, written atomically (see checkpoint.py);
- `request_stop()` ends the run within a step and saves the current weights;
- resume continues the same step, schedule and optimizer state, with the
  same batches an uninterrupted run would have drawn (batches are seeded by
  step);
- a NaN or infinite loss stops the run with a clear error and keeps the
  last good checkpoint untouched.

Run it: `python -m gpt.train --data shakespeare --tokenizer char --preset small` (the CLI: `gpt.train_cli`).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from . import checkpoint as ckpt
from . import distributed
from .data import Dataset
from .device import autocast, configure_cpu_threads, detect_device, device_type, enable_tf32, resolve_dtype
from .engine import SamplingSettings, generate
from .errors import ConfigError, GPTError, TrainingError
from .model import GPTConfig, build_model, flops_per_token, parameter_breakdown
from .optim import build_optimizers, lr_multiplier, set_lr
from .tokcompare import bits_per_char
from .tokenizer import Tokenizer
from .train_config import TrainConfig


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


class Trainer:
    """One training run. `run()` blocks; `start()` runs it in a daemon thread."""

    def __init__(
        self,
        model_config: GPTConfig,
        train_config: TrainConfig,
        dataset: Dataset,
        out_dir: str | os.PathLike | None = None,
        *,
        resume: bool = False,
        on_eval: Callable[[dict], None] | None = None,
        on_step: Callable[[dict], None] | None = None,
        meta: dict | None = None,
    ):
        self.model_config = model_config
        self.config = train_config
        self.dataset = dataset
        self.tokenizer: Tokenizer = dataset.tokenizer
        self.out_dir = Path(out_dir) if out_dir else None
        self.on_eval = on_eval
        self.on_step = on_step
        self.extra_meta = dict(meta or {})
        self.state = "created"  # created, running, finished, stopped, failed
        self.error: str | None = None
        self.metrics: list[dict] = []
        self.progress: dict = {}
        self.step = 0
        self.elapsed = 0.0  # training wall time, carried across resumes
        self._stop = threading.Event()
        self._lock = threading.Lock()  # held while weights change; sampling copies under it
        self._thread: threading.Thread | None = None
        self._last_saved_step: int | None = None
        self.lr = 0.0  # the learning rate of the latest step

        if model_config.vocab_size != self.tokenizer.vocab_size:
            raise ConfigError(
                f"The model's vocab_size ({model_config.vocab_size}) must equal the tokenizer's ({self.tokenizer.vocab_size})."
            )
        dataset.check_block_size(model_config.block_size)
        self.dist, self.device = distributed.setup(detect_device(train_config.device))
        shards = self.dist.world_size * train_config.grad_accum
        if train_config.batch_size % shards:
            raise ConfigError(
                f"batch_size {train_config.batch_size} must divide evenly over {self.dist.world_size} process(es) x "
                f"{train_config.grad_accum} accumulation step(s); try {shards * max(1, train_config.batch_size // shards)}."
            )
        if not self.dist.is_main:
            self.out_dir, self.on_eval = None, None  # only rank 0 evaluates, logs and writes
        if device_type(self.device) == "cpu":
            configure_cpu_threads()
        enable_tf32()
        self.dtype = resolve_dtype(train_config.dtype, self.device)
        torch.manual_seed(train_config.seed)
        self.model = build_model(model_config).to(self.device)
        self.optimizers = build_optimizers(
            self.model, train_config.optimizer, train_config.lr, train_config.weight_decay,
            (train_config.beta1, train_config.beta2), device_type(self.device), muon_lr=train_config.muon_lr,
        )
        if resume:
            self._load_resume_state()
        self.n_params = parameter_breakdown(self.model)["total"]
        self.flops_per_token = flops_per_token(model_config, self.n_params)
        self._forward = torch.compile(self.model) if train_config.compile else self.model
        self._train_forward = self._forward
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.dist.local_rank] if device_type(self.device) == "cuda" else None
            self._train_forward = DDP(self._forward, device_ids=ids)

    # --- resume -------------------------------------------------------------------------
    def _load_resume_state(self) -> None:
        if self.out_dir is None or not (self.out_dir / ckpt.WEIGHTS).exists():
            raise TrainingError(f"Nothing to resume in {self.out_dir}: it has no {ckpt.WEIGHTS}.")
        saved = ckpt.load_checkpoint(self.out_dir, device=self.device, with_optimizer=True)
        if saved.model_config != self.model_config:
            raise TrainingError("The checkpoint's model settings differ from the ones given; resume with the saved settings.")
        self.model.load_state_dict(saved.model.state_dict())
        if saved.optimizer_state is not None and len(saved.optimizer_state) == len(self.optimizers):
            for opt, state in zip(self.optimizers, saved.optimizer_state):
                opt.load_state_dict(state)
        self.step = saved.step
        self.elapsed = float(saved.meta.get("elapsed_s", 0.0))
        self.metrics = [r for r in ckpt.read_metrics(self.out_dir) if r.get("step", 0) <= self.step]
        ckpt.truncate_metrics(self.out_dir, self.step)
        self._last_saved_step = self.step

    # --- the pieces of the loop -----------------------------------------------------------
    def _batch(self, split: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dataset.get_batch(split, self.config.batch_size, self.model_config.block_size, self.device, generator)

    @torch.inference_mode()
    def estimate_loss(self, eval_iters: int | None = None) -> dict[str, float]:
        """Mean loss over the same eval_iters batches each time, so curves are not noisy from sampling."""
        self.model.eval()
        out = {}
        n = eval_iters or self.config.eval_iters
        for split in ("train", "val"):
            gen = torch.Generator().manual_seed(self.config.seed + 1)
            losses = torch.zeros(n)
            for i in range(n):
                x, y = self._batch(split, gen)
                with autocast(self.device, self.dtype):
                    _, loss = self._forward(x, y)
                losses[i] = loss.float().item()
            out[split] = losses.mean().item()
        self.model.train()
        return out

    def sample_text(self) -> str:
        if not self.config.sample_tokens:
            return ""
        from .sample import prompt_to_ids

        ids, _ = prompt_to_ids(self.tokenizer, self.config.sample_prompt, self.model_config.block_size)
        settings = SamplingSettings(max_new_tokens=self.config.sample_tokens, temperature=0.8, top_k=None, seed=1337)
        # token by token on a CPU, bf16 casts cost more than they save (~2x slower): float32 there
        dtype = torch.float32 if device_type(self.device) == "cpu" else self.dtype
        with autocast(self.device, dtype):
            out = generate(self.model, ids, settings, should_stop=self._stop.is_set)  # Stop ends a long sample too
        return self.tokenizer.decode(ids + out) if self.config.sample_prompt else self.tokenizer.decode(out)

    def _progress_fraction(self) -> float:
        frac = self.step / self.config.max_iters
        if self.config.max_seconds:
            frac = max(frac, self.elapsed / self.config.max_seconds)
        return frac

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

    def evaluate_and_save(self, lr: float, tokens_per_sec: float, eval_iters: int | None = None) -> dict:
        losses = self.estimate_loss(eval_iters)
        row = {
            "step": self.step,
            "train_loss": losses["train"],
            "val_loss": losses["val"],
            "val_bpc": bits_per_char(losses["val"], self.dataset.val_chars_per_token),  # compares tokenizers
            "val_ppl": math.exp(min(losses["val"], 700.0)),  # perplexity: as unsure as a choice among this many tokens
            "lr": lr,
            "tokens_per_sec": tokens_per_sec,
            "elapsed_s": self.elapsed,
            "eta_s": self._eta(tokens_per_sec),
        }
        peak = peak_flops(self.device)
        if peak and tokens_per_sec:
            row["mfu"] = self.flops_per_token * tokens_per_sec / peak
        row["sample"] = self.sample_text()
        if not (math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"])):
            raise TrainingError(self._nan_message("evaluation"))
        self.metrics.append(row)
        if self.out_dir is not None:
            self.save()
            ckpt.append_metrics(self.out_dir, row)
        if self.on_eval:
            self.on_eval(row)
        return row

    def save(self) -> None:
        if self.out_dir is None:
            return
        if not self.out_dir.is_dir():  # deleted under us: writing would recreate it without its owner file
            raise TrainingError("The run's folder was deleted while it trained, so training stopped and nothing "
                                "was written; start the run again.")
        best = min((r["val_loss"] for r in self.metrics), default=None)
        with self._lock:
            if not all(torch.isfinite(p).all() for p in self.model.parameters()):  # never overwrite a good save
                raise TrainingError(self._nan_message("saving"))
            ckpt.save_checkpoint(
                self.out_dir, self.model, self.model_config, self.tokenizer, self.step, self.optimizers,
                train=self.config.to_dict(), elapsed_s=self.elapsed, best_val_loss=best,
                n_params=self.n_params, world_size=self.dist.world_size, **self.extra_meta,
            )
        self._last_saved_step = self.step

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
                try:
                    self.out_dir.mkdir(parents=True, exist_ok=True)
                except OSError as err:
                    raise TrainingError(f"Cannot make the run folder {self.out_dir.name}: {ckpt.why_write_failed(err)}.") from None
                ckpt.write_status(self.out_dir, "running", step=self.step)
            self._loop()
            if self.state == "running":
                self.state = "finished"
        except GPTError as err:
            self.state, self.error = "failed", str(err)
        except OSError as err:  # metrics or status in a folder gone read-only: no server path in the message
            self.state, self.error = "failed", f"Writing the run folder failed: {ckpt.why_write_failed(err)}."
        except Exception as err:  # noqa: BLE001 - any crash becomes a failed run with its message
            self.state, self.error = "failed", f"{type(err).__name__}: {err}"
        if self.out_dir is not None:
            try:
                ckpt.write_status(self.out_dir, self.state, self.error or "", step=self._last_saved_step or 0)
            except GPTError:
                pass
        return self.state

    def _loop(self) -> None:
        cfg = self.config
        self.model.train()
        tokens_per_step = cfg.batch_size * self.model_config.block_size
        tokens_per_sec = 0.0
        self.lr = set_lr(self.optimizers, lr_multiplier(self.step, cfg.warmup_iters, self._progress_fraction(),
                                                        cfg.min_lr_ratio))
        if self.step == 0:
            # The first point on the plot: an untrained model's loss is near ln(vocab) on every batch,
            # so a quarter of the evaluation batches measure it as well and show it ~4x sooner.
            self.evaluate_and_save(self.lr, 0.0, eval_iters=max(1, cfg.eval_iters // 4))
        gen = torch.Generator()
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
            gen.manual_seed(cfg.seed * 1_000_003 + self.step)  # batch depends on step only: exact resume
            x, y = self._batch("train", gen)  # (B, T): the global batch, the same on every rank
            loss = self.train_step(x, y, check_finite=self.step % check_every == 0)
            if loss is None:
                nan = True
                continue  # every rank learns of it at the top of the loop, before any update
            self.elapsed += time.perf_counter() - t0
            window_steps += 1
            now = time.perf_counter()
            window_rate = window_steps * tokens_per_step / max(now - window_t, 1e-9)
            if now - window_t >= 1.0 or window_steps >= 50:  # a fresh figure about once a second
                tokens_per_sec = window_rate
                window_t, window_steps = now, 0
            elif tokens_per_sec == 0.0:  # no full window yet: the partial one beats showing 0
                tokens_per_sec = window_rate
            self.progress = {
                "step": self.step, "max_iters": cfg.max_iters, "loss": loss.item() if check_every == 1 else None,
                "lr": self.lr, "tokens_per_sec": tokens_per_sec, "elapsed_s": self.elapsed, "eta_s": self._eta(tokens_per_sec),
                "fraction": min(1.0, self._progress_fraction()),
            }
            if self.on_step:
                self.on_step(self.progress)
            if self.step % cfg.eval_interval == 0 or self._done():
                t_eval = time.perf_counter()
                self.evaluate_and_save(self.lr, tokens_per_sec)
                self.elapsed += time.perf_counter() - t_eval  # evaluation counts toward wall time
                window_t, window_steps = time.perf_counter(), 0

    def train_step(self, x: torch.Tensor, y: torch.Tensor, check_finite: bool = True) -> torch.Tensor | None:
        """One optimizer step on the batch x, y (B, T), as in nanoGPT's loop; returns the batch loss.

        1) the learning rate for this step (warm-up, then cosine over steps or seconds);
        2) forward and backward (this process's rows; `grad_accum` micro-batches);
        3) clip the gradient norm;
        4) a NaN or infinite loss: None, and the weights stay as they were;
        5) the optimizer step, under the lock that sampling copies the weights with.
        """
        cfg = self.config
        lr = set_lr(self.optimizers, lr_multiplier(self.step, cfg.warmup_iters, self._progress_fraction(), cfg.min_lr_ratio))
        x, y = distributed.shard(x, self.dist), distributed.shard(y, self.dist)  # this rank's rows
        loss = self._accumulate_gradients(x, y)
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

    def _accumulate_gradients(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Backward over `grad_accum` micro-batches; DDP syncs gradients on the last one only."""
        accum = self.config.grad_accum
        total = torch.zeros((), device=self.device)
        for i, (xb, yb) in enumerate(zip(x.chunk(accum), y.chunk(accum))):
            last = i == accum - 1
            sync = contextlib.nullcontext() if (last or not self.dist.enabled) else self._train_forward.no_sync()
            with sync:
                with autocast(self.device, self.dtype):
                    _, loss = self._train_forward(xb, yb)
                (loss / accum).backward()
            total += loss.detach() / accum
        return total

    # --- background use -------------------------------------------------------------------
    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="gpt-train", daemon=True)
        self._thread.start()
        return self._thread

    def request_stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot_model(self) -> torch.nn.Module:
        """A copy of the current weights (for sampling while training goes on)."""
        copy = build_model(self.model_config)
        with self._lock:
            copy.load_state_dict(self.model.state_dict())
        return copy.eval()


if __name__ == "__main__":  # `python -m gpt.train`, as nanoGPT's train.py is run
    from .train_cli import main

    sys.exit(main())
