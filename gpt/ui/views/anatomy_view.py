"""Anatomy: parameters per component, and the shape of every tensor in one real forward pass.

For the Train tab's settings (before anything is trained) or for a run.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ... import insight
from ... import plots as figures
from ...errors import CheckpointError
from ...model import GPTConfig
from ..figure_downloads import NO_FILE, download, export, png_button
from ..messages import problem
from ..page import PRIVATE
from ...jobs import RunRequest
from .base import View, refresh_button

PARAM_HEADERS = ["component", "parameters", "share"]
SHAPE_HEADERS = ["where", "shape", "as symbols", "what it is"]


class AnatomyView(View):
    def show(self, owner, source, run, vocab, preset, model_type, architecture, *sliders):
        """(parameter table, parameter chart, shape table, status, PNG) for the Train tab's settings or a run."""
        try:
            if source == "run":
                config, what = self._run_config(owner, run), f"Run **{run}**"
            else:
                req = RunRequest.from_form("char", None, preset, model_type, architecture, *sliders)
                config, what = req.configs(int(vocab or 65), self.m.device)[0], "The Train tab's settings"
            params = insight.parameter_rows(config)
            trace = insight.shape_trace(config)
        except Exception as err:  # noqa: BLE001
            return None, None, None, problem(err, toast=False), dict(NO_FILE)
        fig, png = export(f"parameters-{run if source == 'run' else 'settings'}", figures.parameters_figure, config)
        table = pd.DataFrame([[name, f"{n:,}", f"{share:g}%"] for name, n, share in params], columns=PARAM_HEADERS)
        shapes = pd.DataFrame([[r["where"], "(" + ", ".join(map(str, r["shape"])) + ")", r["symbols"], r["what"]]
                               for r in trace], columns=SHAPE_HEADERS)
        B, T = trace[0]["shape"]
        shape = ("a bigram table" if config.model_type == "bigram" else
                 f"{config.n_layer} layers × {config.n_head} heads × {config.n_embd} wide")
        status = (f"{what}: {shape}, context {config.block_size}, vocabulary {config.vocab_size:,}. "
                  f"Shapes from a real forward pass of B = {B} windows of T = {T} tokens (on the meta device: "
                  "no memory, no arithmetic).")
        return table, fig, shapes, status, download(png)

    def _run_config(self, owner, run) -> GPTConfig:
        if not run or not self.m.runs.visible(owner, run):
            raise CheckpointError("Choose a run." if not run else f"There is no run named {run!r}.")
        trainer = self.m.runs.live_trainer(run)
        if trainer is not None:
            return trainer.model_config
        try:
            meta = insight.load_run(self.m.runs.run_path(run)).meta
        except CheckpointError:
            meta = {}
        if not meta.get("model"):
            raise CheckpointError(f"Run {run!r} has no model configuration yet; it is saved at its first evaluation.")
        return GPTConfig.from_dict(meta["model"])


def build_anatomy_view(v: AnatomyView, who, train) -> gr.Tab:
    with gr.Tab("Anatomy", id="v-anatomy", elem_id="v-anatomy") as tab:
        with gr.Row():
            source = gr.Radio([("The Train tab's settings", "train"), ("A run", "run")], value="train",
                              label="Which model", scale=2, elem_id="anat-source")
            run = gr.Dropdown(label="Run", scale=4, visible=False, elem_id="anat-run")
            refresh = refresh_button("anat-refresh")
        status = gr.Markdown(elem_id="anat-status")
        with gr.Row():
            params = gr.Dataframe(label="Parameters per component", interactive=False, scale=2, wrap=True,
                                  column_widths=["56%", "26%", "18%"], elem_id="anat-params")
            with gr.Column(scale=3):
                plot = gr.Plot(show_label=False, elem_id="anat-plot")
                png = png_button("anat-png")
        shapes = gr.Dataframe(label="One forward pass, tensor by tensor", interactive=False, wrap=True,
                              max_height=900, elem_id="anat-shapes")
    show = dict(fn=v.show, inputs=[who, source, run, train.vocab, train.preset, train.model_type, train.architecture,
                                   *train.sliders], outputs=[params, plot, shapes, status, png], **PRIVATE)
    show_runs = dict(fn=v.model_runs, inputs=[who, run], outputs=run, **PRIVATE)
    tab.select(**show_runs).then(**show)
    source.change(lambda s: gr.update(visible=s == "run"), source, run, **PRIVATE).then(**show)
    run.change(**show)
    refresh.click(**show_runs).then(**show)
    return tab
