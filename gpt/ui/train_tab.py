"""The Train tab: pick a text and a tokenizer, size the model, start, and watch the loss fall.

`TrainHandlers` holds what each event computes (component values in, updates
out; testable without a browser); `build_train_tab` lays the tab out and
points each event at one handler. The run itself is the run service's
(`gpt.jobs`): Start only asks, and a refresh or a second tab sees the same
run, because the timer reads it from the server every second.
"""

from __future__ import annotations

import time

import gradio as gr

from .. import corpus as corpora
from .. import estimate as est
from ..corpus import BPE_VOCAB_DEFAULT, BPE_VOCAB_MAX, BPE_VOCAB_MIN, CORPUS_CHOICES, TOKENIZER_CHOICES
from ..errors import GPTError
from ..jobs import JobManager, RunRequest
from ..presets import DEFAULT_PRESET, PRESETS, preset_tokenizer
from ..train.config import configs_from
from . import frames, paste, slice_timer
from .addresses import client_address
from .messages import problem, say
from .page import PRIVATE, QUIET, Page, TrainControls, unchanged
from .pickers import pick_runs, with_metrics
from .token_html import preview_html
from .uploads import page_corpus

LOSS_UNIT = ("**The loss is in nats per token**: the mean of −ln(the probability the model gave the true next token); "
             "ln(vocabulary size) is pure guessing, 0 is certainty. A token is a different amount of text in each "
             "tokenizer, so runs are compared in **bits per character** (the progress line, the comparison plot): "
             "the same loss ÷ ln 2 ÷ characters per token.")
MODERN = ("**Modern** (the default) is the lecture's GPT with rotary positions, QK-norm and ReLU², no biases and an "
          "untied output layer (tied to the embedding in ten-minutes' small shape), and its presets train with Muon instead of AdamW. **Classic** is the lecture's own model.")
TO_LESSON = "() => document.getElementById('lesson-tab-button')?.click()"  # a real click: the tab's select event runs
SLIDERS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "batch_size", "lr", "max_iters", "max_seconds")


def preset_values(name: str, device: str = "cpu") -> dict:
    """The slider values a preset stands for (0 seconds means no time limit), its shape the one it takes on
    this machine (`ten-minutes` fits its shape to the machine's speed: `gpt.estimate.fitted_shape`)."""
    model_cfg, train_cfg = configs_from(name, preset_tokenizer(name)[1] or 65, {}, {"device": device})
    model, train = model_cfg.to_dict(), PRESETS[name]["train"] | {"batch_size": train_cfg.batch_size}
    return {
        "architecture": "modern" if model.get("pos_emb") == "rope" else "classic",
        "n_layer": model["n_layer"], "n_head": model["n_head"], "n_embd": model["n_embd"],
        "block_size": model["block_size"], "dropout": model.get("dropout", 0.0),
        "batch_size": train["batch_size"], "lr": train["lr"], "max_iters": train["max_iters"],
        "max_seconds": train.get("max_seconds") or 0,
    }


def fitted_note(name: str, model_cfg, device: str) -> str:
    """Why a preset that fits its shape to the machine shows a smaller one than its first (`ten-minutes`)."""
    shapes = PRESETS.get(name, {}).get("shapes")
    if not shapes:
        return ""
    shape = ("n_layer", "n_head", "n_embd")
    taken, first = [getattr(model_cfg, k) for k in shape], shapes[0]
    fitted = preset_values(name, device)
    if taken == [first[k] for k in shape] or taken != [fitted[k] for k in shape]:
        return ""  # the preset's own first shape, or one set by hand: nothing to explain
    return (f" · {name} took {model_cfg.n_layer} x {model_cfg.n_embd} for this machine: {first['n_layer']} x "
            f"{first['n_embd']} would read too little text in its time here")


