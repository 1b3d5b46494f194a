"""A fine-tune's pieces for whoever trains one: its settings, its step 0 (the parent made a chat model) and its objective.

A fine-tune is an ordinary run of the one trainer (`gpt.train.Trainer`):

    data = task_from_name("mix")                                   # or load_conversations("mine.jsonl")
    parent = load_checkpoint("checkpoints/shakespeare-char")
    chat, note = grown_tokenizer(parent.tokenizer, data)           # known before any weight is read
    model_cfg, train_cfg = finetune_configs(parent.model_config, chat.vocab_size, {"max_seconds": 300})
    write_step_zero(out, parent, data, train_cfg, meta)            # the grown parent, saved as step 0
    Trainer(model_cfg, train_cfg, finetune_objective(data, chat, model_cfg.block_size), out, resume=True).run()

The settings are the `finetune` stage's (`gpt.presets.LATER_STAGES`: AdamW
1e-3, batch 32, five minutes at most) with the parent's shape and the grown
vocabulary; what the caller gives overrides them. The command line
(`python -m gpt.chat finetune`) calls these directly; the run service does the
same steps for a run started from the page.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import checkpoint as ckpt
from ..limits import Limits
from ..model import GPTConfig
from ..presets import FINETUNE_PRESET
from ..train import TrainConfig, configs_from
from .batches import ChatBatches
from .grow import chat_model
from .objective import Finetune
from .task import Task
from .tokenizer import ChatTokenizer

EVAL_POINTS = 10  # evaluations over a run of max_iters steps (each grades held-out questions)


def stage_configs(stage: str, parent: GPTConfig, vocab_size: int, overrides: dict | None = None,
                  device: str = "auto") -> tuple[GPTConfig, TrainConfig]:
    """The parent's shape with `vocab_size` token rows, and a later stage's training settings
    (`gpt.presets.LATER_STAGES[stage]`) with `overrides` (None keeps the stage's value, max_seconds 0 means no
    time limit), about ten evaluations (or the stage's own, if more often)."""
    model = {k: v for k, v in parent.to_dict().items() if k != "vocab_size"}
    model_cfg, train_cfg = configs_from(stage, vocab_size, model, {**(overrides or {}), "device": device})
    train_cfg.eval_interval = max(1, min(train_cfg.eval_interval, max(10, train_cfg.max_iters // EVAL_POINTS)))
    return model_cfg, train_cfg


def finetune_configs(parent: GPTConfig, vocab_size: int, overrides: dict | None = None,
                     device: str = "auto") -> tuple[GPTConfig, TrainConfig]:
    """The finetune stage's configs (`stage_configs`): AdamW 1e-3, batch 32, five minutes at most."""
    return stage_configs(FINETUNE_PRESET, parent, vocab_size, overrides, device)


def write_step_zero(out: str | os.PathLike, parent: ckpt.Checkpoint, data, train_cfg: TrainConfig, meta: dict,
                    limits: Limits | None = None) -> str:
    """Save the parent made into a chat model for `data` as step 0 of the run in `out`; returns the note saying
    what was added ("Added 14 characters the conversations use: ..."), which the checkpoint records as 'grown'."""
    grown = chat_model(parent.model, parent.tokenizer, data, limits=limits)
    Path(out).mkdir(parents=True, exist_ok=True)
    ckpt.save_checkpoint(out, grown.model, grown.model.config, grown.tokenizer, 0, train=train_cfg.to_dict(),
                         elapsed_s=0.0, n_params=sum(p.numel() for p in grown.model.parameters()),
                         **{**meta, "grown": grown.note})
    return grown.note


def finetune_objective(data: Task, tokenizer: ChatTokenizer, block_size: int) -> Finetune:
    """What the trainer is handed: the masked loss on `data`'s packed conversations, graded at each evaluation."""
    return Finetune(data, ChatBatches(data, tokenizer, block_size))
