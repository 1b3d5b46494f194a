"""What varies between kinds of runs, handed to the one trainer: the batches, the loss, what an evaluation measures.

The trainer (`gpt.train.trainer`) owns the loop, the optimizer, the schedule,
checkpoints and stopping; it knows nothing of what the model learns. An
objective tells it:

- `batch(trainer, split, generator)`: the next `Batch` (x, y and, for a
  policy gradient, per-token weights), drawn from `generator` only, so a
  resumed run draws what an uninterrupted one would;
- `loss(forward, batch)`: the scalar to minimise;
- `evaluate(trainer)`: the numbers of one evaluation row (losses, accuracy,
  a sample), written to metrics.jsonl and drawn on the page.

Three objectives share this trainer:
- `NextToken` here: pretraining, the lecture's, every next token of a corpus;
- fine-tuning on conversations (`gpt.chat`): the same cross-entropy, with the
  targets outside the assistant's tokens set to -1 (the mask is data);
- RL with a grader (`gpt.chat`): batches sampled from the model itself, whose
  per-token weights are the advantages (a policy gradient is a weighted
  cross-entropy on the sampled tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import torch
import torch.nn.functional as F

from ..data import Dataset
from ..device import autocast, device_type
from ..engine import SamplingSettings, generate
from ..errors import ConfigError
from ..model import GPTConfig
from ..tokcompare import bits_per_char
from ..tokenizer import Tokenizer
from .config import TrainConfig

IGNORE = -1  # a target of -1 counts no loss (nanoGPT's and nanochat's ignore_index)


@dataclass
class Batch:
    """One step's data. x, y: (B, T) token ids, y = -1 where no loss counts; weight: (B, T) or None (all 1)."""

    x: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor | None = None

    def split(self, parts: int) -> list["Batch"]:
        """`parts` micro-batches of equal rows (gradient accumulation)."""
        w = self.weight.chunk(parts) if self.weight is not None else [None] * parts
        return [Batch(x, y, wi) for x, y, wi in zip(self.x.chunk(parts), self.y.chunk(parts), w)]

    def rows(self, pick: Callable[[torch.Tensor], torch.Tensor]) -> "Batch":
        """The same batch with `pick` applied to each tensor (a rank's shard under DDP)."""
        return Batch(pick(self.x), pick(self.y), None if self.weight is None else pick(self.weight))


def token_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy over the tokens that count (y != -1), each weighted by `batch.weight` if given.

    With weights w (an RL batch's advantages): -sum(w * log p(y)) / count, the policy gradient's loss.
    """
    flat = F.cross_entropy(logits.float().view(-1, logits.size(-1)), batch.y.reshape(-1), ignore_index=IGNORE,
                           reduction="none")  # (B*T,) -log p(y), 0 where ignored
    counted = (batch.y != IGNORE).sum().clamp(min=1)
    if batch.weight is not None:
        flat = flat * batch.weight.reshape(-1).float()
    return flat.sum() / counted


class Trainer(Protocol):
    """What an objective may read of the trainer that hands itself over (`gpt.train.trainer.Trainer`)."""

    model: torch.nn.Module  # the weights being trained
    forward: Callable  # the model's forward, compiled where asked: forward(x, y=None) -> (logits, loss)
    device: str
    dtype: torch.dtype  # the autocast dtype
    config: TrainConfig
    model_config: GPTConfig

    def stop_requested(self) -> bool: ...


class Objective:
    """The interface, with what most objectives share: evaluation as the mean loss over fixed batches."""

    tokenizer: Tokenizer
    name = "objective"

    def check(self, model_config: GPTConfig) -> None:
        """Refuse a model this objective cannot train (a vocabulary that does not match, a context too long)."""
        if model_config.vocab_size != self.tokenizer.vocab_size:
            raise ConfigError(f"The model's vocab_size ({model_config.vocab_size}) must equal the tokenizer's "
                              f"({self.tokenizer.vocab_size}).")

    def batch(self, trainer: Trainer, split: str, generator: torch.Generator) -> Batch:  # pragma: no cover
        raise NotImplementedError

    def loss(self, forward, batch: Batch) -> torch.Tensor:
        """The loss of the model (`forward(x) -> logits, _`) on the batch; weighted where the batch says."""
        if batch.weight is None:
            return forward(batch.x, batch.y)[1]  # the model's own cross-entropy (ignore_index -1)
        logits, _ = forward(batch.x)
        return token_loss(logits, batch)

    @torch.inference_mode()
    def mean_loss(self, trainer: Trainer, split: str, n: int) -> float:
        """Mean loss over the same n batches of `split` each time, so the curve is not noisy from sampling."""
        gen = torch.Generator().manual_seed(trainer.config.seed + 1)
        total = 0.0
        for _ in range(n):
            batch = self.batch(trainer, split, gen)
            with autocast(trainer.device, trainer.dtype):
                total += self.loss(trainer.forward, batch).float().item()
        return total / n

    def evaluate(self, trainer: Trainer, eval_iters: int) -> dict:
        """One evaluation row's numbers: at least train_loss and val_loss."""
        return {split + "_loss": self.mean_loss(trainer, split, eval_iters) for split in ("train", "val")}


class NextToken(Objective):
    """Pretraining, the lecture's objective: predict every next token of a corpus (`Dataset.get_batch`)."""

    name = "next-token"

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.tokenizer = dataset.tokenizer

    def check(self, model_config: GPTConfig) -> None:
        super().check(model_config)
        self.dataset.check_block_size(model_config.block_size)

    def batch(self, trainer: Trainer, split: str, generator: torch.Generator) -> Batch:
        x, y = self.dataset.get_batch(split, trainer.config.batch_size, trainer.model_config.block_size,
                                      trainer.device, generator)  # (B, T) each
        return Batch(x, y)

    def evaluate(self, trainer: Trainer, eval_iters: int) -> dict:
        row = super().evaluate(trainer, eval_iters)
        row["val_bpc"] = bits_per_char(row["val_loss"], self.dataset.val_chars_per_token)  # compares tokenizers
        row["val_ppl"] = math.exp(min(row["val_loss"], 700.0))  # as unsure as a choice among this many tokens
        row["sample"] = self.sample_text(trainer)
        return row

    def sample_text(self, trainer: Trainer) -> str:
        """A short sample at every evaluation: what the model writes now (Stop ends a long one too)."""
        cfg = trainer.config
        if not cfg.sample_tokens:
            return ""
        from ..sample import prompt_to_ids

        ids, _ = prompt_to_ids(self.tokenizer, cfg.sample_prompt, trainer.model_config.block_size)
        settings = SamplingSettings(max_new_tokens=cfg.sample_tokens, temperature=0.8, top_k=None, seed=1337)
        # token by token on a CPU, bf16 casts cost more than they save (~2x slower): float32 there
        dtype = torch.float32 if device_type(trainer.device) == "cpu" else trainer.dtype
        with autocast(trainer.device, dtype):
            out = generate(trainer.model, ids, settings, should_stop=trainer.stop_requested)
        return self.tokenizer.decode(ids + out) if cfg.sample_prompt else self.tokenizer.decode(out)
