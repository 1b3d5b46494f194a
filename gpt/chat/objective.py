"""Supervised fine-tuning on conversations, as an objective handed to the one trainer (`gpt.train`).

What changes from pretraining is data, not the loop: the batches are packed
conversations whose targets are -1 everywhere but on the assistant's tokens
(`gpt.chat.batches`), and the loss is the model's own cross-entropy, which
counts no loss at a -1 (`gpt.model.GPT.forward`). An evaluation adds what a
chat model is for: the share of held-out questions it answers exactly right
(greedy) and the share of its answers that end with <|end|>, and one such
answer as the sample the page shows.
"""

from __future__ import annotations

import torch

from ..device import autocast, device_type
from ..model import GPTConfig
from ..tokcompare import bits_per_char
from ..train.objective import Batch, Objective, Trainer
from .batches import ChatBatches
from .evaluate import evaluate
from .task import Task

EVAL_QUESTIONS = 50  # held-out questions graded at each evaluation (greedy, a few tokens each)


class Finetune(Objective):
    """Fine-tuning on a task's conversations, the loss on the assistant's tokens only."""

    name = "fine-tune"

    def __init__(self, task: Task, batches: ChatBatches, eval_questions: int = EVAL_QUESTIONS):
        self.task, self.batches, self.eval_questions = task, batches, eval_questions
        self.tokenizer = batches.tokenizer

    def check(self, model_config: GPTConfig) -> None:
        super().check(model_config)
        self.batches.check_block_size(model_config.block_size)

    def batch(self, trainer: Trainer, split: str, generator: torch.Generator) -> Batch:
        x, y = self.batches.get_batch(split, trainer.config.batch_size, trainer.model_config.block_size,
                                      trainer.device, generator)  # (B, T) each, y = -1 off the assistant's tokens
        return Batch(x, y)

    def evaluate(self, trainer: Trainer, eval_iters: int) -> dict:
        row = super().evaluate(trainer, eval_iters)
        row["val_bpc"] = bits_per_char(row["val_loss"], self.batches.val_chars_per_token)  # of the answers' text
        # token by token on a CPU, bf16 casts cost more than they save: float32 there
        dtype = torch.float32 if device_type(trainer.device) == "cpu" else trainer.dtype
        with autocast(trainer.device, dtype):
            score = evaluate(trainer.model, self.tokenizer, self.task, n=self.eval_questions, split="val",
                             should_stop=trainer.stop_requested)
        row["val_accuracy"], row["val_ended"] = score.accuracy, score.ended
        first = score.graded[0] if score.graded else None
        if first is not None:
            mark = "right" if first.correct else "wrong"
            row["sample"] = f"Q: {first.question}\nA: {first.answer} ({mark}; the answer is {first.expected})"
        return row
