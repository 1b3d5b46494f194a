"""The limits one server puts on its users, read once from the environment.

A classroom shares one machine, so the server caps what a single request may
ask for. Each limit is an environment variable:

- GPT_MAX_CONCURRENT_JOBS  runs training at the same time; the rest wait in a
                           queue (default 1 on a CPU, 2 with a GPU: the run service's)
- GPT_MAX_PARAMS           largest model, in parameters (default 25M)
- GPT_MAX_ITERS            most training steps in one run (default 20,000)
- GPT_MAX_BATCH_SIZE       largest batch, in sequences per step (default 256)
- GPT_MAX_UPLOAD_MB        largest uploaded corpus or checkpoint (default 50,
                           the same variable `gpt.data` reads)
- GPT_MAX_QUEUE            runs waiting at once, everyone together (default 60)
- GPT_MAX_RUNS_PER_ADDRESS runs queued or training from one network address
                           (default 40: a classroom behind one router shares one)
- GPT_MAX_NEW_TOKENS       longest sample, and longest sample shown at each
                           evaluation of a run (default 2,000)
- GPT_MAX_LAYERS           deepest model (default 12, the page's slider)
- GPT_MAX_BLOCK_SIZE       longest context, in tokens (default 512, the page's slider)
- GPT_MAX_VOCAB            largest vocabulary (default 65,536: GPT-2's fits, a text
                           of a million distinct characters does not)
- GPT_MAX_TRAIN_MEMORY_MB  memory a run may need to train, as the page estimates it
                           (`gpt.estimate.training_memory_bytes`: weights, gradients,
                           optimizer moments and activations, the logits included;
                           default 4,096, which the medium preset fits)
- GPT_MAX_EVAL_ITERS       batches per evaluation (default 200, the medium preset's)
- GPT_MAX_RUN_SECONDS      training time of one run, in seconds: a longer
                           time limit (or none) is cut to it (default 0: none)

The same limits hold for the page, the API, resumed runs and uploaded
checkpoints: `check_model` and `check_train` (both in `check_run`) are the
one place a run's shape is held against them, and they count by arithmetic,
so 10**30 layers are refused in microseconds; no model is built to check.

The teacher's page replaces three of them live (`JobManager.set_limits`):
`with_class_limits` checks what the teacher typed and returns new Limits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import ConfigError
from .validate import whole

if TYPE_CHECKING:  # pragma: no cover
    from .model import GPTConfig
    from .train.config import TrainConfig


def _env_int(env, name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = int(float(raw.replace("_", "")))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}.")
    return value


CLASS_MAX_RUN_SECONDS = 86_400  # a day: the longest time per run the teacher's page sets (0 = none)
CLASS_MAX_CONCURRENT_JOBS = 64  # more runs at once than any classroom machine trains well
CLASS_MIN_PARAMS, CLASS_MAX_PARAMS = 1_000, 2_000_000_000  # the tiny preset's size .. well past GPT-2 XL's 1.5B


@dataclass(frozen=True)
class Limits:
    max_concurrent_jobs: int = 1
    max_params: int = 25_000_000
    max_iters: int = 20_000
    max_batch_size: int = 256
    max_upload_mb: int = 50
    max_new_tokens: int = 2_000
    max_run_seconds: int = 0  # 0: no class-wide time limit per run
    max_queue: int = 60  # runs waiting at once, everyone together: a flood of fresh identities cannot hold the queue
    max_runs_per_address: int = 40  # queued or training from one network address (a classroom shares one)
    max_layers: int = 12
    max_block_size: int = 512
    max_vocab: int = 65_536
    max_train_memory_mb: int = 4_096
    max_eval_iters: int = 200

    @classmethod
    def from_env(cls, env=None, default_jobs: int = 1) -> "Limits":
        """The limits the environment sets; `default_jobs` runs at once where GPT_MAX_CONCURRENT_JOBS is unset
        (the run service passes 2 when it trains on a GPU)."""
        env = os.environ if env is None else env
        return cls(
            max_concurrent_jobs=_env_int(env, "GPT_MAX_CONCURRENT_JOBS", default_jobs),
            max_params=_env_int(env, "GPT_MAX_PARAMS", cls.max_params),
            max_iters=_env_int(env, "GPT_MAX_ITERS", cls.max_iters),
            max_batch_size=_env_int(env, "GPT_MAX_BATCH_SIZE", cls.max_batch_size),
            max_upload_mb=_env_int(env, "GPT_MAX_UPLOAD_MB", cls.max_upload_mb),
            max_new_tokens=_env_int(env, "GPT_MAX_NEW_TOKENS", cls.max_new_tokens),
            max_run_seconds=_env_int(env, "GPT_MAX_RUN_SECONDS", 0, minimum=0),
            max_queue=_env_int(env, "GPT_MAX_QUEUE", cls.max_queue),
            max_runs_per_address=_env_int(env, "GPT_MAX_RUNS_PER_ADDRESS", cls.max_runs_per_address),
            max_layers=_env_int(env, "GPT_MAX_LAYERS", cls.max_layers),
            max_block_size=_env_int(env, "GPT_MAX_BLOCK_SIZE", cls.max_block_size),
            max_vocab=_env_int(env, "GPT_MAX_VOCAB", cls.max_vocab),
            max_train_memory_mb=_env_int(env, "GPT_MAX_TRAIN_MEMORY_MB", cls.max_train_memory_mb),
            max_eval_iters=_env_int(env, "GPT_MAX_EVAL_ITERS", cls.max_eval_iters),
        )

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def check_run(self, model: "GPTConfig", train: "TrainConfig", n_tokens: int = 0) -> int:
        """Every limit a run must meet before anything is built; returns its parameter count.
        Call it on a new run, a resumed one and an uploaded checkpoint's settings alike."""
        n_params = self.check_model(model)
        self.check_train(train)
        self.check_memory(model, train, n_tokens)
        return n_params

    def check_model(self, config: "GPTConfig") -> int:
        """Depth, context, vocabulary and parameters (counted by arithmetic); returns the count."""
        from .model import count_parameters

        if config.model_type == "gpt" and config.n_layer > self.max_layers:
            raise ConfigError(f"n_layer is {config.n_layer:,}, over this server's limit of {self.max_layers:,} layers "
                              "(GPT_MAX_LAYERS). Use fewer layers.")
        if config.block_size > self.max_block_size:
            raise ConfigError(f"block_size is {config.block_size:,} tokens, over this server's limit of "
                              f"{self.max_block_size:,} (GPT_MAX_BLOCK_SIZE). Use a shorter context.")
        self.check_vocab(config.vocab_size)
        n_params = count_parameters(config)["total"]
        self.check_params(n_params)
        return n_params

    def check_vocab(self, vocab_size: int) -> None:
        if vocab_size > self.max_vocab:
            raise ConfigError(
                f"The vocabulary has {vocab_size:,} tokens, over this server's limit of {self.max_vocab:,} "
                "(GPT_MAX_VOCAB). A character tokenizer makes one token per distinct character: use a text with "
                "fewer distinct characters, or a BPE tokenizer."
            )

    def check_train(self, train: "TrainConfig") -> None:
        """Steps, batch, evaluation batches and the sample shown at each evaluation."""
        self.check_iters(train.max_iters)
        self.check_batch(train.batch_size)
        if train.eval_iters > self.max_eval_iters:
            raise ConfigError(f"eval_iters is {train.eval_iters:,} batches, over this server's limit of "
                              f"{self.max_eval_iters:,} (GPT_MAX_EVAL_ITERS).")
        if train.sample_tokens > self.max_new_tokens:
            raise ConfigError(f"sample_tokens is {train.sample_tokens:,}, over this server's limit of "
                              f"{self.max_new_tokens:,} (GPT_MAX_NEW_TOKENS).")

    def check_memory(self, model: "GPTConfig", train: "TrainConfig", n_tokens: int = 0) -> None:
        """The page's training-memory estimate, logits (batch x context x vocabulary) included."""
        from .estimate import human_bytes, training_memory_bytes

        micro_batch = max(1, train.batch_size // train.grad_accum)  # activations are kept per micro-batch
        need = training_memory_bytes(model, micro_batch, train.optimizer, n_tokens)
        if need > self.max_train_memory_mb * 2**20:
            raise ConfigError(
                f"Training this model needs about {human_bytes(need)} of memory, over this server's limit of "
                f"{human_bytes(self.max_train_memory_mb * 2**20)} (GPT_MAX_TRAIN_MEMORY_MB). Use a smaller batch, "
                "a shorter context, a smaller vocabulary or a smaller model."
            )

    def check_params(self, n_params: int) -> None:
        if n_params > self.max_params:
            raise ConfigError(
                f"This model has {n_params / 1e6:.1f}M parameters, over this server's limit of "
                f"{self.max_params / 1e6:.1f}M (GPT_MAX_PARAMS). Use fewer layers, a smaller width or a smaller vocabulary."
            )

    def check_iters(self, max_iters: int) -> None:
        if max_iters > self.max_iters:
            raise ConfigError(
                f"{max_iters:,} iterations is over this server's limit of {self.max_iters:,} (GPT_MAX_ITERS)."
            )

    def check_batch(self, batch_size: int) -> None:
        if batch_size > self.max_batch_size:
            raise ConfigError(
                f"A batch of {batch_size:,} sequences is over this server's limit of {self.max_batch_size:,} "
                "(GPT_MAX_BATCH_SIZE). Use a smaller batch; more iterations see as much text."
            )

    def check_upload(self, n_bytes: int, what: str = "The file") -> None:
        if n_bytes > self.max_upload_bytes:
            raise ConfigError(
                f"{what} is {n_bytes / 2**20:.1f} MB, over this server's limit of {self.max_upload_mb} MB "
                "(GPT_MAX_UPLOAD_MB); use a smaller file."
            )

    def cap_seconds(self, max_seconds: float | None) -> float | None:
        """A run's time limit under the class's: the smaller of the two (None: no limit at all)."""
        if not self.max_run_seconds:
            return max_seconds
        return min(float(max_seconds), float(self.max_run_seconds)) if max_seconds else float(self.max_run_seconds)

    def with_class_limits(self, run_seconds, concurrent_jobs, max_params) -> "Limits":
        """The teacher's three levers, each held to its range: a sentence naming the field and the end crossed."""
        return replace(
            self,
            max_run_seconds=whole(run_seconds, "Time per run (seconds)", 0, CLASS_MAX_RUN_SECONDS,
                                  hint="(0 means no limit; the most is a day)"),
            max_concurrent_jobs=whole(concurrent_jobs, "Runs at the same time", 1, CLASS_MAX_CONCURRENT_JOBS),
            max_params=whole(max_params, "Largest model (parameters)", CLASS_MIN_PARAMS, CLASS_MAX_PARAMS))
