"""What every tab of the page shares: the run service, the model cache, who is asking, the Train tab's controls.

`app.py` makes one `Page` and hands it to each tab's layout function
(`build_train_tab(page)`, `build_lesson_tab(page)`, ...). A tab reads the
asker's id from `page.who` (the first input of its events) and the Train
tab's choices (corpus, tokenizer, shape) from `page.train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Page:
    manager: JobManager
    models: ModelCache
    who: gr.Component  # an events' input: the asker's owner id, checked by the server (gpt.ui.identity)
    timer: gr.Timer | None = None  # the page's one-second clock: live progress polls on its tick
    train: TrainControls | None = None  # set once the Train tab is built
    tabs: list = field(default_factory=list)  # every top-level gr.Tab, so a tab can pause its timers elsewhere
    on_load: list = field(default_factory=list)  # events (dicts for .then) to run once the page has its id


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
