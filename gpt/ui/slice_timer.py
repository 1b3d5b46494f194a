"""The Train tab on a ZeroGPU Space: a timer that runs the next GPU slice of the page's run.

ZeroGPU lends its GPU only to a `@spaces.GPU` function called from a Gradio
event, and charges it to the visitor who made the event. So there the run
service trains in slices (`gpt.jobs.slice_runner`): Start, Stop and Resume
are the Train tab's usual buttons and handlers, and this 1-second timer runs
the next slice whenever the page's run waits for one, one slice per tick (a
tick that fires while a slice runs is dropped: Gradio's trigger_mode "once").
Whether another slice should follow is the run's own record, not the page's:
a reloaded page goes on by itself, and a refusal (the visitor's quota is
spent), a Stop, the end or a failure end the chain until Resume.

`wire(page, message)` binds it, only where the run service trains in slices;
elsewhere the page is exactly as it always was.
"""

from __future__ import annotations

import gradio as gr

from ..jobs import JobManager, slice_runner
from ..jobs.slice_runner import SliceRunner
from ..jobs.storage import detect
from ..jobs.zerogpu import SliceSettings
from .messages import problem, say
from .page import PRIVATE


def describe_slices(settings: SliceSettings | None = None) -> str:
    """The page's line on where training runs, for a ZeroGPU Space (in place of 'training runs on the CPU')."""
    d = (settings or slice_runner.SETTINGS).duration_s
    return (f"This is a ZeroGPU Space: **each run trains on its GPU in slices of {d:g} s**, each taken from your own "
            "daily ZeroGPU quota (sign in to Hugging Face for a bigger one). Slices follow one another while a "
            "page of yours is open, across reloads; after a refusal, click Resume.")


def storage_note() -> str:
    """The page's sentence on whether runs survive a restart (gpt.jobs.storage); '' off a Space without a volume,
    where nothing is wiped and the page stays as it always was."""
    where = detect()
    return where.sentence() if where.on_space or where.volume is not None else ""


class SliceTimer:
    """The timer's tick: run the next slice of the page's run if it waits for one; else change nothing."""

    def __init__(self, manager: JobManager):
        self.m = manager

    def tick(self, owner):
        runner = self.m.runner
        name = self.m.runs.current_run(owner) if owner else None
        if not name or not runner.wants_slice(name) or self.m.runs.owner_of(name) != owner:
            return gr.skip()
        try:
            report = self.m.run_slice(owner, name)
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(report.message, ok=report.more or report.state in ("finished", "stopped"))


def wire(page, message) -> SliceTimer | None:
    """Bind the slice timer where the run service trains in GPU slices; None (and nothing bound) elsewhere."""
    if not isinstance(page.manager.runner, SliceRunner):
        return None
    timer = SliceTimer(page.manager)
    # every visitor's slices at once: ZeroGPU queues the GPU calls, not this page
    page.timer.tick(timer.tick, page.who, message, show_progress="hidden", concurrency_limit=None, **PRIVATE)
    return timer
