"""Run folders: weights, settings and metrics that survive a crash.

A run lives in `<root>/<name>/`:
- `model.safetensors`: the weights. Its metadata also carries the full
  config (model, tokenizer, training, corpus, step), so this one file is a
  complete, self-describing checkpoint: it is what a user downloads.
- `config.json`: the same config, readable by a person.
- `optimizer.safetensors`: optimizer state, for an exact resume. While a
  save is under way the previous one waits as `optimizer.prev.safetensors`,
  so a kill between the two files still finds the moments of the weights'
  step (a process killed mid-save resumes exactly).
- `metrics.jsonl`: one JSON object per evaluation.
- `status.json`: running / finished / stopped / failed / interrupted.

Every file is written to a temporary name, flushed to disk and renamed over
the old one, so a crash mid-save leaves the previous file whole. The weights
file is the commit point: it is renamed last-but-one, and the loader trusts
its embedded config if config.json disagrees (a crash between the two).

Nothing here ever unpickles: safetensors and JSON only.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .checkpoint_check import FORMAT_VERSION, check_checkpoint, parse_meta
from .errors import CheckpointError
from .model import GPTConfig, build_model
from .safetensors_header import MAX_HEADER_BYTES, read_header
from .tokenizer import Tokenizer

if TYPE_CHECKING:  # pragma: no cover
    from .limits import Limits

WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
OPTIMIZER_PREV = "optimizer.prev.safetensors"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
STATUS = "status.json"
TEMP_SUFFIX = ".tmp"
_STALE_RE = re.compile(r"\.[^/]+\.[A-Za-z0-9_]+\.tmp|\.tmp[A-Za-z0-9]{6}")  # ours | safetensors' own
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def safe_run_name(name: str) -> str:
    """A run name is one plain folder name: letters, digits, '_', '-', '.', no '..'."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:  # fullmatch: "$" allows a final \n
        raise CheckpointError(
            f"Run name {name!r} is not allowed: use 1 to 64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit, with no '/' and no '..'."
        )
    return name


def run_dir(name: str, root: Path) -> Path:
    """The folder of run `name` under the runs root, never outside it."""
    root = Path(root)
    path = (root / safe_run_name(name)).resolve()
    if path.parent != root.resolve():  # belt and braces: never leave the root
        raise CheckpointError(f"Run name {name!r} would leave the checkpoints folder.")
    return path


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), fsync it, then rename over `path`. The old file survives any crash.

    A full disk or a read-only folder is a CheckpointError that names the file, never its folder
    (safetensors reports a full disk as SafetensorError, not OSError)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise CheckpointError(f"Cannot save {path.name}: {why_write_failed(err)}. The previous checkpoint is unchanged.") from None
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp (and safetensors) make 0600; a checkpoint is meant to be shared and served
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, SafetensorError) as err:
        _unlink_quietly(tmp)
        raise CheckpointError(
            f"Saving {path.name} failed: {why_write_failed(err)}. The previous checkpoint is unchanged."
        ) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


def why_write_failed(err: BaseException) -> str:
    """Why a write failed, in words, without the server path an OSError carries."""
    errno_ = getattr(err, "errno", None)
    if errno_ == errno.ENOSPC or "No space left" in str(err):
        return "the disk is full (No space left on device)"
    if errno_ in (errno.EACCES, errno.EPERM, errno.EROFS) or "Permission denied" in str(err) or "Read-only" in str(err):
        return "the checkpoints folder is not writable"
    return getattr(err, "strerror", None) or "the disk refused the write (disk full or folder not writable?)"


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def clean_stale_temp_files(root: str | os.PathLike, older_than_s: float = 60.0) -> list[str]:
    """Delete the temporary files a killed save left in the run folders under `root`; returns their names.

    Our saves write `.<name>.<random>.tmp` and rename it, and safetensors (0.5 and later) itself
    writes `.tmp<6 random>` and renames that onto ours; a kill -9 mid-save leaves either behind
    (28 MB for a medium model). Call this at start-up. Files younger than `older_than_s` may
    belong to a save in progress in another process (a CLI run) and are kept."""
    root = Path(root)
    removed, now = [], time.time()
    try:
        folders = [root, *(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())]
    except OSError:
        return removed
    for folder in folders:
        try:
            candidates = [p for p in folder.glob(".*") if _STALE_RE.fullmatch(p.name)]
        except OSError:
            continue
        for tmp in candidates:
            try:
                if tmp.is_file() and not tmp.is_symlink() and now - tmp.stat().st_mtime >= older_than_s:
                    tmp.unlink()
                    removed.append(tmp.name)
            except OSError:
                continue
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


