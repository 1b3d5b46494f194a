"""Compare runs: the chosen runs against training step or wall time, and a table of where each ended.

Bits per character compare fairly across tokenizers; loss per token does not.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ... import insight
from ... import plots as figures
from ...errors import CheckpointError, GPTError
from ...estimate import human_count
from ..figure_downloads import NO_FILE, download, export, png_button
from ..page import PRIVATE
from ..pickers import pick_runs, with_metrics
from .base import View, refresh_button


class CompareView(View):
    def choices(self, owner, selected=None) -> dict:
        return pick_runs(self.m, owner, with_metrics(self.m.runs.list_runs(owner)), selected)

    def _summary(self, owner, name) -> insight.RunSummary | None:
        if not self.m.runs.visible(owner, name):
            return None
        try:
            path = self.m.runs.run_path(name)
            rows = self.m.runs.metrics(name)
            state = self.m.runs.summary(name, owner).state
        except GPTError:
            return None
        try:
            meta = insight.load_run(path).meta
        except CheckpointError:
            meta = {}
        trainer = self.m.runs.live_trainer(name)
        if not meta.get("model") and trainer is not None:  # training, not saved yet
            meta = {"model": trainer.model_config.to_dict(), "tokenizer": {"type": trainer.tokenizer.spec()["type"]},
                    "n_params": trainer.n_params}
        return insight.RunSummary(name, path, meta, rows, {"state": state})

    def show(self, owner, selected, x="step", y="val_bpc"):
        """(figure, table, status, PNG) for the chosen runs the asker may see."""
        runs = [s for s in (self._summary(owner, n) for n in selected or []) if s is not None]
        if not runs:
            return None, None, "Choose one or more runs to compare.", dict(NO_FILE)
        fig, png = export(f"compare-{y}-by-{x}", figures.runs_figure, runs, x or "step", y or "val_bpc")
        headers, rows = insight.runs_table(runs)
        table = pd.DataFrame(rows, columns=headers)
        table["parameters"] = [human_count(int(n)) if n else "-" for n in table["parameters"]]
        note = ("Bits per character compare fairly across tokenizers; loss per token does not."
                if y == "val_bpc" else "Loss per token: compare only runs with the same tokenizer.")
        return fig, table, f"{len(runs)} run(s). {note}", download(png)


def build_compare_view(v: CompareView, who) -> gr.Tab:
    with gr.Tab("Compare runs", id="v-compare", elem_id="v-compare") as tab:
        with gr.Row():
            runs = gr.Dropdown(multiselect=True, label="Runs to compare", scale=5, elem_id="cmp-runs")
            refresh = refresh_button("cmp-refresh")
        with gr.Row():
            x = gr.Radio([("Training step", "step"), ("Wall time (s)", "elapsed_s")], value="step", label="x axis",
                         elem_id="cmp-x")
            y = gr.Radio([("Validation bits per character", "val_bpc"), ("Validation loss", "val_loss"),
                          ("Training loss", "train_loss")], value="val_bpc", label="y axis", elem_id="cmp-y")
        status = gr.Markdown(elem_id="cmp-status")
        plot = gr.Plot(show_label=False, elem_id="cmp-plot")
        png = png_button("cmp-png")
        table = gr.Dataframe(label="Where each run ended", interactive=False, wrap=True, elem_id="cmp-table")
    inputs, outputs = [who, runs, x, y], [plot, table, status, png]
    show_runs = dict(fn=v.choices, inputs=[who, runs], outputs=runs, **PRIVATE)
    tab.select(**show_runs).then(v.show, inputs, outputs, **PRIVATE)
    refresh.click(**show_runs).then(v.show, inputs, outputs, **PRIVATE)
    gr.on([runs.input, x.input, y.input], v.show, inputs, outputs, trigger_mode="always_last", **PRIVATE)
    return tab
