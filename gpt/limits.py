"""The limits one server puts on its users, read once from the environment.

A classroom shares one machine, so the server caps what a single request may
ask for. Each limit is an environment variable:

- GPT_MAX_CONCURRENT_JOBS  runs training at the same time; the rest wait in a
                           queue (default 1 on a CPU, 2 with a GPU)
- GPT_MAX_PARAMS           largest model, in parameters (default 25M)
- GPT_MAX_ITERS            most training steps in one run (default 20,000)
- GPT_MAX_BATCH_SIZE       largest batch, in sequences per step (default 256)
- GPT_MAX_UPLOAD_MB        largest uploaded corpus or checkpoint (default 50,
                           the same variable `gpt.data` reads)
- GPT_MAX_NEW_TOKENS       longest sample (default 2,000)
- GPT_MAX_RUN_SECONDS      training time of one run, in seconds: a longer
                           time limit (or none) is cut to it (default 0: none)

The teacher's page replaces three of them live (`JobManager.set_limits`):
`with_class_limits` checks what the teacher typed and returns new Limits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .device import training_device
from .errors import ConfigError


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


@dataclass(frozen=True)
class Limits:
    max_concurrent_jobs: int = 1
    max_params: int = 25_000_000
    max_iters: int = 20_000
    max_batch_size: int = 256
    max_upload_mb: int = 50
    max_new_tokens: int = 2_000
    max_run_seconds: int = 0  # 0: no class-wide time limit per run

    @classmethod
    def from_env(cls, env=None) -> "Limits":
        env = os.environ if env is None else env
        default_jobs = 1 if training_device() == "cpu" else 2
        return cls(
            max_concurrent_jobs=_env_int(env, "GPT_MAX_CONCURRENT_JOBS", default_jobs),
            max_params=_env_int(env, "GPT_MAX_PARAMS", cls.max_params),
            max_iters=_env_int(env, "GPT_MAX_ITERS", cls.max_iters),
            max_batch_size=_env_int(env, "GPT_MAX_BATCH_SIZE", cls.max_batch_size),
            max_upload_mb=_env_int(env, "GPT_MAX_UPLOAD_MB", cls.max_upload_mb),
            max_new_tokens=_env_int(env, "GPT_MAX_NEW_TOKENS", cls.max_new_tokens),
            max_run_seconds=_env_int(env, "GPT_MAX_RUN_SECONDS", 0, minimum=0),
        )

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

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
        """The teacher's three levers, checked: a sentence naming the field for a bad value."""
        def whole(value, field: str, minimum: int) -> int:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{field} must be a number, got {value!r}.") from None
            if number != number or number < minimum or number != int(number) or number > 10**12:
                raise ConfigError(f"{field} must be a whole number of at least {minimum}, got {value!r}.")
            return int(number)

        return replace(self, max_run_seconds=whole(run_seconds, "Time per run (seconds)", 0),
                       max_concurrent_jobs=whole(concurrent_jobs, "Runs at the same time", 1),
                       max_params=whole(max_params, "Largest model (parameters)", 1))
