"""Build a GPT in your browser: pick a text and a tokenizer, train, watch the loss fall, sample.

    python app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME, GRADIO_SERVER_PORT to change)

The same file runs as a Hugging Face Space. It only assembles the page, in
the style of Gradio's own demos: each tab is one layout function of
`gpt.ui`, the runs live in the run service (`gpt.jobs`), and the named API
is `gpt.ui.api`. Limits: `gpt.limits`; the runs folder: GPT_CHECKPOINT_DIR.
"""

from __future__ import annotations

import os

import gradio as gr

from gpt.device import leave_a_core_for_the_page
from gpt.jobs import JobManager
from gpt.optim import warm_up_in_background
from gpt.ui.api import register_api
from gpt.ui.checkpoints_tab import build_checkpoints_tab
from gpt.ui.frames import PROGRESS_CSS
from gpt.ui.generate import ModelCache
from gpt.ui.generate_tab import build_generate_tab
from gpt.ui.identity import Identity
from gpt.ui.page import PRIVATE, Page
from gpt.ui.runtime import browser_secret, describe_runtime
from gpt.ui.tokens import TOKENS_CSS
from gpt.ui.train_tab import build_train_tab
from gpt.ui.uploads import keep_swept
from gpt.ui.views import VIEWS_CSS, build_views_tab

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
    with gr.Blocks(title="Build a GPT") as demo:
        who = Identity(manager.identity, browser_secret(manager.root))
        page = Page(manager, ModelCache(), who, timer=gr.Timer(1.0))
        register_api(page)  # first, so the client API keeps its names whatever the page's events are called
        gr.Markdown(INTRO)
        gr.Markdown(describe_runtime(manager.limits), elem_id="runtime")
        with gr.Tabs():
            page.tabs += [build_train_tab(page), build_generate_tab(page), build_checkpoints_tab(page)]
            build_views_tab(page)
        load = demo.load(who.sign_in, who, who, **PRIVATE)
        for event in page.on_load:
            load = load.then(**event)
    demo.manager = manager  # tests and scripts reach the run service through the demo
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
    keep_swept(max_total_bytes=10 * demo.manager.limits.max_upload_bytes)  # uploads never fill the disk
    return demo.queue(default_concurrency_limit=2).launch(**options)


if __name__ == "__main__":
    launch(build_demo())