class TrainHandlers:
    def __init__(self, manager: JobManager):
        self.m = manager

    # --- 1. data and tokenizer ----------------------------------------------------------------
    @staticmethod
    def corpus_inputs(choice: str):
        # the file box is "hidden", not gone, when not chosen: see ChatHandlers.task_inputs
        return gr.update(visible=True if choice == "upload" else "hidden"), gr.update(visible=choice == "paste")

    @staticmethod
    def vocab_input(kind: str):
        return gr.update(visible=kind == "bpe")

    def corpus(self, choice, upload, pasted) -> corpora.Corpus:
        return page_corpus(choice, upload, pasted, self.m.limits.max_upload_bytes)

    def describe_corpus(self, choice, upload, pasted, kind, vocab_size, preview_text):
        """Statistics, the coloured preview, and the vocabulary size the estimate needs.

        A problem is said once, here (no toast: this line is where the eye is), and goes when the
        choice changes; an empty paste or upload box is a hint, not an error, until something is in it."""
        if (choice == "paste" and not pasted) or (choice == "upload" and not upload):
            what = "Paste a text" if choice == "paste" else "Choose a .txt file"
            return f"{what} above: a few thousand characters or more.", "", gr.skip()
        try:
            corpus = self.corpus(choice, upload, pasted)
            ds = corpora.dataset(corpus, kind, vocab_size)
        except Exception as err:  # noqa: BLE001 - the page shows the sentence
            return problem(err, toast=False), "", gr.skip()
        sentence = preview_text or corpora.sample_sentence(corpus.text)
        return corpora.stats_markdown(ds), preview_html(ds.tokenizer, sentence), ds.tokenizer.vocab_size

    # --- 2. model and training settings ---------------------------------------------------------
    @staticmethod
    def tokenizer_for_preset(name: str):
        """The tokenizer a preset was tuned with (two-minutes: a BPE of 512), set on the page with it."""
        kind, vocab = preset_tokenizer(name)
        return kind, gr.update(value=vocab or BPE_VOCAB_DEFAULT, visible=kind == "bpe")

    def apply_preset(self, name: str):
        v = preset_values(name, self.m.device)
        return tuple(v[k] for k in ("architecture", *SLIDERS))

    def estimate(self, vocab_size, preset, model_type, architecture, *sliders):
        try:
            req = RunRequest.from_form("char", None, preset, model_type, architecture, *sliders)
            model_cfg, train_cfg = req.configs(int(vocab_size or 65), self.m.device)
            n = est.parameters(model_cfg)
            mem = est.training_memory_bytes(model_cfg, train_cfg.batch_size, train_cfg.optimizer)
            class_s, class_note = self.m.class_time_limit()
            if class_s is not None and (not train_cfg.max_seconds or class_s < train_cfg.max_seconds):
                train_cfg.max_seconds = class_s  # the class's time per run ends it first
            else:
                class_note = ""
            secs = est.training_seconds(model_cfg, train_cfg.batch_size, train_cfg.max_iters, train_cfg.eval_interval,
                                        train_cfg.eval_iters, train_cfg.max_seconds, self.m.device)
        except GPTError as err:
            return problem(err, toast=False), ""
        over = n > self.m.limits.max_params
        size = f"**{est.human_count(n)} parameters**" + (" &mdash; over this server's limit" if over else "")
        return (f"{size} · about **{est.human_bytes(mem)}** of memory to train · about "
                f"**{est.human_seconds(secs)}** on this machine · "
                f"{train_cfg.batch_size * model_cfg.block_size:,} tokens per step"
                f"{fitted_note(preset, model_cfg, self.m.device)}"), ends_when(train_cfg, secs, class_note)

    # --- 3. training ------------------------------------------------------------------------------
    def start(self, owner, choice, upload, pasted, kind, vocab_size, preset, model_type, architecture, n_layer,
              n_head, n_embd, block_size, dropout, batch_size, lr, max_iters, max_seconds, shared,
              request: gr.Request = None):
        sliders = (n_layer, n_head, n_embd, block_size, dropout, batch_size, lr, max_iters, max_seconds)
        try:
            corpus = self.corpus(choice, upload, pasted)
            req = RunRequest.from_form(kind, vocab_size, preset, model_type, architecture, *sliders, shared=shared)
            job = self.m.start(owner, corpus, req, address=client_address(request))
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(self.m.runner.describe_start(job))

    def restore_form(self, owner):
        """After a refresh: the form shows what the run on screen was started with, not the defaults."""
        name = self.m.runs.current_run(owner) if owner else None
        try:
            status = self.m.runs.summary(name, owner) if name else None
        except GPTError:
            status = None
        if status is None or not status.request:
            return (gr.skip(),) * (6 + len(SLIDERS))
        return form_values(status.request, self.m.runs.source_of(name))

    def stop(self, owner):
        try:
            return say(self.m.stop(owner, self.m.runs.current_run(owner) or ""))
        except Exception as err:  # noqa: BLE001
            return problem(err)

    def resume(self, owner, more_iters=None, name=None):
        try:
            name = name or self.m.runs.current_run(owner)
            if not name:
                return say("You have no run to resume yet.", ok=False)
            job = self.m.resume(owner, name, int(more_iters) if more_iters else None)
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(self.m.runner.describe_start(job, resumed=True))

    def poll(self, owner, last, compared=None):
        """Timer tick: progress, the live curve, the latest sample and, when the run being watched is
        among the compared ones, the comparison; each sent only when it changed."""
        name = self.m.runs.current_run(owner) if owner else None
        status = self.m.runs.status_if_visible(name, owner)
        if status is None:
            name = None
        steps = len(status.history) and status.history[-1][0] if status else 0
        sig = [name, status and status.state, status and status.step, steps,
               status and len(status.metrics), status and status.queue_position, status and status.message,
               status and status.starts_in_s]
        same = unchanged(sig, last, 7)
        if same:
            return same
        # the line under Start answered the last click; once the run on screen changes state, it is old news (a
        # run that just appeared is the one the click started: its sentence stays until that run moves on)
        msg = "" if last is not None and last[0] == name and last[1] != sig[1] else gr.skip()
        plot = compare = gr.skip()
        if not last or last[0] != name or last[3] != steps or last[4] != sig[4]:
            plot = frames.drawn(frames.loss_frame(status.metrics, status.history)) if name else None
        if name in (compared or []) and (not last or last[4] != sig[4]):
            compare = self.compare(owner, compared)
        stoppable = bool(status and status.mine and (status.active or status.state == "paused"))  # paused: GPU slices
        resumable = bool(status and status.mine and not status.active and status.state != "running elsewhere")
        sample = status.latest_sample if status else ""
        return (frames.progress_html(status), plot, sample, gr.update(interactive=stoppable),
                gr.update(interactive=resumable), compare, msg, sig)

    def first_point(self, owner, last, compared=None, timeout: float = 5.0):
        """Right after Start: wait (at most `timeout` s) for the run's first evaluation, then draw it,
        so the first point shows as soon as it exists instead of at the next timer tick."""
        name = self.m.runs.current_run(owner) if owner else None
        deadline = time.monotonic() + timeout
        while name and time.monotonic() < deadline:
            job = self.m.active_job(owner)  # None once it has finished, stopped or failed
            if job is None or job.name != name or self.m.queue_position(name) or self.m.runs.metrics(name):
                break  # over, behind others in the queue, or its first point exists
            time.sleep(0.05)
        return self.poll(owner, last, compared)

    def compare_choices(self, owner, selected):
        return pick_runs(self.m, owner, with_metrics(self.m.runs.list_runs(owner)), selected)

    def compare_with_new(self, owner, selected):
        """After Start: the new run joins the comparison, without a click on refresh."""
        current = self.m.runs.current_run(owner) if owner else None
        keep = list(selected or [])
        return self.compare_choices(owner, keep + [current] if current and current not in keep else keep)

    def compare(self, owner, selected):
        """val bpc of the selected runs; None when there is nothing to draw (the page clears the plot first,
        so the legend is rebuilt for the new set of runs)."""
        out = {}
        for name in selected or []:
            if self.m.runs.visible(owner, name):
                try:
                    out[name] = self.m.runs.metrics(name)
                except GPTError:
                    continue
        return frames.drawn(frames.compare_frame(out))

    @staticmethod
    def clear_plot():
        return None

    def class_limit(self, last):
        """The class's time per run, when the teacher changes it (the line beside Start then follows)."""
        now = self.m.class_time_limit()[1]
        return gr.skip() if now == last else now


