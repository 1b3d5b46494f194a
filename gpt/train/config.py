"""The training settings of a run, checked field by field, and the one place a preset becomes configs.

`TrainConfig` is what `gpt.train.Trainer` needs besides the model's `GPTConfig`,
and says how far a run has come (`fraction_done`: the schedule, the progress
bar and the run service all ask it);
`configs_from` merges a named preset (`gpt.presets`) with overrides, for the
CLI, the app and the API alike.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

from ..device import detect_device
from ..engine import MAX_NEW_TOKENS_CAP
from ..estimate import fitted_shape
from ..errors import ConfigError
from ..model import GPTConfig
from ..presets import preset
from ..validate import choice, flag, number, text, whole


# Sane ranges, not a server's limits: (field, lowest, highest[, lowest excluded])
TRAIN_WHOLE_RANGES = [("batch_size", 1, 2**20), ("max_iters", 1, 10**9), ("eval_interval", 1, 10**9),
                      ("eval_iters", 1, 10**5), ("grad_accum", 1, 2**10), ("warmup_iters", 0, 10**9),
                      ("seed", 0, 2**40), ("sample_tokens", 0, MAX_NEW_TOKENS_CAP)]
# (name, lo, hi, lo excluded, hi excluded): a beta of 1 divides Adam's bias correction by zero
TRAIN_NUMBER_RANGES = [("lr", 0, 1e12, True, False), ("min_lr_ratio", 0, 1, False, False),
                       ("weight_decay", 0, 10, False, False), ("beta1", 0, 1, False, True), ("beta2", 0, 1, False, True),
                       ("grad_clip", 0, 1e6, False, False), ("muon_lr", 0, 1e12, True, False),
                       ("muon_weight_decay", 0, 10, False, False)]


EARLY_POINTS_FROM = 100  # an evaluation interval at least this long gets three early, cheaper points


@dataclass
class TrainConfig:
    batch_size: int = 12
    max_iters: int = 2000
    max_seconds: float | None = None  # stop (with a final eval and save) after this much training time
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_iters: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    grad_accum: int = 1  # micro-batches per step: same effective batch in less memory
    optimizer: str = "adamw"  # 'adamw' or 'muon' (hidden matrices on Muon, the rest on AdamW)
    muon_lr: float = 0.02
    muon_weight_decay: float = 0.0  # decoupled: each step shrinks Muon's matrices by lr x this
    eval_interval: int = 250
    eval_iters: int = 20
    device: str = "auto"
    dtype: str = "auto"  # 'auto': bf16 on CUDA GPUs that have it, else float32
    compile: bool = False
    seed: int = 1337
    sample_prompt: str = ""  # sample shown at every evaluation ('' = a start token)
    sample_tokens: int = 120  # 0 turns the per-eval sample off

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Types and sane ranges, each refusal naming the field; a server's own limits are `gpt.limits`."""
        for name, lo, hi in TRAIN_WHOLE_RANGES:
            setattr(self, name, whole(getattr(self, name), name, lo, hi))
        for name, lo, hi, low_open, high_open in TRAIN_NUMBER_RANGES:
            label = "The learning rate" if name == "lr" else name
            setattr(self, name, number(getattr(self, name), label, lo, hi, low_open=low_open, high_open=high_open))
        if self.max_seconds is not None:
            self.max_seconds = number(self.max_seconds, "max_seconds", 0, 10**8, low_open=True)
        choice(self.optimizer, "optimizer", ("adamw", "muon"))
        choice(self.dtype, "dtype", ("auto", "float32", "bfloat16", "float16"))
        text(self.device, "device", 32)
        flag(self.compile, "compile")
        text(self.sample_prompt, "sample_prompt", 10_000)

    def eval_batches(self, step: int, done: bool = False) -> int:
        """How many batches the evaluation after `step` averages; 0: none after this step.

        Every `eval_interval` steps and at the end: `eval_iters`. Early in a long interval the loss falls
        fastest, so at 1/8, 1/4 and 1/2 of the first interval a cheaper estimate (a quarter of the batches)
        adds a point, and the validation curve bends as the training curve does instead of being one straight
        line from step 0 to the first evaluation.
        """
        if done or step % self.eval_interval == 0:
            return self.eval_iters
        if self.eval_interval >= EARLY_POINTS_FROM and step in {self.eval_interval // k for k in (8, 4, 2)}:
            return max(1, self.eval_iters // 4)
        return 0

    def fraction_done(self, step: int, elapsed_s: float) -> float:
        return progress_fraction(step, self.max_iters, elapsed_s, self.max_seconds)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"The training settings must be a JSON object, got {type(d).__name__}.")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def progress_fraction(step: int, max_iters: int, elapsed_s: float, max_seconds: float | None) -> float:
    """How far a run has come, 0 at the start and 1 (or past it) at its end: its steps or its seconds,
    whichever limit is nearer. The learning-rate schedule, the progress bar and the run service all ask this."""
    frac = step / max_iters if max_iters else 0.0
    if max_seconds:
        frac = max(frac, elapsed_s / max_seconds)
    return frac


def configs_from(preset_name: str, vocab_size: int, model_overrides: dict, train_overrides: dict) -> tuple[GPTConfig, TrainConfig]:
    """A preset merged with overrides: the one place a recipe becomes configs (the CLI, the app, the API).

    An override of None keeps the preset's value; max_seconds 0 means no time limit. A preset that names
    shapes (`ten-minutes`) takes the largest this machine trains well in its time, unless a shape is given;
    the shape taken, or one of its shapes given by hand, brings its own settings (dropout, `train`) where the
    overrides do not name them.
    """
    p = preset(preset_name)
    model_over = {k: v for k, v in model_overrides.items() if v is not None}
    model_kw = {**p["model"], **model_over, "vocab_size": vocab_size}
    train_kw = {**TrainConfig().to_dict(), **p["train"], **{k: v for k, v in train_overrides.items() if v is not None}}
    if train_kw.get("max_seconds") == 0:
        train_kw["max_seconds"] = None
    model_cfg, train_cfg = GPTConfig(**model_kw), TrainConfig.from_dict(train_kw)
    if not p["shapes"]:
        return model_cfg, train_cfg
    if not SHAPE.intersection(model_over) and train_cfg.max_seconds:
        shape = fitted_shape(model_cfg, p["shapes"], train_cfg.batch_size, train_cfg.max_seconds,
                             fitting_device(train_cfg.device))
    else:  # a shape given by hand that is one of the preset's (the Train tab's sliders) takes its settings too
        shape = next((dict(s) for s in p["shapes"] if all(s[k] == model_kw[k] for k in SHAPE)), None)
    if shape:
        given = {k for k, v in train_overrides.items() if v is not None}  # what was asked for stays
        train_kw.update({k: v for k, v in shape.pop("train", {}).items() if k not in given})
        model_kw.update({k: v for k, v in shape.items() if k not in model_over})
        model_cfg, train_cfg = GPTConfig(**model_kw), TrainConfig.from_dict(train_kw)
    return model_cfg, train_cfg


SHAPE = {"n_layer", "n_head", "n_embd"}


def fitting_device(device: str) -> str:
    """The device whose speed picks a preset's shape: under torchrun every process must pick the same, so
    they all take the first (largest) shape, as on any GPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return "cuda"
    return detect_device() if device in (None, "", "auto") else device  # a device named is taken as named