@dataclass
class Checkpoint:
    """What a run folder holds, loaded and checked."""

    model: torch.nn.Module
    model_config: GPTConfig
    tokenizer: Tokenizer
    meta: dict  # the whole config.json: train config, corpus, step, ...
    path: Path | None = None
    optimizer_state: dict | None = field(default=None, repr=False)
    rng_state: dict | None = field(default=None, repr=False)  # 'cpu' (and 'cuda'): the dropout stream's state

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))


def build_meta(model_config: GPTConfig, tokenizer: Tokenizer, step: int, **extra) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "model": model_config.to_dict(),
        "tokenizer": tokenizer.spec(),
        "step": int(step),
        "saved_at": time.time(),
        **extra,
    }


def _state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights as contiguous CPU tensors, tied weights stored once."""
    sd = {}
    seen: dict[int, str] = {}
    for k, v in model.state_dict().items():
        if v.data_ptr() in seen:
            continue
        seen[v.data_ptr()] = k
        sd[k] = v.detach().to("cpu").contiguous()
    return sd


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state_dict -> (tensors for safetensors, JSON for the rest)."""
    tensors, scalars = {}, {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state: dict[int, dict] = {}
    for flat, value in list(tensors.items()) + list(rest.get("scalars", {}).items()):
        idx, key = flat.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    model_config: GPTConfig,
    tokenizer: Tokenizer,
    step: int,
    optimizers: list[torch.optim.Optimizer] | None = None,
    rng_state: dict[str, torch.Tensor] | None = None,
    **extra,
) -> dict:
    """Write the run folder atomically. Returns the meta written to config.json.

    `rng_state` (random generators' states, e.g. dropout's) is saved beside the optimizer's moments, so a
    resumed run draws the same dropout masks an uninterrupted one would."""
    path = Path(path)
    meta = build_meta(model_config, tokenizer, step, **extra)
    if optimizers:
        tensors, rests = {}, []
        for i, opt in enumerate(optimizers):
            t, rest = _flatten_optimizer(opt.state_dict())
            tensors.update({f"opt{i}.{k}": v for k, v in t.items()})
            rests.append(rest)
        tensors.update({f"rng.{k}": v.detach().to("cpu").contiguous() for k, v in (rng_state or {}).items()})
        opt_meta = {"step": str(int(step)), "optimizers": json.dumps(rests)}
        _keep_matching_optimizer(path)
        atomic_write(path / OPTIMIZER, lambda tmp: save_file(tensors, tmp, metadata=opt_meta))
    meta_json = json.dumps(meta)
    atomic_write(path / WEIGHTS, lambda tmp: save_file(_state_dict(model), tmp, metadata={"gpt_config": meta_json}))
    atomic_write_text(path / CONFIG, json.dumps(meta, indent=2))
    if (path / OPTIMIZER_PREV).exists():
        os.unlink(path / OPTIMIZER_PREV)  # the new weights are committed: the old moments are no one's
    return meta


def _keep_matching_optimizer(path: Path) -> None:
    """Before a save: move the optimizer state that matches the weights on disk to optimizer.prev."""
    current, prev = path / OPTIMIZER, path / OPTIMIZER_PREV
    if not current.exists():
        return
    try:
        matches = int(_read_header(current)["__metadata__"]["step"]) == int(read_meta(path / WEIGHTS)["step"])
    except (CheckpointError, OSError, KeyError, ValueError):
        matches = False
    if matches or not prev.exists():  # else prev is the match and `current` a save that was cut short
        os.replace(current, prev)


def _read_header(path: Path) -> dict:
    """The safetensors JSON header, every entry checked (gpt.safetensors_header)."""
    return read_header(path)