def ends_when(train_cfg, secs: float, class_note: str = "") -> str:
    """Beside Start: the limit that will end the run (steps or seconds, whichever comes first); `class_note` when
    the class's time per run is that limit ("the class's limit of 25 s per run, set by the teacher at 14:32")."""
    steps = f"{train_cfg.max_iters:,} steps"
    if class_note and secs >= train_cfg.max_seconds:
        return f"Ends at **{est.human_seconds(train_cfg.max_seconds)}**, {class_note}, before {steps}."
    if train_cfg.max_seconds and secs >= train_cfg.max_seconds:
        return f"Ends at its **{est.human_seconds(train_cfg.max_seconds)} time limit**, before {steps}."
    limit = f" (or {est.human_seconds(train_cfg.max_seconds)}, whichever comes first)" if train_cfg.max_seconds else ""
    return f"Ends after **{steps}**{limit}: about {est.human_seconds(secs)}."


def form_values(request: dict, source: str | None) -> tuple:
    """The Train tab's values (corpus, tokenizer, vocabulary, preset, model, architecture, sliders) of a request."""
    req = RunRequest.from_dict(request)
    v = preset_values(req.preset if req.preset in PRESETS else DEFAULT_PRESET)
    v.update({k: getattr(req, k) for k in ("architecture", *SLIDERS) if getattr(req, k) is not None})
    v["max_seconds"] = v["max_seconds"] or 0
    named = {c for _, c in CORPUS_CHOICES}
    corpus = source if source in named else gr.skip()  # a pasted or uploaded text is not put back
    return (corpus, req.tokenizer, req.vocab_size or BPE_VOCAB_DEFAULT, req.preset, req.model_type,
            *(v[k] for k in ("architecture", *SLIDERS)))


