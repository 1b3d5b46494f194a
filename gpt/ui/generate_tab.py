"""The Generate tab: any run you may see, even one still training, writes text token by token.

`GenerateHandlers` streams (text so far, status) from `gpt.jobs.sampling`;
`build_generate_tab` lays the tab out. Temperature, top-k and top-p use the
API's conventions (0 and 1 mean off, seed -1 means random). A whole class
may press Generate at once: the requests on one model share a decode loop
(`gpt.batching`), up to GENERATE_CONCURRENCY at a time, page and API together.
"""

from __future__ import annotations

import threading

import gradio as gr

from ..jobs import JobManager
from ..jobs import sampling as gen
from .messages import problem
from .page import GENERATE_QUEUE, PRIVATE, Page
from .pickers import first_choice, pick_run, sampleable


class GenerateHandlers:
    def __init__(self, manager: JobManager, models: gen.ModelCache):
        self.m = manager
        self.models = models
        self._stop: dict[str, threading.Event] = {}  # owner -> the Stop button of their sample in progress
        # Stop has one path: the event, checked by the decode loop before each step; the sample ends
        # there and its last text and "Stopped" status still reach the page

    def sample_runs(self, owner, current=None):
        return pick_run(self.m, owner, sampleable(self.m.runs.list_runs(owner)), current)

    def generate(self, owner, run, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        """Stream (text so far, status) into the page; the Stop button ends it."""
        stop = self._stop[owner or ""] = threading.Event()
        try:
            yield from self._stream(stop, owner, run, prompt, max_new_tokens, temperature, top_k, top_p, seed)
        finally:
            if self._stop.get(owner or "") is stop:  # ended: a later Stop has nothing to stop
                del self._stop[owner or ""]

    def _stream(self, stop, owner, run, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        # a click that beats the tab's own list (opening the tab refreshes it) samples the run the list will show
        run = run or first_choice(self.m, owner, sampleable(self.m.runs.list_runs(owner))) or ""
        req = gen.SampleRequest(run, prompt or "", max_new_tokens, temperature, top_k, top_p, seed)
        try:
            loaded = gen.open_run(self.m, self.models, owner, run, self.m.device)
            prepared = gen.prepare(loaded, req, self.m.limits.max_new_tokens)
        except Exception as err:  # noqa: BLE001
            yield "", problem(err)
            return
        status = " ".join(prepared.notes)
        try:
            with self.m.sampling(run):
                text = ""
                for text in gen.stream(loaded, prepared, should_stop=stop.is_set):
                    yield text, status or "Generating..."
            n = len(text) - len(prepared.prompt)
            done = "Stopped" if stop.is_set() else "Done"
            yield text, (status + " " if status else "") + f"{done}: {n:,} characters generated."
        except Exception as err:  # noqa: BLE001
            yield gr.skip(), problem(err)

    def stop_generation(self, owner):
        """Stop the sample in progress; a sample that had finished keeps its "Done" line (Stop changes nothing)."""
        event = self._stop.get(owner or "")
        if event is None:
            return gr.skip()
        event.set()
        return "Stopped."


def build_generate_tab(page: Page) -> gr.Tab:
    h, who, lim = GenerateHandlers(page.manager, page.models), page.who, page.manager.limits
    with gr.Tab("2 · Generate", id="generate") as tab, gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=420, elem_id="gen-controls"):  # the text beside the controls
            with gr.Row():
                run = gr.Dropdown(label="Model (a run; one still training samples its current weights)", scale=5,
                                  elem_id="gen-run")
                refresh = gr.Button("↻", scale=0, min_width=40, elem_id="gen-refresh")
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
                btn = gr.Button("Generate", variant="primary", scale=4, elem_id="gen-btn")
                stop = gr.Button("■ Stop", variant="stop", scale=1, elem_id="gen-stop")
            status = gr.Markdown(elem_id="gen-status")
        with gr.Column(scale=1, min_width=420):
            output = gr.Textbox(label="Text", lines=16, interactive=False, elem_id="gen-output")

    show_runs = dict(fn=h.sample_runs, inputs=[who, run], outputs=run, **PRIVATE)
    page.on_load.append(show_runs)
    tab.select(**show_runs)
    refresh.click(**show_runs)
    inputs = [who, run, prompt, max_new, temperature, top_k, top_p, seed]
    for event in (btn.click, prompt.submit):
        event(h.generate, inputs, [output, status], **GENERATE_QUEUE, **PRIVATE)
    stop.click(h.stop_generation, who, status, **PRIVATE)
    return tab
