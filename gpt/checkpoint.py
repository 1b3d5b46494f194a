"""Run folders: weights, settings and metrics that survive a crash.

A run lives in `<root>/<name>/`:
- `model.safetensors`: the weights. Its metadata also carries the full
  config (model, tokenizer, training, corpus, step), so this one file is a
  complete, self-describing checkpoint: it is what a user downloads.
- `config.json`: the same config, readable by a person.
- `optimizer.safetensors`: optimizer state, for an exact resume. While a
  save is under way the previous one waits as `optimizer.prev.safetensors`,
  so a kill between the two files still finds the moments of the weights'
  step (a GPU slice killed at its deadline mid-save resumes exactly).
- `metrics.jsonl`: one JSON object per evaluation.
- `status.json`: running / finished / stopped / failed / interrupted.

Every file is written to a temporary name, flushed to disk and renamed over
the old one, so a crash mid-save leaves the previous file whole. The weights
file is the commit point: it is renamed last-but-one, and the loader trusts
its embedded config if config.json disagrees (a crash between the two).

Nothing here ever unpickles: safetensors and JSON only.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError
from .model import GPTConfig, build_model
from .tokenizer import Tokenizer, tokenizer_from_spec

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
OPTIMIZER_PREV = "optimizer.prev.safetensors"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
STATUS = "status.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def checkpoints_root() -> Path:
    """GPT_CHECKPOINT_DIR, else a mounted storage volume's `checkpoints/`, else `checkpoints/` (gpt.storage)."""
    from .storage import detect

    return detect().root


def safe_run_name(name: str) -> str:
    """A run name is one plain folder name: letters, digits, '_', '-', '.', no '..'."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:  # fullmatch: "$" allows a final \n
        raise CheckpointError(
            f"Run name {name!r} is not allowed: use 1 to 64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit, with no '/' and no '..'."
        )
    return name


def run_dir(name: str, root: Path | None = None) -> Path:
    root = Path(root) if root is not None else checkpoints_root()
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
    """Call write(tmp_path), fsync it, then rename over `path`. The old file survives any crash."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise CheckpointError(f"Cannot write to {path.parent}: {err.strerror or err}. The previous checkpoint is unchanged.") from None
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp (and safetensors) make 0600; a checkpoint is meant to be shared and served
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CheckpointError(
            f"Saving {path.name} failed: {err.strerror or err} (disk full or folder not writable?). "
            "The previous checkpoint is unchanged."
        ) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
    **extra,
) -> dict:
    """Write the run folder atomically. Returns the meta written to config.json."""
    path = Path(path)
    meta = build_meta(model_config, tokenizer, step, **extra)
    if optimizers:
        tensors, rests = {}, []
        for i, opt in enumerate(optimizers):
            t, rest = _flatten_optimizer(opt.state_dict())
            tensors.update({f"opt{i}.{k}": v for k, v in t.items()})
            rests.append(rest)
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
    """The safetensors JSON header, read by hand so a broken file gets a clear message."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path.name} is truncated ({size} bytes); it is not a complete safetensors file.")
        (n,) = struct.unpack("<Q", head)
        if head[:2] == b"\x80\x02" or head[:1] == b"PK" or n > 100_000_000 or n + 8 > size:
            raise CheckpointError(
                f"{path.name} is not a safetensors file (a pickle or zip from torch.save, or a truncated file). "
                "Only safetensors checkpoints are accepted; pickles are never loaded because they can run code."
            )
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{path.name} has a corrupt header; it is not a valid safetensors file.") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise CheckpointError(f"{path.name} is truncated: it needs {8 + n + end} bytes but has {size}.")
    return header


def read_meta(weights_path: Path) -> dict:
    header = _read_header(weights_path)
    raw = (header.get("__metadata__") or {}).get("gpt_config")
    if raw is None:
        raise CheckpointError(f"{weights_path.name} has no embedded gpt config; it was not written by this project.")
    return json.loads(raw)


def _check_version(meta: dict, where: str) -> None:
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where} uses checkpoint format version {version}, newer than this program's {FORMAT_VERSION}. "
            "Update the app to load it."
        )


def load_checkpoint(path: str | os.PathLike, device: str = "cpu", with_optimizer: bool = False) -> Checkpoint:
    """Load a run folder (or a lone model.safetensors) with clear errors for anything wrong."""
    path = Path(path)
    weights = path / WEIGHTS if path.is_dir() else path
    if not weights.exists():
        raise CheckpointError(f"No checkpoint at {path}: {WEIGHTS} is missing.")
    embedded = read_meta(weights)
    meta = embedded
    config_path = weights.parent / CONFIG
    if path.is_dir() and config_path.exists():
        try:
            on_disk = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            on_disk = None  # a torn config.json: the weights carry their own copy
        if isinstance(on_disk, dict) and on_disk.get("step") == embedded.get("step"):
            meta = on_disk
    _check_version(meta, str(path))
    try:
        model_config = GPTConfig.from_dict(meta["model"])
        tokenizer = tokenizer_from_spec(meta["tokenizer"])
    except KeyError as err:
        raise CheckpointError(f"{path} is missing the '{err.args[0]}' setting in its config.") from None
    if tokenizer.vocab_size != model_config.vocab_size:
        raise CheckpointError(
            f"{path}: the tokenizer has {tokenizer.vocab_size} tokens but the model expects {model_config.vocab_size}; "
            "config and weights do not belong together."
        )
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights.name} could not be read ({err}); the file is corrupt.") from None
    model = build_model(model_config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors and not _is_tied_alias(model, k)]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: the weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})."
        )
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise CheckpointError(
                f"{path}: weight '{k}' has shape {tuple(v.shape)} but the config implies {tuple(expected[k].shape)} "
                "(a vocabulary size or width that does not match the weights)."
            )
    broken = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise CheckpointError(
            f"{path}: weight '{broken[0]}' holds NaN or infinite values; the file is corrupt. "
            "Use an earlier checkpoint or train again."
        )
    model.load_state_dict(tensors, strict=False)
    model.to(device)
    model.eval()
    ckpt = Checkpoint(model=model, model_config=model_config, tokenizer=tokenizer, meta=meta, path=path)
    if with_optimizer and path.is_dir():
        for name in (OPTIMIZER, OPTIMIZER_PREV):  # prev: a save was cut short before its weights
            if ckpt.optimizer_state is None and (path / name).exists():
                ckpt.optimizer_state = _load_optimizer(path / name, ckpt.step)
    return ckpt


def _is_tied_alias(model: torch.nn.Module, key: str) -> bool:
    return key == "lm_head.weight" and getattr(model.config, "tie_weights", False) and model.config.model_type == "gpt"


def _load_optimizer(path: Path, step: int) -> list[dict] | None:
    header = _read_header(path)
    meta = header.get("__metadata__") or {}
    if int(meta.get("step", -1)) != step:
        return None  # a crash between the two saves: resume with fresh optimizer moments
    tensors = load_file(str(path), device="cpu")
    rests = json.loads(meta["optimizers"])
    out = []
    for i, rest in enumerate(rests):
        prefix = f"opt{i}."
        mine = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        out.append(_unflatten_optimizer(mine, rest))
    return out


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
    payload = {"state": state, "message": message, "pid": os.getpid(), "updated": time.time(), **extra}
    atomic_write_text(Path(path) / STATUS, json.dumps(payload))


def read_status(path: str | os.PathLike) -> dict:
    p = Path(path) / STATUS
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"state": "unknown", "message": ""}
