"""Training: the one loop every kind of run shares, its settings, and what varies between kinds of runs.

- `trainer`    `Trainer`: the loop, `train_step` (batch, forward, loss, backward, clip, step), checkpoints,
               resume, stop; callbacks for whoever listens
- `objective`  what a kind of run hands the trainer: its batches, its loss, its evaluation
               (`NextToken`: pretraining, the lecture's; fine-tuning and RL live in `gpt.chat`)
- `config`     `TrainConfig` and the one preset merge, `configs_from`
- `cli`        `python -m gpt.train`
"""

from .config import TrainConfig, configs_from, progress_fraction
from .objective import Batch, NextToken, Objective
from .trainer import Trainer

__all__ = ["Batch", "NextToken", "Objective", "TrainConfig", "Trainer", "configs_from", "progress_fraction"]