def _data_column(limits) -> dict:
    gr.Markdown("### Text and tokenizer")
    c = dict(corpus=gr.Dropdown(CORPUS_CHOICES, value="shakespeare", label="Corpus", elem_id="corpus"))
    c["upload"] = gr.File(label="Your .txt file (UTF-8)", file_types=[".txt"], type="filepath",
                          visible="hidden", elem_id="corpus-upload")
    c["pasted"] = gr.Textbox(label="Your text", lines=6, visible=False, elem_id="corpus-paste",
                             placeholder="Paste a few thousand characters or more, then click outside the box.")
    kind, vocab = preset_tokenizer(DEFAULT_PRESET)  # the default recipe's own tokenizer
    c["tokenizer"] = gr.Radio(TOKENIZER_CHOICES, value=kind, label="Tokenizer", elem_id="tokenizer")
    c["bpe_vocab"] = gr.Slider(BPE_VOCAB_MIN, BPE_VOCAB_MAX, value=vocab or BPE_VOCAB_DEFAULT, step=64,
                               label="BPE vocabulary size", visible=kind == "bpe", elem_id="bpe-vocab")
    c["stats"] = gr.Markdown(elem_id="corpus-stats")
    c["preview_text"] = gr.Textbox(label="How the tokenizer cuts a sentence (type your own, press Enter)",
                                   placeholder="Empty: the first lines of the corpus", elem_id="preview-text")
    c["preview"] = gr.HTML(elem_id="token-preview")
    return c


