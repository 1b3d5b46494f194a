"""The 'See inside the model' tab: its layout, then which `Views` method each event calls.

Called by `app.py` inside its `gr.Tabs()`. The tab reads the Train tab's
controls (corpus, tokenizer vocabulary, shape sliders) for the tokenizer and
anatomy views, so `train` names those components. Two timers drive the live
views (samples over training, why the mask); they tick only while their
panel is open, and the other tabs pause them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..insight import MASK_EXPLANATION
from . import frames
from .views import ATTENTION_PROMPT, NEXT_TOKEN_PROMPT, Views

VIEWS_CSS = """  /* projector-sized tables and samples; app.py adds it to the page's CSS */
.tok-compare { width: 100%; border-collapse: collapse; font-size: 17px; }
.tok-compare th, .tok-compare td { border-bottom: 1px solid #e5e7eb; padding: 6px 8px; text-align: right;
                                   vertical-align: top; }
.tok-compare th { white-space: nowrap; }
.tok-compare th:nth-child(-n+2), .tok-compare td:nth-child(-n+2) { text-align: left; }
.tok-compare td:nth-child(2) { width: 62%; }
.tok-compare .tok-text { font-size: 19px; }
.tok-compare .tok-id { font-size: 12px; }
.sample-timeline { max-height: 640px; overflow-y: auto; font-size: 16px; }
.sample-timeline pre { font-size: 15px; background: #f8fafc; padding: 6px; border-radius: 4px; }
#views-tab .prose p, #views-tab .prose li { font-size: 17px; }
#views-tab .matplotlib img { max-width: 100%; height: auto; }
"""

PRIVATE = dict(api_visibility="private")  # the page's own events, not part of the client API
QUIET = dict(show_progress="hidden", concurrency_limit=None, **PRIVATE)


@dataclass
class TrainControls:
    """The Train tab's components the views read."""

    corpus: gr.Component
    upload: gr.Component
    pasted: gr.Component
    bpe_vocab: gr.Component
    vocab: gr.State  # the vocabulary size of the chosen corpus and tokenizer
    preset: gr.Component
    model_type: gr.Component
    architecture: gr.Component
    sliders: list  # n_layer, n_head, n_embd, block_size, dropout, batch_size, lr, max_iters, max_seconds
    n_embd: gr.Component


def _png(elem_id: str, label: str = "⬇ PNG") -> gr.DownloadButton:
    return gr.DownloadButton(label, interactive=False, size="md", scale=0, min_width=40 + 11 * len(label),
                             elem_id=elem_id)


def _refresh(elem_id: str) -> gr.Button:
    return gr.Button("↻", scale=0, min_width=40, elem_id=elem_id)


def build_views_tab(v: Views, browser: gr.BrowserState, train: TrainControls, other_tabs: list[gr.Tab]) -> gr.Tab:
    """Lay out the tab inside the page's gr.Tabs and wire it; selecting one of `other_tabs` pauses its timers."""
    with gr.Tab("4 · See inside the model", id="inside", elem_id="views-tab") as tab:
        with gr.Tabs(elem_id="views-tabs"):
            # --- layout ---------------------------------------------------------------------------
            with gr.Tab("Attention", id="v-attention", elem_id="v-attention") as t_att:
                with gr.Row():
                    att_run = gr.Dropdown(label="Model (a run; one still training shows its current weights)",
                                          scale=5, elem_id="att-run")
                    att_refresh = _refresh("att-refresh")
                with gr.Row():
                    att_prompt = gr.Textbox(ATTENTION_PROMPT, label="Prompt (Shift+Enter to show)", lines=2,
                                            scale=5, elem_id="att-prompt")
                    att_btn = gr.Button("Show attention", variant="primary", scale=1, elem_id="att-btn")
                with gr.Row():
                    att_layer = gr.Slider(0, 1, 0, step=1, label="Layer", elem_id="att-layer")
                    att_head = gr.Slider(0, 1, 0, step=1, label="Head", elem_id="att-head")
                att_status = gr.Markdown(elem_id="att-status")
                with gr.Row():
                    att_heat = gr.Plot(show_label=False, scale=5, elem_id="att-heatmap")
                    with gr.Column(scale=2, min_width=300):
                        att_links = gr.Dataframe(label="Where each token looks most", interactive=False,
                                                 max_height=760, column_widths=["20%", "20%", "38%", "22%"],
                                                 elem_id="att-links")
                        att_heat_png = _png("att-heatmap-png")
                gr.Markdown("### Every layer and head at once")
                att_grid = gr.Plot(show_label=False, elem_id="att-grid")
                att_grid_png = _png("att-grid-png")

            with gr.Tab("Next token", id="v-next", elem_id="v-next") as t_next:
                with gr.Row():
                    nt_run = gr.Dropdown(label="Model", scale=5, elem_id="nt-run")
                    nt_refresh = _refresh("nt-refresh")
                nt_prompt = gr.Textbox(NEXT_TOKEN_PROMPT, label="Prompt (Shift+Enter to redraw)", lines=2,
                                       elem_id="nt-prompt")
                with gr.Row():
                    nt_temperature = gr.Slider(0, 2, 1.0, step=0.05, label="Temperature (0 = greedy)",
                                               elem_id="nt-temperature")
                    nt_top_k = gr.Slider(0, 100, 0, step=1, label="Top-k (0 = off)", elem_id="nt-top-k")
                    nt_top_p = gr.Slider(0.05, 1.0, 1.0, step=0.05, label="Top-p (1 = off)", elem_id="nt-top-p")
                nt_plot = gr.Plot(show_label=False, elem_id="nt-plot")
                with gr.Row(equal_height=True):
                    nt_token = gr.Dropdown(label="Top tokens", scale=3, elem_id="nt-token")
                    nt_append = gr.Button("Append this token", scale=1, elem_id="nt-append")
                    nt_sample = gr.Button("Sample one", variant="primary", scale=1, elem_id="nt-sample")
                    nt_png = _png("nt-png")
                nt_status = gr.Markdown(elem_id="nt-status")

            with gr.Tab("Tokenizers", id="v-tokens", elem_id="v-tokens") as t_tok:
                gr.Markdown("Each tokenizer is built on the corpus chosen in the **Train** tab (the BPE at its "
                            "vocabulary size). A bigger vocabulary cuts text into fewer tokens but costs "
                            "`vocab × n_embd` embedding parameters.")
                with gr.Row():
                    tok_text = gr.Textbox(label="Text (Shift+Enter to compare)", lines=2, scale=5, elem_id="tok-text",
                                          placeholder="Empty: the first lines of the corpus")
                    tok_btn = gr.Button("Compare", variant="primary", scale=1, elem_id="tok-btn")
                tok_status = gr.Markdown(elem_id="tok-status")
                tok_table = gr.HTML(elem_id="tok-table")
                tok_plot = gr.Plot(show_label=False, elem_id="tok-plot")
                tok_png = _png("tok-png")

            with gr.Tab("Anatomy", id="v-anatomy", elem_id="v-anatomy") as t_anat:
                with gr.Row():
                    anat_source = gr.Radio([("The Train tab's settings", "train"), ("A run", "run")], value="train",
                                           label="Which model", scale=2, elem_id="anat-source")
                    anat_run = gr.Dropdown(label="Run", scale=4, visible=False, elem_id="anat-run")
                    anat_refresh = _refresh("anat-refresh")
                anat_status = gr.Markdown(elem_id="anat-status")
                with gr.Row():
                    anat_params = gr.Dataframe(label="Parameters per component", interactive=False, scale=2, wrap=True,
                                               column_widths=["56%", "26%", "18%"], elem_id="anat-params")
                    with gr.Column(scale=3):
                        anat_plot = gr.Plot(show_label=False, elem_id="anat-plot")
                        anat_png = _png("anat-png")
                anat_shapes = gr.Dataframe(label="One forward pass, tensor by tensor", interactive=False, wrap=True,
                                           max_height=900, elem_id="anat-shapes")

            with gr.Tab("Watch it learn", id="v-watch", elem_id="v-watch") as t_watch:
                with gr.Row():
                    watch_run = gr.Dropdown(label="Run (yours while it trains, or any you may see)", scale=5,
                                            elem_id="watch-run")
                    watch_refresh = _refresh("watch-refresh")
                    watch_csv = _png("watch-csv", "⬇ metrics CSV")
                watch_status = gr.Markdown(elem_id="watch-status")
                with gr.Row():
                    watch_loss = gr.LinePlot(None, x="step", y="loss", color="series", color_map=frames.LOSS_COLOURS,
                                             colors_in_legend=list(frames.LOSS_SERIES), height=460,
                                             title="Loss (nats per token)", buttons=["export", "fullscreen"],
                                             elem_id="watch-loss")
                    watch_timeline = gr.HTML(label="What it writes at each evaluation", elem_id="watch-timeline")

            with gr.Tab("Compare runs", id="v-compare", elem_id="v-compare") as t_cmp:
                with gr.Row():
                    cmp_runs = gr.Dropdown(multiselect=True, label="Runs to compare", scale=5, elem_id="cmp-runs")
                    cmp_refresh = _refresh("cmp-refresh")
                with gr.Row():
                    cmp_x = gr.Radio([("Training step", "step"), ("Wall time (s)", "elapsed_s")], value="step",
                                     label="x axis", elem_id="cmp-x")
                    cmp_y = gr.Radio([("Validation bits per character", "val_bpc"), ("Validation loss", "val_loss"),
                                      ("Training loss", "train_loss")], value="val_bpc", label="y axis",
                                     elem_id="cmp-y")
                cmp_status = gr.Markdown(elem_id="cmp-status")
                cmp_plot = gr.Plot(show_label=False, elem_id="cmp-plot")
                cmp_png = _png("cmp-png")
                cmp_table = gr.Dataframe(label="Where each run ended", interactive=False, wrap=True,
                                         elem_id="cmp-table")

            with gr.Tab("Why the mask", id="v-mask", elem_id="v-mask") as t_mask:
                with gr.Row():
                    mask_btn = gr.Button(f"▶ Train with and without the mask ({v.mask_steps} steps each)",
                                         variant="primary", scale=4, elem_id="mask-btn")
                    mask_png = _png("mask-png")
                mask_status = gr.Markdown(elem_id="mask-status")
                with gr.Row():
                    mask_plot = gr.Plot(show_label=False, scale=3, elem_id="mask-plot")
                    gr.Markdown(MASK_EXPLANATION, elem_id="mask-explanation")
                with gr.Row():
                    mask_masked = gr.Textbox(label="With the mask: what it writes", lines=7, interactive=False,
                                             elem_id="mask-sample-masked")
                    mask_unmasked = gr.Textbox(label="Without the mask: what it writes", lines=7, interactive=False,
                                               elem_id="mask-sample-unmasked")

        watch_timer, mask_timer = gr.Timer(2.0, active=False), gr.Timer(1.5, active=False)
        watch_sig, mask_sig = gr.State(None), gr.State(None)
        open_view = gr.State("v-attention")  # the sub-tab on show, so coming back to this tab resumes its timer

    # --- wiring ---------------------------------------------------------------------------------------
    timers = [watch_timer, mask_timer]
    live = {"v-watch": watch_timer, "v-mask": mask_timer}

    def timers_for(view: str | None):
        """Timer updates with only `view`'s timer running (None: all paused)."""
        return tuple(gr.Timer(active=live.get(view) is t) for t in timers)

    att_in = [browser, att_run, att_prompt, att_layer, att_head]
    att_out = [att_heat, att_grid, att_layer, att_head, att_links, att_status, att_heat_png, att_grid_png]
    show_att_runs = dict(fn=v.model_runs, inputs=[browser, att_run], outputs=att_run, **PRIVATE)
    show_nt_runs = dict(fn=v.model_runs, inputs=[browser, nt_run], outputs=nt_run, **PRIVATE)
    for event in (att_btn.click, att_prompt.submit, att_run.change):
        event(v.attention, att_in, att_out, **PRIVATE)
    for slider in (att_layer, att_head):
        slider.release(v.attention_head, att_in, [att_heat, att_links, att_status, att_heat_png], **PRIVATE)
    att_refresh.click(**show_att_runs)

    nt_knobs = [nt_temperature, nt_top_k, nt_top_p]
    nt_out = [nt_plot, nt_token, nt_status, nt_png]
    gr.on([nt_run.change, nt_prompt.submit, *(k.change for k in nt_knobs)], v.next_token,
          [browser, nt_run, nt_prompt, *nt_knobs], nt_out, trigger_mode="always_last", **PRIVATE)
    nt_append.click(v.next_append, [browser, nt_run, nt_prompt, nt_token, *nt_knobs], [nt_prompt, *nt_out], **PRIVATE)
    nt_sample.click(v.next_sample, [browser, nt_run, nt_prompt, *nt_knobs], [nt_prompt, *nt_out], **PRIVATE)
    nt_refresh.click(**show_nt_runs)

    show_tokens = dict(fn=v.tokenizers, inputs=[tok_text, train.corpus, train.upload, train.pasted, train.bpe_vocab,
                                                train.n_embd], outputs=[tok_table, tok_plot, tok_status, tok_png],
                       **PRIVATE)
    for event in (t_tok.select, tok_btn.click, tok_text.submit):
        event(**show_tokens)

    show_anatomy = dict(fn=v.anatomy, inputs=[browser, anat_source, anat_run, train.vocab, train.preset,
                                              train.model_type, train.architecture, *train.sliders],
                        outputs=[anat_params, anat_plot, anat_shapes, anat_status, anat_png], **PRIVATE)
    show_anat_runs = dict(fn=v.model_runs, inputs=[browser, anat_run], outputs=anat_run, **PRIVATE)
    t_anat.select(**show_anat_runs).then(**show_anatomy)
    anat_source.change(lambda s: gr.update(visible=s == "run"), anat_source, anat_run, **PRIVATE).then(**show_anatomy)
    anat_run.change(**show_anatomy)
    anat_refresh.click(**show_anat_runs).then(**show_anatomy)

    watch_in, watch_out = [browser, watch_run, watch_sig], [watch_loss, watch_timeline, watch_status, watch_csv,
                                                            watch_sig]
    show_watch_runs = dict(fn=v.metric_runs, inputs=[browser, watch_run], outputs=watch_run, **PRIVATE)
    t_watch.select(**show_watch_runs).then(v.watch, watch_in, watch_out, **PRIVATE)
    watch_refresh.click(**show_watch_runs)
    watch_run.change(lambda: None, None, watch_sig, **PRIVATE).then(v.watch, watch_in, watch_out, **PRIVATE)
    watch_timer.tick(v.watch, watch_in, watch_out, **QUIET)

    cmp_in, cmp_out = [browser, cmp_runs, cmp_x, cmp_y], [cmp_plot, cmp_table, cmp_status, cmp_png]
    show_cmp_runs = dict(fn=v.compare_runs, inputs=[browser, cmp_runs], outputs=cmp_runs, **PRIVATE)
    t_cmp.select(**show_cmp_runs).then(v.compare, cmp_in, cmp_out, **PRIVATE)
    cmp_refresh.click(**show_cmp_runs).then(v.compare, cmp_in, cmp_out, **PRIVATE)
    gr.on([cmp_runs.input, cmp_x.input, cmp_y.input], v.compare, cmp_in, cmp_out, trigger_mode="always_last",
          **PRIVATE)

    mask_out = [mask_plot, mask_masked, mask_unmasked, mask_status, mask_png, mask_timer, mask_sig]
    t_mask.select(v.mask, [browser, mask_sig], mask_out, **PRIVATE)
    mask_btn.click(v.mask_start, browser, [mask_status, mask_timer], **PRIVATE)
    mask_timer.tick(v.mask, [browser, mask_sig], mask_out, **QUIET)

    # the live views tick only while on show
    subs = {"v-attention": t_att, "v-next": t_next, "v-tokens": t_tok, "v-anatomy": t_anat, "v-watch": t_watch,
            "v-compare": t_cmp, "v-mask": t_mask}
    for view, sub in subs.items():
        sub.select(lambda view=view: (view, *timers_for(view)), None, [open_view, *timers], **PRIVATE)
    for other in other_tabs:
        other.select(lambda: timers_for(None), None, timers, **PRIVATE)
    tab.select(timers_for, open_view, timers, **PRIVATE).then(**show_att_runs).then(**show_nt_runs)
    t_att.select(**show_att_runs)
    t_next.select(**show_nt_runs)
    return tab
