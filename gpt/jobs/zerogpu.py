"""GPU slices: `@spaces.GPU` on a ZeroGPU Space, and a faithful stand-in everywhere else.

On a ZeroGPU Space a GPU exists only while a function decorated with
`@spaces.GPU(duration=...)` runs, called from a Gradio event. The `spaces`
package (0.51, `spaces/zero/wrappers.py`) forks a worker process, sends it the
call's arguments through a pickling queue, and returns the pickled result; the
call is aborted when it runs past its duration ("GPU task aborted"). The
default duration is 60 s (huggingface.co/docs/hub/spaces-zerogpu). A training
run there is a chain of such calls, each one a *slice* (`gpt.jobs.slices`).

Everywhere else the same code runs through `StandIn`, which does the three
things of ZeroGPU that matter to correctness: the function runs in another
process, its arguments and result cross pickled (so nothing CUDA or
unpicklable can leak across), and the process is killed with SIGKILL at its
duration. Tests on a CPU therefore meet every failure a Space would.

- `zero_gpu_mode()`: do runs train in slices? Yes on a ZeroGPU Space
  (SPACES_ZERO_GPU, set by the Space) or with GPT_ZEROGPU=1 (tests, trying it
  out); GPT_ZEROGPU=0 turns it off everywhere.
- `gpu(fn, duration)`: `spaces.GPU(duration=...)(fn)` on a real ZeroGPU Space,
  else `StandIn(fn, duration)`.

`spaces` is imported only on a ZeroGPU Space, and there before anything
initialises CUDA (it refuses otherwise): app.py imports this module first.
With `spaces` installed anywhere else nothing here changes the app.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import time
from dataclasses import dataclass

from ..device import detect_device
from ..errors import ConfigError, TrainingError


def zero_gpu() -> bool:
    """True on a ZeroGPU Space, where a GPU exists only inside @spaces.GPU calls."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() not in ("", "0", "false", "no")


def training_device() -> str:
    """The device background training uses: the CPU on ZeroGPU (a background thread gets no GPU there; runs
    train in slices instead), else the fastest one."""
    return "cpu" if zero_gpu() else detect_device("auto")


spaces = None
if zero_gpu():  # pragma: no cover - only on a ZeroGPU Space
    try:
        import spaces  # noqa: F811 - must come before CUDA is initialised
    except Exception:  # noqa: BLE001 - missing or misconfigured: the stand-in keeps the app working
        spaces = None

# imported once by the fork server, not by every slice: torch._dynamo alone is ~3 s on a busy 2-core
# CPU (the first optimizer imports it), as long as a short slice
PRELOAD = ["torch._dynamo", "gpt.jobs.slices"]
STARTUP_TIMEOUT_S = 120.0  # the stand-in's process imports torch once; a busy 2-core machine needs time


class SliceKilled(TrainingError):
    """A GPU slice ran past its duration and was killed (or its process died)."""


def zero_gpu_mode() -> bool:
    """True when runs train in GPU slices: on a ZeroGPU Space, or forced with GPT_ZEROGPU=1."""
    forced = os.environ.get("GPT_ZEROGPU", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return zero_gpu()


def real_zero_gpu() -> bool:
    """True when `spaces.GPU` really lends a GPU here (a ZeroGPU Space with `spaces` importable)."""
    return spaces is not None and zero_gpu()


@dataclass(frozen=True)
class SliceSettings:
    """How long each GPU slice asks for, and how much of it is kept back for starting and saving.

    GPT_ZEROGPU_SLICE_S (default 60, ZeroGPU's own default; at most 300) and
    GPT_ZEROGPU_MARGIN_S (default a tenth of the slice, at least 2 s).
    """

    duration_s: float = 60.0
    margin_s: float = 6.0

    @property
    def budget_s(self) -> float:
        """Seconds a slice may train for, counted from when it starts running."""
        return self.duration_s - self.margin_s

    @classmethod
    def from_env(cls, env: dict | None = None) -> "SliceSettings":
        env = os.environ if env is None else env
        duration = _seconds(env, "GPT_ZEROGPU_SLICE_S", 60.0)
        margin = _seconds(env, "GPT_ZEROGPU_MARGIN_S", max(2.0, duration / 10))
        if not 1 <= duration <= 300:
            raise ConfigError(f"GPT_ZEROGPU_SLICE_S must be from 1 to 300 seconds (ZeroGPU's longest call), got {duration:g}.")
        if not 0 <= margin < duration:
            raise ConfigError(f"GPT_ZEROGPU_MARGIN_S must be at least 0 and less than the slice ({duration:g} s), "
                              f"got {margin:g}.")
        return cls(duration, margin)


def _seconds(env, name: str, default: float) -> float:
    raw = env.get(name, "")
    if not str(raw).strip():
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}.") from None


