"""Build a GPT in your browser: pick a text and a tokenizer, train, watch the loss fall, sample.

    python app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME, GRADIO_SERVER_PORT to change)

The same file runs as a Hugging Face Space. It is wiring only: the page,
top to bottom, then which handler each event calls. Every decision lives in
`gpt/`: the job manager in `gpt.runs`, the handlers in `gpt.ui.handlers`,
the client API in `gpt.ui.api`, the 'See inside the model' tab in
`gpt.ui.views_layout` (its handlers in `gpt.ui.views`). Environment variables: see `gpt.ui.runtime`
(limits) and `gpt.checkpoint` (GPT_CHECKPOINT_DIR, the runs folder).
"""

from __future__ import annotations

import os

import gradio as gr

from gpt.optim import warm_up_in_background
from gpt.presets import DEFAULT_PRESET, PRESETS
from gpt.jobs import JobManager
from gpt.ui.api import Api
from gpt.corpus import (BPE_VOCAB_DEFAULT, BPE_VOCAB_MAX, BPE_VOCAB_MIN, CORPUS_CHOICES,
                           TOKENIZER_CHOICES)
from gpt.ui.handlers import Handlers, preset_values
from gpt.ui.library import TABLE_HEADERS
from gpt.ui.frames import LOSS_COLOURS, LOSS_SERIES, PROGRESS_CSS, progress_html
from gpt.device import leave_a_core_for_the_page
from gpt.ui.runtime import browser_secret, describe_runtime
from gpt.ui.tokens import TOKENS_CSS
from gpt.ui.views import Views
from gpt.ui.views_layout import VIEWS_CSS, TrainControls, build_views_tab

CSS = TOKENS_CSS + PROGRESS_CSS + VIEWS_CSS + """
#start-btn { font-size: 1.25rem; min-height: 3.2rem; }
.msg-error { color: #b91c1c; font-weight: 600; }
"""
INTRO = """# Build a GPT
Train a small GPT from scratch on a text, watch it learn, then make it write.
**Start training** works as it is (Tiny Shakespeare, one character per token); the **Generate** tab
already holds a trained model, and your run joins it as soon as it saves its first checkpoint."""


