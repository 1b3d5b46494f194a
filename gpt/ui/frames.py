"""Loss curves and the progress bar, as plain data a plot component draws.

The live curve has three series on one axis, in nats per token:
- 'train (each step)': the loss of every training batch, noisy but new every
  step, so the plot moves at least once a second from the first steps on;
- 'train (eval)' and 'val (eval)': means over the same eval batches at each
  evaluation: the smooth lines the lecture reads overfitting from.

The comparison plot puts runs side by side in bits per character, the one
measure that is fair across tokenizers (a token means a different amount
of text in each).
"""

from __future__ import annotations

import html

import pandas as pd

from ..estimate import human_count, human_seconds
from ..jobs import RunStatus

MAX_STEP_POINTS = 300
LOSS_SERIES = ("train (each step)", "train (eval)", "val (eval)")
LOSS_COLOURS = {"train (each step)": "#93c5fd", "train (eval)": "#1d4ed8", "val (eval)": "#ea580c"}
LOSS_COLUMNS = ["step", "loss", "series"]
COMPARE_COLUMNS = ["step", "val_bpc", "run"]
STATE_COLOURS = {
    "queued": "#a16207", "preparing": "#a16207", "running": "#15803d", "finished": "#1d4ed8",
    "stopped": "#6b7280", "failed": "#b91c1c", "interrupted": "#c2410c",
}


def downsample(points: list[tuple[int, float]], limit: int = MAX_STEP_POINTS) -> list[tuple[float, float]]:
    """At most `limit` points: the mean step and loss of equal consecutive buckets."""
    if len(points) <= limit:
        return [(float(s), float(v)) for s, v in points]
    out = []
    size = len(points) / limit
    for k in range(limit):
        chunk = points[int(k * size): int((k + 1) * size)] or [points[min(len(points) - 1, int(k * size))]]
        out.append((sum(s for s, _ in chunk) / len(chunk), sum(v for _, v in chunk) / len(chunk)))
    return out


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """Typed columns even when empty: the plot reads numbers as an axis, not as categories."""
    x, y, series = zip(*rows) if rows else ((), (), ())
    return pd.DataFrame({columns[0]: pd.Series(x, dtype="float64"), columns[1]: pd.Series(y, dtype="float64"),
                         columns[2]: pd.Series(series, dtype="str")})


def loss_frame(metrics: list[dict], step_losses: list[tuple[int, float]]) -> pd.DataFrame:
    """Every series is present from the first frame (an empty one as a single NaN row): Gradio's
    LinePlot fixes its colour legend when it first draws, and would not show a series added later."""
    rows = [(s, v, "train (each step)") for s, v in downsample(step_losses)]
    for r in metrics:
        rows.append((r["step"], r["train_loss"], "train (eval)"))
        rows.append((r["step"], r["val_loss"], "val (eval)"))
    present = {series for _, _, series in rows}
    rows += [(float("nan"), float("nan"), series) for series in LOSS_SERIES if series not in present]
    return _frame(rows, LOSS_COLUMNS)


def compare_frame(runs: dict[str, list[dict]]) -> pd.DataFrame:
    """val bpc against step for each run: {run name: metric rows}."""
    rows = [(r["step"], r["val_bpc"], name) for name, metrics in runs.items() for r in metrics if "val_bpc" in r]
    return _frame(rows, COMPARE_COLUMNS)


def _fmt(x, pattern: str = "{:.3f}") -> str:
    return "-" if x is None else pattern.format(x)


def queue_wait(starts_in_s: float | None) -> str:
    """When a queued run should start, from the runs ahead of it (gpt.jobs.queue_eta)."""
    if starts_in_s is None:
        return "it starts when a slot frees up"
    return f'<span class="queue-eta">starts in about <b>{human_seconds(starts_in_s)}</b></span>'


def progress_html(status: RunStatus | None) -> str:
    """A bar and one line of numbers: state, step, tokens/s, ETA, latest losses."""
    if not status:
        return ('<div class="run-progress idle">No run yet. Pick a corpus and a tokenizer, then press '
                '<b>Start training</b>.</div>')
    state = status.state
    colour = STATE_COLOURS.get(state, "#6b7280")
    pct = 100.0 * max(0.0, min(1.0, status.fraction or 0.0))
    if state == "finished":
        pct = 100.0
    parts = [f'<b>{html.escape(status.name)}</b>',
             f'<span class="run-state" style="background:{colour}">{html.escape(state)}</span>']
    if state == "queued" and status.queue_position:
        parts.append(f"position <b>{status.queue_position}</b> in the queue: {queue_wait(status.starts_in_s)}")
    else:
        parts.append(f"step <b>{status.step:,}</b> / {status.max_iters:,}")
        if status.tokens_per_sec:
            parts.append(f"{status.tokens_per_sec:,.0f} tokens/s")
        if state == "running":
            parts.append(f"ETA {human_seconds(status.eta_s)}")
        parts.append(f"elapsed {human_seconds(status.elapsed_s)}")
        if status.n_params:
            parts.append(f"{human_count(status.n_params)} parameters")
        processes = status.processes or 1
        parts.append(f"{processes} process{'es' if processes > 1 else ''}" + (" (torchrun)" if processes > 1 else ""))
        if status.loss is not None and state == "running":
            parts.append(f"batch loss {status.loss:.3f}")
        if status.val_loss is not None:
            parts.append(f"val loss {_fmt(status.val_loss)} ({_fmt(status.val_bpc, '{:.2f}')} bits/char)")
    message = status.message or ""
    note = f'<div class="run-message state-{html.escape(state)}">{html.escape(message)}</div>' if message else ""
    return (f'<div class="run-progress"><div class="run-line">{" &middot; ".join(parts)}</div>'
            f'<div class="run-bar"><div class="run-fill" style="width:{pct:.1f}%;background:{colour}"></div></div>'
            f"{note}</div>")


PROGRESS_CSS = """
.run-progress { padding: 6px 2px; }
.run-line { font-size: 15px; }
.run-state { color: white; border-radius: 10px; padding: 1px 8px; font-size: 13px; }
.run-bar { height: 10px; background: #e5e7eb; border-radius: 5px; margin-top: 6px; overflow: hidden; }
.run-fill { height: 100%; transition: width .5s; }
.run-message { margin-top: 6px; font-size: 14px; }
.run-message.state-failed { color: #b91c1c; font-weight: 600; }
"""
