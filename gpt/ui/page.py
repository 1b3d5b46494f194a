"""What every tab of the page shares: the run service, the model cache, who is asking, the Train tab's controls.

`app.py` makes one `Page` and hands it to each tab's layout function
(`build_train_tab(page)`, `build_lesson_tab(page)`, ...). A tab reads the
asker's id from `page.who` (the first input of its events) and the Train
tab's choices (corpus, tokenizer, shape) from `page.train`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import gradio as gr

from ..jobs import JobManager
from ..jobs.sampling import ModelCache


@dataclass
class TrainControls:
    """The Train tab's components other tabs read (the Tokenizers and Anatomy views, the Lesson)."""

    corpus: gr.Component
    upload: gr.Component
    pasted: gr.Component
    tokenizer: gr.Component
    bpe_vocab: gr.Component
    vocab: gr.State  # the vocabulary size of the chosen corpus and tokenizer
    preset: gr.Component
    model_type: gr.Component
    architecture: gr.Component
    sliders: list  # n_layer, n_head, n_embd, block_size, dropout, batch_size, lr, max_iters, max_seconds
    n_embd: gr.Component


log = logging.getLogger(__name__)

# How often the page's clock ticks (s): every second while the asker's run trains (the curve moves), every two
# while it waits in the queue, every three when nothing of theirs is live. Each tick costs an open page about
# 0.2 s of its browser's CPU and the server 0.1 s whatever it shows (2026-12-02: one idle page, the clock at
# 1 s: Chromium 24-27%, server 11-16% of a core), which thirty idle pages on one server cannot pay every second.
LIVE_S, WAITING_S, IDLE_S = 1.0, 2.0, 3.0


@dataclass
class Poll:
    """What one tab reads on each tick of the page's clock: `fn(*inputs)` gives `outputs`."""

    fn: Callable
    inputs: list
    outputs: list


@dataclass
class Page:
    manager: JobManager
    models: ModelCache
    who: gr.Component  # an events' input: the asker's owner id, checked by the server (gpt.ui.identity)
    timer: gr.Timer | None = None  # the page's clock: live progress polls on its tick (LIVE_S)
    train: TrainControls | None = None  # set once the Train tab is built
    tabs: list = field(default_factory=list)  # every top-level gr.Tab, so a tab can pause its timers elsewhere
    on_load: list = field(default_factory=list)  # events (dicts for .then) to run once the page has its id
    polls: list = field(default_factory=list)  # what the tabs read each second: one event per tick (wire_polls)

    def interval(self, owner) -> float:
        """The clock's period for this asker: see LIVE_S."""
        job = self.manager.active_job(owner) if owner else None
        if job is None:
            return IDLE_S
        return WAITING_S if job.state == "queued" else LIVE_S

    def wake_after(self, event) -> None:
        """After `event` (a Start, a Resume...), the clock ticks every second at once, not at its next slow tick."""
        if self.timer is not None:
            event.then(lambda: gr.Timer(value=LIVE_S), None, self.timer, **QUIET)

    def every_tick(self, fn: Callable, inputs: list, outputs: list) -> None:
        """Read `fn(*inputs)` into `outputs` on each tick of the page's clock (once `wire_polls` ran)."""
        self.polls.append(Poll(fn, list(inputs), list(outputs)))

    def wire_polls(self) -> None:
        """One event per tick for every tab's poll, instead of one each.

        Each event costs its round trip, the server's bookkeeping and the
        browser's status redraw whatever it returns: five tabs polling apart
        cost an idle page about 0.8 s of the browser's CPU and 0.2 s of the
        server's every second (2026-12-02, one page, no run), which thirty
        browsers on one server cannot pay. A tab whose poll fails keeps its
        outputs as they were (and the log says why); the other tabs still update.
        """
        if self.timer is None or not self.polls:
            return
        # `who` once, not per tab; then the clock itself: its value is its period now, and it slows or speeds up
        inputs = list({id(c): c for p in self.polls for c in [self.who, *p.inputs]}.values()) + [self.timer]
        where = {id(c): k for k, c in enumerate(inputs)}
        outputs = [c for p in self.polls for c in p.outputs]
        assert len({id(c) for c in outputs}) == len(outputs), "two tabs poll into the same output"

        def tick(*values):
            try:
                want = self.interval(values[where[id(self.who)]])
            except Exception:  # noqa: BLE001 - the clock keeps its period
                log.exception("the page's clock could not read the asker's run")
                want = values[-1]
            out = [gr.skip() if values[-1] == want else gr.Timer(value=want)]
            for p in self.polls:
                try:
                    got = p.fn(*(values[where[id(c)]] for c in p.inputs))
                    out.extend(got if len(p.outputs) > 1 else [got])
                except Exception:  # noqa: BLE001 - one tab's failure must not freeze the others' live updates
                    log.exception("the poll %s failed", getattr(p.fn, "__qualname__", p.fn))
                    out.extend([gr.skip()] * len(p.outputs))
            return tuple(out)

        self.timer.tick(tick, inputs, [self.timer, *outputs], **QUIET)


PRIVATE = dict(api_visibility="private")  # the page's own events: not part of the client API
# Generate, from the page and the API alike: one queue. The requests on one model share a decode loop
# (gpt.batching), so 30 at once cost little more than a few; each waiting stream holds one of Gradio's
# 40 worker threads, so the limit leaves some for everything else.
GENERATE_QUEUE = dict(concurrency_limit=32, concurrency_id="generate")
# A chat answer decodes alone (gpt.chat.ask_stream), so a few at a time keep the CPU for the rest.
CHAT_QUEUE = dict(concurrency_limit=4, concurrency_id="chat")
QUIET = dict(show_progress="hidden", concurrency_limit=None, **PRIVATE)  # timers: no spinner, never queued


def unchanged(signature, last, n_outputs: int) -> tuple | None:
    """The 'nothing new' answer of a polling event: every output skipped and `last` kept; None if it changed.

    A timer ticks every second or two for every open page; sending the same
    plot or HTML again would cost the server and make the browser redraw.
    """
    if signature == last:
        return (gr.skip(),) * n_outputs + (last,)
    return None
