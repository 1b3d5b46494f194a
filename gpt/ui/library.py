"""The runs table, and checkpoints in and out of the server as one file each.

A run's `model.safetensors` carries its whole config in the file's metadata
(see `gpt.checkpoint`), so one file is a complete checkpoint: that is what
Download gives and what Upload takes.

Upload takes safetensors only and checks the file with `load_checkpoint`
before anything is kept: a pickle from `torch.save` (which can run code when
loaded), a truncated file or weights that do not fit their config are refused
with a sentence. Nothing here ever unpickles.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from .. import checkpoint as ckpt
from ..data import SYNTHETIC
from ..errors import CheckpointError
from ..jobs import folder as folders
from ..jobs.folder import write_app_info
from ..jobs import JobManager, RunStatus
from ..estimate import human_count
from .uploads import still_cached

TABLE_HEADERS = ["run", "whose", "corpus", "tokenizer", "model", "parameters", "processes", "steps", "best val loss",
                 "state"]


def table_rows(runs: list[RunStatus]) -> list[list]:
    rows = []
    for r in runs:
        state = r.state + (f" (#{r.queue_position} in queue)" if r.queue_position else "")
        best = r.best_val_loss
        rows.append([r.name, r.whose, r.corpus, r.tokenizer, r.model_type,
                     human_count(r.params) if r.params else "-", r.processes, f"{r.step:,}",
                     f"{best:.3f}" if isinstance(best, (int, float)) else "-", state])
    return rows


def import_checkpoint(manager: JobManager, owner: str, file_path: str, original_name: str | None = None) -> str:
    """Validate an uploaded checkpoint and make it a run of `owner`. Returns the run name."""
    if not owner:
        raise CheckpointError("The page has not finished loading; try again in a second.")
    src = Path(file_path)
    shown = original_name or src.name
    if not shown.lower().endswith(".safetensors"):
        raise CheckpointError(f"{shown} is not a .safetensors file. Only safetensors checkpoints are accepted: "
                              "pickles (.pt, .pth, .bin, .ckpt) can run code when loaded, so they are never opened.")
    manager.limits.check_upload(still_cached(src).stat().st_size, shown)
    # header, config, limits, tokenizer and every shape checked before anything is allocated; no pickle
    loaded = ckpt.load_checkpoint(src, device="cpu", limits=manager.limits)
    meta = dict(loaded.meta)
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(shown).stem).strip("-_")[:40] or "uploaded"
    path = folders.new_folder(manager.root, base)
    try:
        shutil.copyfile(src, path / ckpt.WEIGHTS)
        if not meta.get("n_params"):
            meta["n_params"] = sum(p.numel() for p in {id(p): p for p in loaded.model.parameters()}.values())
        ckpt.atomic_write_text(path / ckpt.CONFIG, json.dumps(meta, indent=2))
        write_app_info(path, {"owner": owner, "shared": False, "corpus": meta.get("corpus", "uploaded"),
                              "uploaded_from": shown, "created": time.time(), "source": _builtin(meta.get("data_source"))})
        ckpt.write_status(path, "finished", f"Uploaded from {shown}.", step=loaded.step)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path.name


def _builtin(source) -> str:
    """A corpus an uploaded checkpoint names, kept only if it is one of ours: never a path to read."""
    return source if source == "shakespeare" or source in SYNTHETIC else ""


def download_file(manager: JobManager, owner: str, name: str) -> str:
    """A copy of the run's model.safetensors named after the run, for the browser to download."""
    if not manager.runs.visible(owner, name):
        raise CheckpointError(f"There is no run named {name!r}.")
    weights = manager.runs.run_path(name) / ckpt.WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"Run {name!r} has no checkpoint yet; it is saved at its first evaluation.")
    folder = Path(tempfile.gettempdir()) / "gpt-downloads" / f"{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.safetensors"
    tmp = folder / f".{name}.tmp"
    shutil.copyfile(weights, tmp)  # the trainer renames a new file in; this copy is one consistent save
    os.replace(tmp, out)
    return str(out)
