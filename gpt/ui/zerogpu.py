"""The Train tab on a ZeroGPU Space: Start, Continue and Stop drive GPU slices from the page's events.

ZeroGPU lends its GPU only to a `@spaces.GPU` function called from a Gradio
event, and charges it to the visitor who made the event. So here a run is
trained by the page: the Start (or Continue) click readies the run and a
1-second `gr.Timer` runs the next slice whenever the page's run is paused
between slices, one slice per tick (a tick that fires while a slice runs is
dropped: Gradio's trigger_mode "once"). The chain goes on while the page is
open and stops on a refusal (the visitor's quota is spent), a Stop, the end
or a failure; Continue picks it up again, after a reload too.

`wire(page, ...)` binds it all, and only on a ZeroGPU Space (or with
GPT_ZEROGPU=1): elsewhere it returns None and the page is exactly as it was.
The handlers are plain methods of `SliceHandlers`, usable without a page.
"""

from __future__ import annotations

import gradio as gr

from .. import corpus as corpora
from .. import slices
from ..jobs import JobManager
from ..jobs.sliced import SlicedRuns  # noqa: F401 - also for tests and scripts
from ..jobs.status import RunStatus
from ..storage import detect
from ..zerogpu import SliceSettings, gpu, zero_gpu_mode
from .messages import problem, say
from .page import PRIVATE

SETTINGS = SliceSettings.from_env()
train_on_gpu = gpu(slices.train_slice, SETTINGS.duration_s)  # registered at import, as ZeroGPU wants


def describe_slices(settings: SliceSettings | None = None) -> str:
    """The page's line on where training runs, for a ZeroGPU Space (in place of 'training runs on the CPU')."""
    d = (settings or SETTINGS).duration_s
    return (f"This is a ZeroGPU Space: **each run trains on its GPU in slices of {d:g} s**, each taken from your own "
            "daily ZeroGPU quota (sign in to Hugging Face for a bigger one). Slices follow one another while this "
            "page is open; after a refusal or a reload, click Continue.")


def storage_note() -> str:
    """The page's sentence on whether runs survive a restart (gpt.storage); '' off a Space without a volume,
    where nothing is wiped and the page stays as it always was."""
    where = detect()
    return where.sentence() if where.on_space or where.volume is not None else ""


class SliceHandlers:
    """Start / Continue / Stop / the timer's tick, for runs that train in GPU slices.

    Each returns (a status line, whether the page should keep chaining slices).
    """

    def __init__(self, manager: JobManager, gpu_fn=None, settings: SliceSettings | None = None):
        self.m = manager
        self.runs = SlicedRuns(manager, gpu_fn or train_on_gpu, settings or SETTINGS)

    def start(self, owner, choice, upload, pasted, kind, vocab_size, preset, model_type, architecture, *rest):
        """The Train tab's Start, with the same inputs as the CPU one: a new run, trained in slices."""
        from .train_tab import make_request  # here: train_tab wires this module in

        *sliders, shared = rest
        try:
            corpus = corpora.load(choice, upload, pasted, max_bytes=self.m.limits.max_upload_bytes)
            request = make_request(kind, vocab_size, preset, model_type, architecture, *sliders, shared=shared)
            exact = None
            if kind != "char":  # built (and cached) now, on the CPU, not inside a GPU slice
                exact = corpora.dataset(corpus, kind, request.vocab_size).tokenizer.vocab_size
            name = self.runs.begin(owner, corpus, request, vocab_size=exact)
        except Exception as err:  # noqa: BLE001 - the page shows the sentence
            return problem(err), False
        d = self.runs.settings.duration_s
        return say(f"Run **{name}** trains on the GPU in slices of {d:g} s, each from your ZeroGPU quota; the "
                   "first slice starts now and the next ones follow while this page is open."), True

    def resume(self, owner, more_iters=None, name=None):
        """Continue: the page's run (or `name`) gets more slices."""
        try:
            name = name or self.m.runs.current_run(owner)
            if not name:
                return say("You have no run to continue yet.", ok=False), False
            self.runs.continue_run(owner, name, int(more_iters) if more_iters else None)
        except Exception as err:  # noqa: BLE001
            return problem(err), False
        return say(f"Continuing **{name}** in GPU slices while this page is open."), True

    def stop(self, owner):
        try:
            name = self.m.runs.current_run(owner)
            message = self.runs.stop(owner, name or "")
        except Exception as err:  # noqa: BLE001
            return problem(err), False
        return say(message), False

    def tick(self, owner, chaining):
        """The timer: run the next slice of the page's run if it waits for one; else change nothing."""
        name = self.m.runs.current_run(owner) if owner and chaining else None
        if not name or not self.runs.is_sliced(name) or self.runs.flight(name) is not None:
            return gr.skip(), gr.skip()
        status = self.runs.status(name, owner)
        if status.state != "paused" or not status.mine:
            return gr.skip(), False
        try:
            report = self.runs.run_slice(owner, name)
        except Exception as err:  # noqa: BLE001
            return problem(err), False
        fine = report.more or report.state in ("finished", "stopped")  # else: failed, refused, stalled
        return say(report.message, ok=fine), report.more

    # what the Train tab's poll reads instead of the manager's, so a slice shows live
    def status(self, name: str, owner: str | None = None) -> RunStatus:
        return self.runs.status(name, owner)

    def step_losses(self, name: str) -> list[tuple[int, float]]:
        return self.runs.step_losses(name)


def wire(page, *, start, stop, resume, message, start_inputs: list, more_iters) -> SliceHandlers | None:
    """Bind Start / Resume (Continue) / Stop and a slice timer on a ZeroGPU Space; None (and nothing bound)
    elsewhere. The caller binds its usual CPU handlers to the three buttons only when this returns None.

    start_inputs: the Start button's inputs after the asker's id (corpus, upload, pasted, tokenizer,
    BPE vocabulary, preset, model, architecture, the nine sliders, share), as `Handlers.start` takes them.
    """
    if not zero_gpu_mode():
        return None
    h = SliceHandlers(page.manager)
    chaining = gr.State(False)
    timer = page.timer or gr.Timer(1.0)
    outputs = [message, chaining]
    start.click(h.start, [page.who, *start_inputs], outputs, **PRIVATE)
    resume.click(h.resume, [page.who, more_iters], outputs, **PRIVATE)
    stop.click(h.stop, page.who, outputs, **PRIVATE)
    # every visitor's slices at once: ZeroGPU queues the GPU calls, not this page
    timer.tick(h.tick, [page.who, chaining], outputs, show_progress="hidden", concurrency_limit=None, **PRIVATE)
    return h
