"""Attention: one head's heatmap and every layer and head at once, for any prompt.

The weights come from `gpt.insight.attention_maps`; the layer and head
pickers are sized to the model that is open.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ... import insight
from ... import plots as figures
from ..figure_downloads import NO_FILE, download, export, png_button
from ..messages import problem
from ..page import PRIVATE
from .base import View, refresh_button, slider_update

ATTENTION_PROMPT = "First Citizen:"  # up to 16 tokens keep the heatmap's labels large
LINK_HEADERS = ["pos", "token", "looks most at", "weight"]


class AttentionView(View):
    def show(self, owner, run, prompt, layer=0, head=0):
        """(heatmap, all heads, layer slider, head slider, strongest links, status, heatmap PNG, grid PNG)."""
        try:
            loaded = self._open(owner, run)
            maps = insight.attention_maps(loaded.model, loaded.tokenizer, prompt or "")
        except Exception as err:  # noqa: BLE001 - a bigram run, a character never seen: a sentence
            return None, None, gr.skip(), gr.skip(), None, problem(err, toast=False), dict(NO_FILE), dict(NO_FILE)
        n_layer, n_head = maps.weights.shape[:2]
        layer, head = min(int(layer or 0), n_layer - 1), min(int(head or 0), n_head - 1)
        heat, links, status, heat_png = self._one_head(run, loaded, maps, layer, head)
        grid, grid_png = export(f"attention-{run}-all-heads", figures.attention_grid_figure, maps)
        return (heat, grid, slider_update(n_layer, layer, "Layer"), slider_update(n_head, head, "Head"), links, status,
                download(heat_png), download(grid_png))

    def head(self, owner, run, prompt, layer=0, head=0):
        """The heatmap of another layer or head: (heatmap, strongest links, status, heatmap PNG)."""
        try:
            loaded = self._open(owner, run)
            maps = insight.attention_maps(loaded.model, loaded.tokenizer, prompt or "")
            maps.head(int(layer or 0), int(head or 0))  # a sentence when out of range
        except Exception as err:  # noqa: BLE001
            return None, None, problem(err, toast=False), dict(NO_FILE)
        heat, links, status, heat_png = self._one_head(run, loaded, maps, int(layer or 0), int(head or 0))
        return heat, links, status, download(heat_png)

    def _one_head(self, run, loaded, maps: insight.AttentionMaps, layer: int, head: int):
        n_layer, n_head, T, _ = maps.weights.shape
        heat, png = export(f"attention-{run}-layer{layer}-head{head}", figures.attention_figure, maps, layer, head)
        links = pd.DataFrame(insight.strongest_links(maps, layer, head), columns=LINK_HEADERS)
        mask = "the grey triangle is the future the mask hides" if maps.causal else "no causal mask: it sees the future"
        status = (f"{self._at(run, loaded)} · {T} tokens · layer {layer} of 0..{n_layer - 1}, head {head} of "
                  f"0..{n_head - 1} · each row sums to 1; {mask}.")
        return heat, links, status, png


def build_attention_view(v: AttentionView, who) -> tuple[gr.Tab, dict]:
    """The sub-tab and its wiring; returns (tab, the event that refreshes its run picker)."""
    with gr.Tab("Attention", id="v-attention", elem_id="v-attention") as tab:
        with gr.Row():
            run = gr.Dropdown(label="Model (a run; one still training shows its current weights)", scale=5,
                              elem_id="att-run")
            refresh = refresh_button("att-refresh")
        with gr.Row():
            prompt = gr.Textbox(ATTENTION_PROMPT, label="Prompt (Shift+Enter to show)", lines=2, scale=5,
                                elem_id="att-prompt")
            btn = gr.Button("Show attention", variant="primary", scale=1, elem_id="att-btn")
        with gr.Row():
            layer = gr.Slider(0, 1, 0, step=1, label="Layer", elem_id="att-layer")
            head = gr.Slider(0, 1, 0, step=1, label="Head", elem_id="att-head")
        status = gr.Markdown(elem_id="att-status")
        with gr.Row():
            heat = gr.Plot(show_label=False, scale=5, elem_id="att-heatmap")
            with gr.Column(scale=2, min_width=300):
                links = gr.Dataframe(label="Where each token looks most", interactive=False, max_height=760,
                                     column_widths=["20%", "20%", "38%", "22%"], elem_id="att-links")
                heat_png = png_button("att-heatmap-png")
        gr.Markdown("### Every layer and head at once")
        grid = gr.Plot(show_label=False, elem_id="att-grid")
        grid_png = png_button("att-grid-png")

    inputs = [who, run, prompt, layer, head]
    for event in (btn.click, prompt.submit, run.change):
        event(v.show, inputs, [heat, grid, layer, head, links, status, heat_png, grid_png], **PRIVATE)
    # every way a person moves a picker redraws: a drag, a click on the track, the arrow keys, a typed number
    # (`release` alone missed the last three); only the newest position is drawn
    gr.on([layer.input, head.input], v.head, inputs, [heat, links, status, heat_png], trigger_mode="always_last",
          **PRIVATE)
    show_runs = dict(fn=v.model_runs, inputs=[who, run], outputs=run, **PRIVATE)
    refresh.click(**show_runs)
    tab.select(**show_runs)
    return tab, show_runs
