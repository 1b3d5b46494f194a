"""Where training runs, and the limits one server puts on its users.

A classroom shares one machine, so the server caps what a single request may
ask for. Each limit is an environment variable, read once at start-up:

- GPT_MAX_CONCURRENT_JOBS  runs training at the same time; the rest wait in a
                           queue (default 1 on a CPU, 2 with a GPU)
- GPT_MAX_PARAMS           largest model, in parameters (default 25M)
- GPT_MAX_ITERS            most training steps in one run (default 20,000)
- GPT_MAX_BATCH_SIZE       largest batch, in sequences per step (default 256)
- GPT_MAX_UPLOAD_MB        largest uploaded corpus or checkpoint (default 50,
                           the same variable `gpt.data` reads)
- GPT_MAX_NEW_TOKENS       longest sample (default 2,000)

Hugging Face ZeroGPU Spaces (SPACES_ZERO_GPU set) lend a GPU only inside
`@spaces.GPU` calls of a few minutes; a background training thread is not
one, so there we train on the CPU and say so on the page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..device import detect_device
from ..errors import ConfigError


def zero_gpu() -> bool:
    """True on a ZeroGPU Space, where a GPU exists only inside @spaces.GPU calls."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() not in ("", "0", "false", "no")


def training_device() -> str:
    """The device background training uses: the CPU on ZeroGPU, else the fastest one."""
    return "cpu" if zero_gpu() else detect_device("auto")


def leave_a_core_for_the_page() -> int:
    """Train on all CPU cores but one, so the page keeps answering while a run trains.

    On a 2-core machine two training threads and a web server fight over the
    cores, and OpenMP threads that spin waiting for each other make both
    slow. GPT_NUM_THREADS (read by `gpt.device`) still wins when set.
    """
    n = max(1, (os.cpu_count() or 1) - 1)
    os.environ.setdefault("GPT_NUM_THREADS", str(n))
    return int(os.environ["GPT_NUM_THREADS"])


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


def describe_runtime(limits: Limits) -> str:
    """One line for the top of the page: where training runs and how many at once."""
    device = training_device()
    jobs = limits.max_concurrent_jobs
    at_once = f"{jobs} run{'s' if jobs > 1 else ''} at a time; others wait in a queue"
    if zero_gpu():
        return (f"This is a ZeroGPU Space: its GPU is lent only for short calls, so **training here runs on the CPU** "
                f"({os.cpu_count()} cores) and is slow. {at_once}.")
    if device == "cpu":
        cores, threads = os.cpu_count() or 1, os.environ.get("GPT_NUM_THREADS")
        used = f"{threads} of {cores} cores" if threads and int(threads) < cores else f"{cores} cores"
        return f"Training runs on the **CPU** ({used}); {at_once}."
    return f"Training runs on the **{device.upper()}**; {at_once}."


def browser_secret(root) -> str:
    """The key gr.BrowserState encrypts its id with, kept across restarts so people keep their runs.

    GPT_APP_SECRET wins; else a random key is made once and kept in the checkpoints folder.
    """
    import secrets
    from pathlib import Path

    if os.environ.get("GPT_APP_SECRET"):
        return os.environ["GPT_APP_SECRET"]
    path = Path(root) / ".browser_secret"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="utf-8").strip()
        if secret:
            return secret
        path.unlink(missing_ok=True)
        return browser_secret(root)
    except OSError:
        return secrets.token_hex(16)  # a read-only folder: ids last until the next restart
    secret = secrets.token_hex(16)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return secret
