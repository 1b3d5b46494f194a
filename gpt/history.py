"""A run's whole learning curve, kept across stops, resumes, restarts and uploads.

Two records make the curve a page draws:
- every evaluation: `metrics.jsonl` (`gpt.checkpoint`);
- every training step's batch loss: `steps.jsonl` here, one `[step, loss]`
  line per step. `StepLog` appends it live (at most half a second after the
  step, so a page in another process draws it as it grows)
  and flushes before every checkpoint; on resume it is cut back to the
  checkpoint's step, exactly as metrics.jsonl is (`restore`). This module is
  its only writer and reader.

A checkpoint travels alone (a download is one .safetensors file), so each
save also embeds a short copy of both in the weights' metadata
(`embedded`): an uploaded run shows its history, and resuming it writes the
two files back from that copy (`restore`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import checkpoint as ckpt

STEPS = "steps.jsonl"
EMBEDDED_POINTS = 500  # per-step points kept in a checkpoint's metadata


def downsample(points: list[tuple[int, float]], limit: int) -> list[tuple[float, float]]:
    """At most `limit` points: the mean step and loss of equal consecutive buckets."""
    if len(points) <= limit:
        return [(float(s), float(v)) for s, v in points]
    out = []
    size = len(points) / limit
    for k in range(limit):
        chunk = points[int(k * size): int((k + 1) * size)] or [points[min(len(points) - 1, int(k * size))]]
        out.append((sum(s for s, _ in chunk) / len(chunk), sum(v for _, v in chunk) / len(chunk)))
    return out


def _lines(points) -> str:
    """One `[step, loss]` line per point, the loss at full precision (a resumed curve is the same curve)."""
    return "".join(json.dumps([int(round(s)), float(v)]) + "\n" for s, v in points)


class StepLog:
    """Appends each step's loss to a run folder's `steps.jsonl`: at most `every_s` after the step, and on `flush`
    (the trainer flushes before every save, so a kill leaves no gap before the checkpoint's step)."""

    def __init__(self, path: str | os.PathLike, every_s: float = 0.5):
        self.path = Path(path) / STEPS
        self.every_s = every_s
        self._points: list[tuple[int, float]] = []
        self._flushed = time.monotonic()

    def add(self, step: int, loss: float) -> None:
        self._points.append((step, loss))
        if time.monotonic() - self._flushed > self.every_s:
            self.flush()

    def flush(self) -> None:
        if self._points and self.path.parent.is_dir():  # a folder deleted under the run is never recreated here
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(_lines(self._points))
            self._points.clear()
        self._flushed = time.monotonic()


def read_steps(path: str | os.PathLike) -> list[tuple[int, float]]:
    """The per-step curve; a torn last line (a crash mid-append) is skipped."""
    p = Path(path) / STEPS
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            s, v = json.loads(line)
            out.append((int(s), float(v)))
        except (ValueError, TypeError):
            continue
    return out


def embedded(metrics: list[dict], steps: list[tuple[int, float]]) -> dict:
    """The short copy of the curve a checkpoint carries in its metadata (no sample texts)."""
    return {"metrics": [{k: v for k, v in r.items() if k != "sample"} for r in metrics],
            "steps": [[round(s), round(v, 5)] for s, v in downsample(steps, EMBEDDED_POINTS)]}


def from_meta(meta: dict) -> tuple[list[dict], list[tuple[int, float]]]:
    """The (metrics, steps) a checkpoint's metadata carries; empty for one saved before it did."""
    h = meta.get("history") if isinstance(meta.get("history"), dict) else {}
    metrics = [r for r in h.get("metrics") or [] if isinstance(r, dict) and "step" in r]
    steps = [(int(p[0]), float(p[1])) for p in h.get("steps") or [] if isinstance(p, list) and len(p) == 2]
    return metrics, steps


def restore(path: str | os.PathLike, meta: dict, step: int) -> tuple[list[dict], list[tuple[int, float]]]:
    """On resume: both records cut back to `step`; rebuilt from the metadata where a file is missing."""
    path = Path(path)
    metrics = [r for r in ckpt.read_metrics(path) if r.get("step", 0) <= step]
    steps = [(s, v) for s, v in read_steps(path) if s <= step]
    saved_metrics, saved_steps = from_meta(meta)
    if not (path / ckpt.METRICS).exists():
        metrics = [r for r in saved_metrics if r.get("step", 0) <= step]
    if not (path / STEPS).exists():
        steps = [(s, v) for s, v in saved_steps if s <= step]
    ckpt.atomic_write_text(path / ckpt.METRICS, "".join(json.dumps(r) + "\n" for r in metrics))
    ckpt.atomic_write_text(path / STEPS, _lines(steps))
    return metrics, steps


def read(path: str | os.PathLike) -> tuple[list[dict], list[tuple[int, float]]]:
    """A run folder's curve: its files, else the copy in its checkpoint (an uploaded run)."""
    path = Path(path)
    metrics, steps = ckpt.read_metrics(path), read_steps(path)
    if (not metrics or not steps) and not (path / STEPS).exists():
        saved_metrics, saved_steps = from_meta(_config(path))
        metrics, steps = metrics or saved_metrics, steps or saved_steps
    return metrics, steps


def _config(path: Path) -> dict:
    try:
        data = json.loads((path / ckpt.CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        try:
            data = ckpt.read_meta(path / ckpt.WEIGHTS)
        except Exception:  # noqa: BLE001 - no checkpoint: no history
            return {}
    return data if isinstance(data, dict) else {}


def clear(path: str | os.PathLike) -> None:
    """A new run starts with no curve: rows an earlier attempt wrote before it was killed (no checkpoint yet) go."""
    ckpt.atomic_write_text(Path(path) / ckpt.METRICS, "")
    ckpt.atomic_write_text(Path(path) / STEPS, "")
