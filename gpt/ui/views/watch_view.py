"""Watch it learn: a run's loss curve beside the sample it wrote at each evaluation, newest first.

Updates live while the run trains (its timer ticks only while the view is on
show); the metrics download as CSV.
"""

from __future__ import annotations

import gradio as gr

from ... import insight
from ...errors import GPTError
from .. import frames
from ..figure_downloads import NO_FILE, download, new_export_folder, png_button, stem
from ..messages import problem
from ..page import PRIVATE, QUIET, unchanged
from .base import View, refresh_button


def timeline_html(timeline: list[tuple[int, float, str]]) -> str:
    """The samples of each evaluation, newest first (what a live run just learned is on top)."""
    if not timeline:
        return '<div class="sample-timeline"><p>No samples yet: one is written at each evaluation.</p></div>'
    return f'<div class="sample-timeline">{insight.timeline_html(list(reversed(timeline)))}</div>'


class WatchView(View):
    def show(self, owner, run, last=None):
        """(loss curve, sample timeline, status, metrics CSV, signature); parts unchanged since `last` are skipped."""
        if not run or not self.m.runs.visible(owner, run):
            return None, "", "Choose a run.", dict(NO_FILE), None
        try:
            status = self.m.runs.status(run, owner)
            rows = self.m.runs.metrics(run)
        except GPTError as err:
            return None, "", problem(err, toast=False), dict(NO_FILE), None
        steps = self.m.runs.step_losses(run)
        sig = [run, status.state, len(rows), len(steps)]
        same = unchanged(sig, last, 4)
        if same:
            return same
        curve = frames.drawn(frames.loss_frame(rows, steps))
        line = f"**{run}**: {status.state}, step {status.step:,}"
        if status.val_loss is not None:
            line += f", val loss {status.val_loss:.3f}"
        if last and last[:3] == sig[:3]:  # only new batch losses: the timeline and the CSV are the same
            return curve, gr.skip(), line, gr.skip(), sig
        timeline = insight.sample_timeline(rows)
        csv = insight.write_csv(rows, new_export_folder() / f"{stem(run)}-metrics.csv") if rows else None
        line += f" · {len(timeline)} samples, newest first."
        return curve, timeline_html(timeline), line, download(str(csv) if csv else None), sig


def build_watch_view(v: WatchView, who) -> tuple[gr.Tab, gr.Timer]:
    with gr.Tab("Watch it learn", id="v-watch", elem_id="v-watch") as tab:
        with gr.Row():
            run = gr.Dropdown(label="Run (yours while it trains, or any you may see)", scale=5, elem_id="watch-run")
            refresh = refresh_button("watch-refresh")
            csv = png_button("watch-csv", "⬇ metrics CSV")
        status = gr.Markdown(elem_id="watch-status")
        with gr.Row():
            loss = gr.LinePlot(None, x="step", y="loss", color="series", color_map=frames.LOSS_COLOURS,
                               colors_in_legend=list(frames.LOSS_SERIES), height=460, title="Loss (nats per token)",
                               buttons=["export", "fullscreen"], elem_id="watch-loss")
            timeline = gr.HTML(label="What it writes at each evaluation", elem_id="watch-timeline")
        timer, sig = gr.Timer(2.0, active=False), gr.State(None)
    inputs, outputs = [who, run, sig], [loss, timeline, status, csv, sig]
    show_runs = dict(fn=v.metric_runs, inputs=[who, run], outputs=run, **PRIVATE)
    tab.select(**show_runs).then(v.show, inputs, outputs, **PRIVATE)
    refresh.click(**show_runs)
    run.change(lambda: None, None, sig, **PRIVATE).then(v.show, inputs, outputs, **PRIVATE)
    timer.tick(v.show, inputs, outputs, **QUIET)
    return tab, timer