def read_meta(weights_path: Path) -> dict:
    """The config embedded in a model.safetensors, its top-level fields checked."""
    header = read_header(weights_path)
    return parse_meta(header["__metadata__"].get("gpt_config"), Path(weights_path).name)


def _config_json(folder: Path, step: int):
    """A run folder's config.json when it is a regular file of the weights' step, else None."""
    path = folder / CONFIG
    try:
        if not path.is_file() or path.stat().st_size > MAX_HEADER_BYTES:
            return None
        on_disk = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # a torn or odd config.json: the weights carry their own copy
    return on_disk if isinstance(on_disk, dict) and on_disk.get("step") == step else None


def load_checkpoint(path: str | os.PathLike, device: str = "cpu", with_optimizer: bool = False,
                    limits: "Limits | None" = None) -> Checkpoint:
    """Load a run folder (or a lone model.safetensors) with clear errors for anything wrong.

    Everything the file promises is checked before its weights are read (gpt.checkpoint_check);
    give the server's `limits` for anything a user uploaded or downloaded."""
    path = Path(path)
    weights = path / WEIGHTS if path.is_dir() else path
    if not weights.exists():
        raise CheckpointError(f"No checkpoint at {path.name}: {WEIGHTS} is missing.")
    embedded = read_meta(weights)
    on_disk = _config_json(weights.parent, embedded["step"]) if path.is_dir() else None
    checked = check_checkpoint(weights, limits, meta=on_disk)
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights.name} could not be read ({str(err)[:200]}); the file is corrupt.") from None
    broken = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise CheckpointError(
            f"{weights.name}: weight '{broken[0]}' holds NaN or infinite values; the file is corrupt. "
            "Use an earlier checkpoint or train again."
        )
    model = build_model(checked.model_config)
    model.load_state_dict(tensors, strict=False)
    model.to(device)
    model.eval()
    ckpt = Checkpoint(model=model, model_config=checked.model_config, tokenizer=checked.tokenizer, meta=checked.meta,
                      path=path)
    if with_optimizer and path.is_dir():
        for name in (OPTIMIZER, OPTIMIZER_PREV):  # prev: a save was cut short before its weights
            if ckpt.optimizer_state is None and (path / name).exists():
                ckpt.optimizer_state, ckpt.rng_state = _load_optimizer(path / name, ckpt.step)
    return ckpt


def _load_optimizer(path: Path, step: int) -> tuple[list[dict] | None, dict | None]:
    """The optimizer state and random generators' states saved with `step`; (None, None) (fresh moments, a new
    dropout stream) if they are of another step or damaged."""
    try:
        meta = read_header(path)["__metadata__"]
        if meta.get("step") != str(step):
            return None, None  # a crash between the two saves: resume with fresh optimizer moments
        tensors = load_file(str(path), device="cpu")
        rests = json.loads(meta["optimizers"])
        out = []
        for i, rest in enumerate(rests):
            prefix = f"opt{i}."
            mine = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            out.append(_unflatten_optimizer(mine, rest))
        rng = {k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.") and v.dtype == torch.uint8}
        return out, rng or None
    except (CheckpointError, SafetensorError, OSError, KeyError, TypeError, ValueError, AttributeError):
        return None, None


# --- metrics and status ------------------------------------------------------------------


def append_metrics(path: str | os.PathLike, row: dict) -> None:
    with open(Path(path) / METRICS, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """All metric rows; a torn last line (crash mid-append) is skipped."""
    p = Path(path) / METRICS
    if not p.exists():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_metrics(path: str | os.PathLike, max_step: int) -> None:
    """On resume, drop rows past the checkpoint's step (they were never saved)."""
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= max_step]
    atomic_write_text(Path(path) / METRICS, "".join(json.dumps(r) + "\n" for r in rows))


def write_status(path: str | os.PathLike, state: str, message: str = "", **extra) -> None:
    """Record a run's state; a folder deleted meanwhile is left deleted (never recreated half-empty)."""
    if not Path(path).is_dir():
        return
    payload = {"state": state, "message": message, "pid": os.getpid(), "updated": time.time(), **extra}
    atomic_write_text(Path(path) / STATUS, json.dumps(payload))


def read_status(path: str | os.PathLike) -> dict:
    p = Path(path) / STATUS
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"state": "unknown", "message": ""}
