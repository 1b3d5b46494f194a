"""A run folder as the web app sees it: whose it is, who writes it, what it holds.

`gpt.checkpoint` owns the files a run writes (weights, config, metrics,
status). The app adds three:
- `app.json`: the owner (a browser or API session id), whether the run is
  shared, and the request that made it. A folder without one was made by
  the CLI or shipped with the app: no owner, visible to everyone.
- `corpus.txt`: an uploaded or pasted corpus, so the run can be resumed.
- `.writer.lock`: the pid of the process writing the folder. One writer at a
  time; a lock whose process is gone is stale and taken over.

`gpt.jobs.status.describe` reads a folder into the record that tables,
dropdowns and the API show.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .. import checkpoint as ckpt
from .. import corpus as corpora
from ..errors import CheckpointError, GPTError, TrainingError

APP_FILE = "app.json"
CORPUS_FILE = "corpus.txt"
LOCK_FILE = ".writer.lock"
ACTIVE = ("queued", "preparing", "running")


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        return {}
    return data if isinstance(data, dict) else {}


def pid_alive(pid) -> bool:
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    return True


def app_info(root: Path, name: str) -> dict:
    return read_json(Path(root) / ckpt.safe_run_name(name) / APP_FILE)


def write_app_info(path: Path, info: dict) -> None:
    ckpt.atomic_write_text(Path(path) / APP_FILE, json.dumps(info, indent=2))


def corpus_of(path: Path, info: dict | None = None) -> corpora.Corpus:
    """What a run learns from: its own corpus.txt (uploaded or pasted text, or a conversation file), a built-in
    task (a fine-tune), else the named corpus."""
    path = Path(path)
    info = app_info(path.parent, path.name) if info is None else info
    if info.get("source") == "task":  # a fine-tune on a built-in task: the task makes its conversations
        return corpora.Corpus(info.get("corpus", "task"), "", "task")
    if info.get("source") == "text" or (path / CORPUS_FILE).exists():
        return corpora.Corpus(info.get("corpus", "text"), (path / CORPUS_FILE).read_text(encoding="utf-8"), "text")
    return corpora.load(info.get("source", "shakespeare"))


def written_elsewhere(path: Path) -> int | None:
    """The pid of another live process training this folder (the CLI, another app), else None."""
    status = ckpt.read_status(path)
    pid = status.get("pid")
    if status.get("state") in ACTIVE and pid_alive(pid) and int(pid) != os.getpid():
        return int(pid)
    return None


USED_NAMES = ".used-names"  # every run name ever given out here, one per line: a name is never given twice


def used_names(root: Path) -> set[str]:
    try:
        return set(Path(root, USED_NAMES).read_text(encoding="utf-8").split())
    except OSError:
        return set()


def _take(root: Path, name: str) -> Path | None:
    """Create the folder `name` if that name was never given out; None if it was or exists."""
    path = ckpt.run_dir(name, root)
    if name in used_names(root):
        return None
    try:
        path.mkdir()  # atomic: two requests never get the same folder
    except FileExistsError:
        return None
    with open(Path(root, USED_NAMES), "a", encoding="utf-8") as ledger:  # O_APPEND: one short line, whole
        ledger.write(name + "\n")
    return path


def new_folder(root: Path, base: str, name: str | None = None) -> Path:
    """Create the folder of a new run: `name`, or `base-k` with k past every number `base` ever had.

    A name is never given twice, even after its run was deleted: a page or a
    client that still remembers it must never find someone else's run there.
    """
    if name:
        path = _take(root, name)
        if path is None:
            raise CheckpointError(f"A run named {name!r} exists or existed here; choose another name.")
        return path
    base = "".join(c if c.isalnum() or c in "-_" else "-" for c in base)[:48].strip("-") or "run"
    taken = used_names(root) | {p.name for p in Path(root).iterdir()}
    numbers = [int(n[len(base) + 1:]) for n in taken if n.startswith(base + "-") and n[len(base) + 1:].isdigit()]
    for k in range(max(numbers, default=0) + 1, max(numbers, default=0) + 10_000):
        path = _take(root, f"{base}-{k}")
        if path is not None:
            return path
    raise CheckpointError("Could not find a free run name; delete some runs.")  # pragma: no cover


# --- one writer per folder -------------------------------------------------------------------


def acquire_lock(path: Path, busy_here: bool = False) -> None:
    """Become the folder's only writer, or raise TrainingError saying who writes it.

    busy_here: a job of this very process is writing the folder (the lock file
    cannot tell, since it holds our own pid).
    """
    path = Path(path)
    pid = written_elsewhere(path)
    if pid is not None:
        raise TrainingError(f"Run {path.name!r} is being trained by another process (pid {pid}); "
                            "wait for it or stop it there.")
    lock = path / LOCK_FILE
    me = str(os.getpid())
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = lock.read_text(encoding="utf-8").strip()
            except OSError:
                holder = ""
            if (holder == me and busy_here) or (holder != me and pid_alive(holder)):
                who = "this app" if holder == me else f"process {holder}"
                raise TrainingError(f"Run {path.name!r} is already being written by {who}; wait for it to finish.")
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its writer is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return
    raise TrainingError(f"Could not lock run {path.name!r}; try again.")  # pragma: no cover


def locked(path: Path) -> bool:
    """True while a live process holds the folder's writer lock (a run training here, a GPU slice, ...)."""
    try:
        return pid_alive(((Path(path) / LOCK_FILE).read_text(encoding="utf-8")).strip())
    except OSError:
        return False


def release_lock(path: Path) -> None:
    lock = Path(path) / LOCK_FILE
    with contextlib.suppress(OSError):
        if lock.read_text(encoding="utf-8").strip() == str(os.getpid()):
            lock.unlink()


# --- reading ----------------------------------------------------------------------------------


def mark_interrupted(root: Path, live: set[str]) -> list[str]:
    """Rewrite 'running' as 'interrupted' where no live process writes the folder (the app was killed)."""
    found = []
    for path in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        status = ckpt.read_status(path)
        if status.get("state") not in ACTIVE or path.name in live or written_elsewhere(path):
            continue
        step = status.get("step") or 0
        with contextlib.suppress(GPTError, OSError, ValueError, KeyError):
            step = int(ckpt.read_meta(path / ckpt.WEIGHTS)["step"])  # the status only knows where the run began
        for litter in path.glob(".*.tmp"):  # a save the kill cut short; the file it would have replaced is whole
            with contextlib.suppress(OSError):
                litter.unlink()
        ckpt.write_status(path, "interrupted", f"The app stopped while this run was {status.get('state')} "
                          f"(last checkpoint at step {step}). Resume it to continue.", step=step)
        found.append(path.name)
    return found


def update_app_info(path: Path, **changes) -> dict:
    """Change some keys of a run's app.json (the teacher shares a run, a student names themself)."""
    info = read_json(Path(path) / APP_FILE)
    info.update(changes)
    write_app_info(path, info)
    return info