def _model_column(limits) -> dict:
    v = preset_values(DEFAULT_PRESET)
    gr.Markdown("### Model and training")
    c = dict(preset=gr.Dropdown([(f"{k}: {p['about'].split(':')[0]}", k) for k, p in PRESETS.items()],
                                value=DEFAULT_PRESET, label="Preset", elem_id="preset"))
    with gr.Row():
        c["model_type"] = gr.Radio([("GPT", "gpt"), ("Bigram baseline", "bigram")], value="gpt", label="Model",
                                   elem_id="model-type")
        c["architecture"] = gr.Radio([("Classic (the lecture's)", "classic"),
                                      ("Modern (rotary, QK-norm, ReLU²)", "modern")],
                                     value=v["architecture"], label="Architecture", elem_id="architecture")
    with gr.Row(equal_height=True):
        gr.Markdown(MODERN, elem_id="architecture-note")
        c["to_lesson"] = gr.Button("The lecture's model, step by step: Lesson →", size="sm", scale=0, min_width=200,
                                   elem_id="to-lesson")
    with gr.Accordion("Shape and training settings", open=False, elem_id="settings"):
        with gr.Row():
            n_layer = gr.Slider(1, limits.max_layers, v["n_layer"], step=1, label="Layers", elem_id="n-layer")
            n_head = gr.Slider(1, 12, v["n_head"], step=1, label="Heads", elem_id="n-head")
            n_embd = gr.Slider(16, 768, v["n_embd"], step=16, label="Width (n_embd)", elem_id="n-embd")
        with gr.Row():
            block_size = gr.Slider(8, limits.max_block_size, v["block_size"], step=8, label="Context (block size)", elem_id="block-size")
            dropout = gr.Slider(0.0, 0.5, v["dropout"], step=0.05, label="Dropout", elem_id="dropout")
            batch_size = gr.Slider(1, limits.max_batch_size, v["batch_size"], step=1, label="Batch size", elem_id="batch-size")
        with gr.Row():
            lr = gr.Number(v["lr"], label="Learning rate", minimum=1e-5, maximum=1.0, elem_id="lr")
            max_iters = gr.Slider(10, limits.max_iters, v["max_iters"], step=10, label="Iterations",
                                  elem_id="max-iters")
            max_seconds = gr.Slider(0, 1800, v["max_seconds"], step=5, label="Max seconds (0 = none)",
                                    elem_id="max-seconds")
    c["sliders"] = [n_layer, n_head, n_embd, block_size, dropout, batch_size, lr, max_iters, max_seconds]
    c["estimate"] = gr.Markdown(elem_id="estimate")
    c["share"] = gr.Checkbox(False, label="Share this run with everyone on this server", elem_id="share")
    return c


def _watch_area() -> dict:
    with gr.Row(elem_id="start-row"):
        c = dict(start=gr.Button("▶ Start training", variant="primary", size="lg", scale=3, elem_id="start-btn"))
        c["stop"] = gr.Button("■ Stop", variant="stop", interactive=False, scale=1, elem_id="stop-btn")
        c["resume"] = gr.Button("↻ Resume", interactive=False, scale=1, elem_id="resume-btn")
        c["ends"] = gr.Markdown(elem_id="ends-when")
    c["msg"] = gr.Markdown(elem_id="train-msg")
    c["progress"] = gr.HTML(frames.LOADING, elem_id="progress")
    with gr.Row():
        c["loss_plot"] = gr.LinePlot(None, x="step", y="loss", color="series", color_map=frames.LOSS_COLOURS,
                                     colors_in_legend=list(frames.LOSS_SERIES), height=340,
                                     title="Loss in nats per token (lower is better)", elem_id="loss-plot")
        with gr.Column():
            c["compare_plot"] = gr.LinePlot(None, x="step", y="val_bpc", color="run", height=260,
                                            x_axis_format="d", y_axis_format=".2f",  # steps as 1200, not 1.2e+3; not 5.727689
                                            title="Compare runs: validation bits per character", elem_id="compare-plot")
            with gr.Row():
                c["compare_runs"] = gr.Dropdown(multiselect=True, label="Runs to compare", scale=5,
                                                elem_id="compare-runs")
                c["compare_refresh"] = gr.Button("↻", scale=0, min_width=40, elem_id="compare-refresh")
    gr.Markdown(LOSS_UNIT, elem_id="loss-unit")
    c["sample"] = gr.Textbox(label="What the model writes at its latest evaluation", lines=4, interactive=False,
                             elem_id="latest-sample")
    return c


