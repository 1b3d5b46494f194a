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

from .. import history
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
    """At most `limit` points a plot draws (bucket means: `gpt.history.downsample`)."""
    return history.downsample(points, limit)


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


def drawn(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The frame a plot is sent, or None (a blank plot) while it has no finite point.

    Gradio's LinePlot lays its chart out once, when it first draws, and later values only swap the data
    (Vega's autosize does not resize): a chart first drawn from a frame of NaN rows keeps the margins of an
    axis without labels and a legend without entries, so the y labels of the real curve are cut on the
    left ("6.15" read as "5.15") and the legend's entries fall below the frame. A blank plot draws nothing,
    and its first real frame is laid out whole."""
    finite = frame.iloc[:, 1].notna() & frame.iloc[:, 0].notna()
    return frame if bool(finite.any()) else None


def compare_frame(runs: dict[str, list[dict]]) -> pd.DataFrame:
    """val bpc against step for each run: {run name: metric rows}."""
    rows = [(r["step"], r["val_bpc"], name) for name, metrics in runs.items() for r in metrics if "val_bpc" in r]
    return _frame(rows, COMPARE_COLUMNS)


def _fmt(x, pattern: str = "{:.3f}") -> str:
    return "-" if x is None else pattern.format(x)


def _where(status: RunStatus) -> str:
    """How far the run is, counted in the limit that will end it (steps or seconds, whichever is nearer)."""
    if status.time_bound:
        limit = (f"ends at {human_seconds(status.max_seconds)} by {html.escape(status.limit_note)}" if status.limit_note
                 else f"of its {human_seconds(status.max_seconds)} time limit")
        return (f"<b>{human_seconds(status.elapsed_s)}</b> {limit} "
                f"&middot; step {status.step:,} (at most {status.max_iters:,})")
    where = f"step <b>{status.step:,}</b> / {status.max_iters:,}"
    if status.max_seconds:
        where += f" (or {human_seconds(status.max_seconds)}, whichever comes first)"
    return where + f" &middot; elapsed {human_seconds(status.elapsed_s)}"


def queue_wait(starts_in_s: float | None) -> str:
    """When a queued run should start, from the runs ahead of it (gpt.jobs.queue_eta)."""
    if starts_in_s is None:
        return "it starts when a slot frees up"
    return f'<span class="queue-eta">starts in about <b>{human_seconds(starts_in_s)}</b></span>'


LOADING = '<div class="run-progress idle">Loading your run&hellip;</div>'  # until the page knows who is asking


def progress_html(status: RunStatus | None) -> str:
    """A bar that follows the limit ending the run, one line of numbers, and why it ended once it did.

    The page starts with `LOADING`, not this: until its first poll it does not know whether the
    person has a run, and "No run yet" shown to someone whose run waits in the queue is wrong."""
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
        parts.append(_where(status))
        if state == "running" and status.eta_s is not None:  # unknown until a step was timed (a GPU slice starting)
            parts.append(f"about {human_seconds(status.eta_s)} left")
        if status.tokens_per_sec:
            parts.append(f"{status.tokens_per_sec:,.0f} tokens/s")
        if status.n_params:
            parts.append(f"{human_count(status.n_params)} parameters")
        if (status.processes or 1) > 1:
            parts.append(f"{status.processes} processes (torchrun)")
        if status.loss is not None and state == "running":
            # RL's is the policy-gradient objective (advantage x log-probability): it is not an error, and it
            # sits near 0 either side; the reward is the number to watch (the RL panel's curve)
            parts.append(f"policy-gradient loss {status.loss:.3f}" if status.kind == "rl" else
                         f"batch loss {status.loss:.3f}")
        if status.val_loss is not None:
            ppl = f", perplexity {status.val_ppl:,.1f}" if status.val_ppl is not None and not status.active else ""
            parts.append(f"val loss {_fmt(status.val_loss)} ({_fmt(status.val_bpc, '{:.2f}')} bits/char{ppl})")
    reason = status.end_reason or ""
    message = status.message or (reason[:1].upper() + reason[1:] + "." if reason else "")
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