def gpu(fn, duration: float):
    """`fn` as a GPU slice of `duration` seconds: ZeroGPU's decorator on a Space, else the stand-in.

    Call it at import time, as ZeroGPU wants its functions registered before the app launches.
    """
    if real_zero_gpu():  # pragma: no cover - only on a ZeroGPU Space
        return spaces.GPU(duration=int(duration))(fn)
    return StandIn(fn, duration)


# --- the stand-in -----------------------------------------------------------------------------------


def _context():
    """A forkserver that has imported the slice code once, so each slice starts in milliseconds.

    Forking the app itself (as ZeroGPU does) would copy its web-server threads and OpenMP
    pools; a fork server is a clean, single-threaded parent, and pickling stays as strict.
    """
    ctx = multiprocessing.get_context("forkserver")
    return ctx


class StandIn:
    """Runs `fn` in a separate process, arguments and result pickled, killed at `duration` seconds.

    The clock starts when the process starts running the call (after its start-up), as
    ZeroGPU's does once a GPU is attached. `fn` must be a module-level function.
    """

    def __init__(self, fn, duration: float):
        self.fn, self.duration = fn, float(duration)
        functools.update_wrapper(self, fn)
        self.pids: list[int] = []  # the processes it started, newest last (tests kill one)

    def __call__(self, *args, **kwargs):
        try:
            payload = pickle.dumps((self.fn, args, kwargs))
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise TrainingError(f"The GPU slice's arguments cannot be pickled ({err}); only plain data may cross "
                                "into a GPU process.") from None
        ctx = _context()
        ctx.set_forkserver_preload(PRELOAD + ([self.fn.__module__] if self.fn.__module__ != "__main__" else []))
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(payload, send, dict(os.environ)), daemon=True)
        proc.start()
        self.pids.append(proc.pid)
        send.close()
        try:
            if _wait(receive, proc, STARTUP_TIMEOUT_S) != "started":
                raise SliceKilled("The GPU slice's process did not start; nothing was trained. Try again.")
            kind, value = _wait(receive, proc, self.duration, killed=True)
        finally:
            receive.close()
            proc.join(5)
        if kind == "error":
            raise value
        return value


def _wait(conn, proc, timeout: float, killed: bool = False):
    """The next message from the child, or kill it at `timeout` and raise SliceKilled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.poll(min(0.05, max(0.0, deadline - time.monotonic()))):
            try:
                return pickle.loads(conn.recv_bytes())
            except EOFError:
                break  # the process died without answering
    else:
        proc.kill()
        proc.join(5)
        if killed:
            raise SliceKilled(f"The GPU slice ran past its {timeout:g} s and was stopped; what it had saved is kept "
                              "and the next slice continues from there.")
    raise SliceKilled("The GPU slice's process ended without an answer; what it had saved is kept and the next "
                      "slice continues from there.")


def _child(payload: bytes, conn, env: dict) -> None:  # pragma: no cover - runs in the child process
    """The stand-in's process: the caller's environment, then the call, then one pickled answer."""
    os.environ.clear()
    os.environ.update(env)
    conn.send_bytes(pickle.dumps("started"))
    try:
        fn, args, kwargs = pickle.loads(payload)
        answer = ("ok", fn(*args, **kwargs))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the caller
        answer = ("error", err)
    try:
        data = pickle.dumps(answer)
    except Exception as err:  # noqa: BLE001 - an unpicklable result or exception
        data = pickle.dumps(("error", TrainingError(f"The GPU slice's answer cannot be pickled ({err}).")))
    conn.send_bytes(data)
    conn.close()