def build_train_tab(page: Page) -> gr.Tab:
    """Lay out the Train tab, wire it, and record its controls in `page.train` for the other tabs."""
    h, who = TrainHandlers(page.manager), page.who
    with gr.Tab("1 · Train", id="train", elem_id="train-tab") as tab:
        with gr.Row(elem_id="train-settings"):
            with gr.Column():
                d = _data_column(page.manager.limits)
            with gr.Column():
                m = _model_column(page.manager.limits)
        with gr.Column(elem_id="watch-area"):  # the projector view puts it first (gpt.ui.projector)
            w = _watch_area()
        vocab, last_poll, class_limit = gr.State(65), gr.State(None), gr.State(None)
    sliders = m["sliders"]
    page.train = TrainControls(d["corpus"], d["upload"], d["pasted"], d["tokenizer"], d["bpe_vocab"], vocab,
                               m["preset"], m["model_type"], m["architecture"], sliders, sliders[2])

    corpus_in = [d["corpus"], d["upload"], d["pasted"], d["tokenizer"], d["bpe_vocab"], d["preview_text"]]
    show_corpus = dict(fn=h.describe_corpus, inputs=corpus_in, outputs=[d["stats"], d["preview"], vocab], **PRIVATE)
    show_estimate = dict(fn=h.estimate, inputs=[vocab, m["preset"], m["model_type"], m["architecture"], *sliders],
                         outputs=[m["estimate"], w["ends"]], **PRIVATE)
    show_compare = dict(fn=h.compare_choices, inputs=[who, w["compare_runs"]], outputs=w["compare_runs"], **PRIVATE)
    form = [d["corpus"], d["tokenizer"], d["bpe_vocab"], m["preset"], m["model_type"], m["architecture"], *sliders]
    restore = dict(fn=h.restore_form, inputs=who, outputs=form, **PRIVATE)
    poll_in = [who, last_poll, w["compare_runs"]]
    poll_out = [w["progress"], w["loss_plot"], w["sample"], w["stop"], w["resume"], w["compare_plot"], w["msg"],
                last_poll]
    first_poll = dict(fn=h.poll, inputs=poll_in, outputs=poll_out, **QUIET)  # the run's state once the id is known
    take_long_pastes = dict(fn=None, js=paste.paste_script(page.manager.limits.max_upload_bytes), **PRIVATE)
    page.on_load += [take_long_pastes, restore, first_poll, show_corpus, show_estimate, show_compare]

    d["corpus"].change(h.corpus_inputs, d["corpus"], [d["upload"], d["pasted"]], **PRIVATE).then(**show_corpus)
    d["tokenizer"].change(h.vocab_input, d["tokenizer"], d["bpe_vocab"], **PRIVATE).then(**show_corpus)
    d["tokenizer"].input(lambda: "", None, w["msg"], **PRIVATE)  # an old refusal is about the old tokenizer
    # a vocabulary size dragged, or typed then Enter: only the latest is built (a BPE per size is ~1 s)
    d["bpe_vocab"].change(trigger_mode="always_last", **show_corpus)
    for event in (d["upload"].upload, d["pasted"].blur, d["preview_text"].submit):
        event(**show_corpus)
    m["preset"].input(h.apply_preset, m["preset"], [m["architecture"], *sliders], **PRIVATE)
    m["preset"].input(h.tokenizer_for_preset, m["preset"], [d["tokenizer"], d["bpe_vocab"]], **PRIVATE)
    # one event for the estimate, whatever changed (the text only through its vocabulary): its answers come in
    # the order of the changes; an estimate chained to each trigger could land after a newer one and show the
    # numbers of a model no longer chosen
    gr.on([c.change for c in (vocab, class_limit, m["preset"], m["model_type"], m["architecture"], *sliders)],
          trigger_mode="always_last", **show_estimate)

    start_in = [*corpus_in[:5], m["preset"], m["model_type"], m["architecture"], *sliders, m["share"]]
    started = w["start"].click(h.start, [who, *start_in], w["msg"], **PRIVATE)
    started.then(h.first_point, poll_in, poll_out, show_progress="hidden", **PRIVATE).then(
        h.compare_with_new, [who, w["compare_runs"]], w["compare_runs"], **PRIVATE)
    page.wake_after(started)
    m["to_lesson"].click(None, None, None, js=TO_LESSON, **PRIVATE)
    w["stop"].click(h.stop, who, w["msg"], **PRIVATE)
    page.wake_after(w["resume"].click(h.resume, [who, sliders[7]], w["msg"], **PRIVATE))
    slice_timer.wire(page, w["msg"])  # on ZeroGPU: the timer runs the GPU slices
    page.every_tick(h.class_limit, [class_limit], [class_limit])
    page.every_tick(h.poll, poll_in, poll_out)
    w["compare_refresh"].click(**show_compare)
    w["compare_runs"].change(h.clear_plot, None, w["compare_plot"], **PRIVATE).then(
        h.compare, [who, w["compare_runs"]], w["compare_plot"], **PRIVATE)
    return tab
