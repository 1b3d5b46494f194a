"""Runs after the fact: the sample timeline, several runs compared, CSV export.

Everything here reads what `gpt.train.Trainer` wrote: the metrics rows
(each with a fixed-seed `sample`) and a run folder's config.json.
"""

from __future__ import annotations

import math

import csv
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .. import checkpoint as ckpt
from ..errors import CheckpointError
from ..model import GPTConfig, count_parameters


# --- the sample timeline -------------------------------------------------------------------


def sample_timeline(rows: list[dict]) -> list[tuple[int, float, str]]:
    """(step, val_loss, sample) for each evaluation that stored a sample."""
    return [(int(r["step"]), float(r["val_loss"]), r["sample"]) for r in rows if r.get("sample")]


def timeline_html(timeline: list[tuple[int, float, str]]) -> str:
    """The same as HTML, samples escaped (for gr.HTML)."""
    items = [f"<div style='margin-bottom:1em'><b>step {step}</b> · val loss {loss:.3f}"
             f"<pre style='white-space:pre-wrap;margin:0.3em 0'>{html.escape(sample)}</pre></div>"
             for step, loss, sample in timeline]
    return "".join(items) or "<p>No samples yet.</p>"


# --- compare runs ------------------------------------------------------------------------


@dataclass
class RunSummary:
    """One run folder as read back: its config, its metrics rows and its status."""

    name: str
    path: Path
    meta: dict  # config.json (empty if the run has none yet)
    metrics: list[dict]
    status: dict

    @property
    def n_params(self) -> int | None:
        if "n_params" in self.meta:
            return int(self.meta["n_params"])
        if "model" in self.meta:
            return count_parameters(GPTConfig.from_dict(self.meta["model"]))["total"]
        return None


def load_run(path: str | Path) -> RunSummary:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"No run folder at {path}.")
    meta: dict = {}
    if (path / ckpt.CONFIG).exists():
        try:
            meta = json.loads((path / ckpt.CONFIG).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
    metrics = ckpt.read_metrics(path)
    if not meta and not metrics:
        raise CheckpointError(f"{path} holds neither {ckpt.CONFIG} nor {ckpt.METRICS}; it is not a run folder.")
    return RunSummary(path.name, path, meta, metrics, ckpt.read_status(path))


def _describe_model(meta: dict) -> str:
    m = meta.get("model") or {}
    if not m:
        return "?"
    if m.get("model_type") == "bigram":
        return "bigram"
    return f"gpt {m['n_layer']}L x {m['n_head']}h x {m['n_embd']}, ctx {m['block_size']}"


def _num(v, digits: int = 4) -> float | None:
    return None if v is None else round(float(v), digits)


def _perplexity(row: dict) -> float | None:
    """exp(val loss per token); rows written before val_ppl existed get it from their loss."""
    if row.get("val_ppl") is not None:
        return row["val_ppl"]
    return math.exp(min(row["val_loss"], 700.0)) if row.get("val_loss") is not None else None


def runs_table(runs: list[RunSummary]) -> tuple[list[str], list[list]]:
    """(headers, rows): final and best losses, parameters, speed and wall time per run."""
    headers = ["run", "model", "tokenizer", "parameters", "step", "train loss", "val loss", "best val loss",
               "val bpc", "val ppl", "tokens/s", "wall time (s)", "status"]
    out = []
    for run in runs:
        last = run.metrics[-1] if run.metrics else {}
        speeds = [r["tokens_per_sec"] for r in run.metrics if r.get("tokens_per_sec")]  # step 0 has none
        out.append([run.name, _describe_model(run.meta), (run.meta.get("tokenizer") or {}).get("type", "?"), run.n_params,
                    last.get("step"), _num(last.get("train_loss")), _num(last.get("val_loss")),
                    _num(min((r["val_loss"] for r in run.metrics), default=None)), _num(last.get("val_bpc")),
                    _num(_perplexity(last), 2), round(sum(speeds) / len(speeds)) if speeds else None, _num(last.get("elapsed_s"), 1),
                    run.status.get("state", "unknown")])
    return headers, out


# --- export --------------------------------------------------------------------------------


def metrics_to_csv(rows: list[dict]) -> str:
    """Metric rows as CSV with a header: every key any row has, in first-seen order; None as empty."""
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()})
    return buf.getvalue()


def write_csv(rows: list[dict], path: str | Path) -> Path:
    """Write `metrics_to_csv(rows)` to `path` (for a gr.File download) and return the path."""
    path = Path(path)
    path.write_text(metrics_to_csv(rows), encoding="utf-8", newline="")
    return path