def build_demo(manager: JobManager | None = None) -> gr.Blocks:
    leave_a_core_for_the_page()
    warm_up_in_background()  # PyTorch's first optimizer costs ~1 s of imports: not on the first Start
    manager = manager or JobManager()
    h, lim = Handlers(manager), manager.limits
    v = preset_values(DEFAULT_PRESET)

    with gr.Blocks(title="Build a GPT") as demo:
        browser = gr.BrowserState("", storage_key="gpt-browser-id", secret=browser_secret(manager.root))
        vocab, last_poll = gr.State(65), gr.State(None)
        gr.Markdown(INTRO)
        gr.Markdown(describe_runtime(lim), elem_id="runtime")

        with gr.Tabs():
            with gr.Tab("1 · Train", id="train") as train_tab:
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("### Text and tokenizer")
                        corpus = gr.Dropdown(CORPUS_CHOICES, value="shakespeare", label="Corpus", elem_id="corpus")
                        upload = gr.File(label="Your .txt file (UTF-8)", file_types=[".txt"], type="filepath",
                                         visible=False, elem_id="corpus-upload")
                        pasted = gr.Textbox(label="Your text", lines=6, visible=False, elem_id="corpus-paste",
                                            placeholder="Paste a few thousand characters or more, then click outside the box.")
                        tokenizer = gr.Radio(TOKENIZER_CHOICES, value="char", label="Tokenizer", elem_id="tokenizer")
                        vocab_size = gr.Slider(BPE_VOCAB_MIN, BPE_VOCAB_MAX, value=BPE_VOCAB_DEFAULT, step=64,
                                               label="BPE vocabulary size", visible=False, elem_id="bpe-vocab")
                        stats = gr.Markdown(elem_id="corpus-stats")
                        preview_text = gr.Textbox(label="How the tokenizer cuts a sentence (type your own, press Enter)",
                                                  placeholder="Empty: the first lines of the corpus", elem_id="preview-text")
                        preview = gr.HTML(elem_id="token-preview")
                    with gr.Column():
                        gr.Markdown("### Model and training")
                        preset = gr.Dropdown([(f"{k}: {p['about'].split(':')[0]}", k) for k, p in PRESETS.items()],
                                             value=DEFAULT_PRESET, label="Preset", elem_id="preset")
                        with gr.Row():
                            model_type = gr.Radio([("GPT", "gpt"), ("Bigram baseline", "bigram")], value="gpt",
                                                  label="Model", elem_id="model-type")
                            architecture = gr.Radio([("Classic (the lecture's)", "classic"),
                                                     ("Modern (rotary, QK-norm, ReLU²)", "modern")],
                                                    value=v["architecture"], label="Architecture", elem_id="architecture")
                        with gr.Accordion("Shape and training settings", open=False, elem_id="settings"):
                            with gr.Row():
                                n_layer = gr.Slider(1, 12, v["n_layer"], step=1, label="Layers", elem_id="n-layer")
                                n_head = gr.Slider(1, 12, v["n_head"], step=1, label="Heads", elem_id="n-head")
                                n_embd = gr.Slider(16, 768, v["n_embd"], step=16, label="Width (n_embd)", elem_id="n-embd")
                            with gr.Row():
                                block_size = gr.Slider(8, 512, v["block_size"], step=8, label="Context (block size)",
                                                       elem_id="block-size")
                                dropout = gr.Slider(0.0, 0.5, v["dropout"], step=0.05, label="Dropout", elem_id="dropout")
                                batch_size = gr.Slider(1, 128, v["batch_size"], step=1, label="Batch size",
                                                       elem_id="batch-size")
                            with gr.Row():
                                lr = gr.Number(v["lr"], label="Learning rate", minimum=1e-5, maximum=1.0, elem_id="lr")
                                max_iters = gr.Slider(10, lim.max_iters, v["max_iters"], step=10, label="Iterations",
                                                      elem_id="max-iters")
                                max_seconds = gr.Slider(0, 1800, v["max_seconds"], step=5, label="Max seconds (0 = none)",
                                                        elem_id="max-seconds")
                        estimate = gr.Markdown(elem_id="estimate")
                        share = gr.Checkbox(False, label="Share this run with everyone on this server", elem_id="share")
                with gr.Row():
                    start = gr.Button("▶ Start training", variant="primary", size="lg", scale=4, elem_id="start-btn")
                    stop = gr.Button("■ Stop", variant="stop", interactive=False, scale=1, elem_id="stop-btn")
                    resume = gr.Button("↻ Resume", interactive=False, scale=1, elem_id="resume-btn")
                train_msg = gr.Markdown(elem_id="train-msg")
                progress = gr.HTML(progress_html(None), elem_id="progress")
                with gr.Row():
                    loss_plot = gr.LinePlot(None, x="step", y="loss", color="series", color_map=LOSS_COLOURS,
                                            colors_in_legend=list(LOSS_SERIES), height=340,
                                            title="Loss (nats per token)", elem_id="loss-plot")
                    with gr.Column():
                        compare_plot = gr.LinePlot(None, x="step", y="val_bpc", color="run", height=260,
                                                   title="Compare runs: validation bits per character",
                                                   elem_id="compare-plot")
                        with gr.Row():
                            compare_runs = gr.Dropdown(multiselect=True, label="Runs to compare", scale=5,
                                                       elem_id="compare-runs")
                            compare_refresh = gr.Button("↻", scale=0, min_width=40, elem_id="compare-refresh")
                latest_sample = gr.Textbox(label="What the model writes at its latest evaluation", lines=4,
                                           interactive=False, elem_id="latest-sample")

            with gr.Tab("2 · Generate", id="generate") as generate_tab:
                with gr.Row():
                    gen_run = gr.Dropdown(label="Model (a run; one still training samples its current weights)",
                                          scale=5, elem_id="gen-run")
                    gen_refresh = gr.Button("↻", scale=0, min_width=40, elem_id="gen-refresh")
                prompt = gr.Textbox(label="Prompt", placeholder="Empty: start from a newline", elem_id="gen-prompt")
                with gr.Row():
                    temperature = gr.Slider(0, 2, 0.8, step=0.05, label="Temperature (0 = greedy)",
                                            elem_id="gen-temperature")
                    top_k = gr.Slider(0, 200, 0, step=1, label="Top-k (0 = off)", elem_id="gen-top-k")
                    top_p = gr.Slider(0.05, 1.0, 1.0, step=0.05, label="Top-p (1 = off)", elem_id="gen-top-p")
                with gr.Row():
                    max_new = gr.Slider(1, lim.max_new_tokens, min(300, lim.max_new_tokens), step=1,
                                        label="Max new tokens", elem_id="gen-max-new")
                    seed = gr.Number(-1, precision=0, label="Seed (-1 = random)", elem_id="gen-seed")
                with gr.Row():
                    gen_btn = gr.Button("Generate", variant="primary", scale=4, elem_id="gen-btn")
                    gen_stop = gr.Button("■ Stop", variant="stop", scale=1, elem_id="gen-stop")
                gen_status = gr.Markdown(elem_id="gen-status")
                output = gr.Textbox(label="Text", lines=14, interactive=False, elem_id="gen-output")

            with gr.Tab("3 · Checkpoints", id="checkpoints") as checkpoints_tab:
                runs_table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, elem_id="runs-table")
                with gr.Row():
                    ck_run = gr.Dropdown(label="Run", scale=5, elem_id="ckpt-run")
                    ck_refresh = gr.Button("↻", scale=0, min_width=40, elem_id="ckpt-refresh")
                with gr.Row():
                    download = gr.DownloadButton("⬇ Download .safetensors", interactive=False, elem_id="ckpt-download")
                    ck_resume = gr.Button("↻ Resume training", elem_id="ckpt-resume")
                    ck_delete = gr.Button("Delete", variant="stop", elem_id="ckpt-delete")
                ck_upload = gr.File(label="Upload a checkpoint (.safetensors only; pickles are refused)",
                                    file_types=[".safetensors"], type="filepath", elem_id="ckpt-upload")
                ck_msg = gr.Markdown(elem_id="ckpt-msg")

            build_views_tab(Views(manager, h.models), browser,
                            TrainControls(corpus, upload, pasted, vocab_size, vocab, preset, model_type, architecture,
                                          [n_layer, n_head, n_embd, block_size, dropout, batch_size, lr, max_iters,
                                           max_seconds], n_embd),
                            other_tabs=[train_tab, generate_tab, checkpoints_tab])

        timer = gr.Timer(1.0)

        # --- wiring -------------------------------------------------------------------------------
        private = dict(api_visibility="private")  # the page's own events; clients use the named API below
        corpus_in = [corpus, upload, pasted, tokenizer, vocab_size, preview_text]
        sliders = [n_layer, n_head, n_embd, block_size, dropout, batch_size, lr, max_iters, max_seconds]
        show_corpus = dict(fn=h.describe_corpus, inputs=corpus_in, outputs=[stats, preview, vocab], **private)
        show_estimate = dict(fn=h.estimate, inputs=[vocab, preset, model_type, architecture, *sliders],
                             outputs=estimate, **private)
        show_compare_choices = dict(fn=h.compare_choices, inputs=[browser, compare_runs], outputs=compare_runs, **private)
        show_sample_runs = dict(fn=h.sample_runs, inputs=[browser, gen_run], outputs=gen_run, **private)
        show_runs_table = dict(fn=h.runs_table, inputs=[browser, ck_run], outputs=[runs_table, ck_run], **private)

        (demo.load(h.browser_id, browser, browser, **private)
         .then(**show_corpus).then(**show_estimate).then(**show_sample_runs).then(**show_compare_choices))

        corpus.change(h.corpus_inputs, corpus, [upload, pasted], **private).then(**show_corpus).then(**show_estimate)
        tokenizer.change(h.vocab_input, tokenizer, vocab_size, **private).then(**show_corpus).then(**show_estimate)
        for event in (vocab_size.release, upload.upload, pasted.blur, preview_text.submit):
            event(**show_corpus).then(**show_estimate)
        preset.input(h.apply_preset, preset, [architecture, *sliders], **private)
        gr.on([c.change for c in (preset, model_type, architecture, *sliders)], trigger_mode="always_last",
              **show_estimate)

        poll_in = [browser, last_poll, compare_runs]
        poll_out = [progress, loss_plot, latest_sample, stop, resume, compare_plot, last_poll]
        start.click(h.start, [browser, *corpus_in[:5], preset, model_type, architecture, *sliders, share], train_msg,
                    **private).then(h.first_point, poll_in, poll_out, show_progress="hidden", **private).then(
                    **show_compare_choices)
        stop.click(h.stop, browser, train_msg, **private)
        resume.click(h.resume, [browser, max_iters], train_msg, **private)
        timer.tick(h.poll, poll_in, poll_out, show_progress="hidden", concurrency_limit=None, **private)
        compare_refresh.click(**show_compare_choices)
        compare_runs.change(h.clear_plot, None, compare_plot, **private).then(
            h.compare, [browser, compare_runs], compare_plot, **private)

        generate_tab.select(**show_sample_runs)
        gen_refresh.click(**show_sample_runs)
        gen_in = [browser, gen_run, prompt, max_new, temperature, top_k, top_p, seed]
        gen_click = gen_btn.click(h.generate, gen_in, [output, gen_status], concurrency_limit=4,
                                  api_name="page_generate", **private)
        gen_submit = prompt.submit(h.generate, gen_in, [output, gen_status], concurrency_limit=4,
                                   api_name="page_generate_submit", **private)
        gen_stop.click(h.stop_generation, browser, gen_status, cancels=[gen_click, gen_submit], **private)

        checkpoints_tab.select(**show_runs_table)
        ck_refresh.click(**show_runs_table)
        ck_run.change(h.prepare_download, [browser, ck_run], download, **private)
        ck_delete.click(h.delete, [browser, ck_run], [ck_msg, runs_table, ck_run], **private)
        ck_resume.click(h.resume, [browser, max_iters, ck_run], ck_msg, **private)
        ck_upload.upload(h.upload, [browser, ck_upload], [ck_msg, runs_table, ck_run], **private)

        for name, fn in Api(h).endpoints().items():
            gr.api(fn, api_name=name, concurrency_limit=None if name != "generate" else 4)
    demo.manager = manager  # tests and scripts reach the job manager through the demo
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Start the server with the page's styling and limits; kwargs override (tests pass a port)."""
    options = dict(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        css=CSS,
        max_file_size=f"{demo.manager.limits.max_upload_mb}mb",
    )
    options.update(kwargs)
    return demo.queue(default_concurrency_limit=2).launch(**options)


if __name__ == "__main__":
    launch(build_demo())
