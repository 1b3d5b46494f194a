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

import gpt.jobs.zerogpu  # noqa: F401 - first: on ZeroGPU, `spaces` must be imported before anything starts CUDA
from gpt.decode_process import start as start_decode_process
from gpt.device import leave_a_core_for_the_page
from gpt.estimate import effective_flops
from gpt.jobs import JobManager, storage
from gpt.jobs.slice_runner import default_runner
from gpt.limits import Limits
from gpt.optim import warm_up
from gpt.ui.api import register_api
from gpt.ui.chat_tab import build_chat_tab
from gpt.ui.checkpoints_tab import build_checkpoints_tab
from gpt.jobs.sampling import ModelCache, ready_in_background
from gpt.ui.generate_tab import build_generate_tab
from gpt.ui.addresses import keep_peer_address, trusted_proxies
from gpt.ui.boundary import Blocks
from gpt.ui.identity import Identity, browser_secret, sign_in_event
from gpt.ui.lesson_tab import build_lesson_tab
from gpt.ui.name_field import build_name_field
from gpt.ui.page import Page
from gpt.ui.pickers import SHIPPED
from gpt.ui.projector import build_projector_toggle
from gpt.ui.runtime import runtime_line
from gpt.ui.teacher import build_teacher_page, teacher_token
from gpt.ui.theme import CSS, INTRO, THEME
from gpt.ui.train_tab import build_train_tab
from gpt.ui.uploads import keep_swept
from gpt.ui.views import build_views_tab

def build_demo(manager: JobManager | None = None) -> gr.Blocks:
    # a wrong setting in the environment stops the start with its sentence before anything is built or copied
    teacher_token()  # GPT_TEACHER_TOKEN, when set, is long enough
    trusted_proxies()  # GPT_TRUSTED_PROXIES is addresses
    if manager is None:
        Limits.from_env()  # GPT_MAX_*: numbers in range
    leave_a_core_for_the_page()
    warm_up()  # PyTorch's first optimizer costs ~1 s of imports: here, not on the first Start
    effective_flops()  # the machine's speed, measured while it is quiet: the decode step compiles from launch on
    if manager is None:
        storage.seed_shipped_runs(storage.detect())  # a storage volume gets the shipped model on first start
        manager = JobManager(runner=default_runner())
    with Blocks(title="Build a GPT") as demo:
        who = Identity(manager.identity, browser_secret(manager.root))
        page = Page(manager, ModelCache(), who, timer=gr.Timer(1.0))
        demo.models = page.models  # launch() readies the shipped model in it
        register_api(page)  # first, so the client API keeps its names whatever the page's events are called
        with gr.Row(elem_id="page-header"):  # one row, so Start fits a 1080-pixel screen without the projector view
            with gr.Column(scale=3):
                gr.Markdown(INTRO, elem_id="intro")
                gr.Markdown(runtime_line(manager.limits), elem_id="runtime")
            with gr.Column(scale=1, min_width=320):
                build_projector_toggle(page)
                build_name_field(page)  # a display name for the class board (adds to page.on_load); Sign in on a Space
        with gr.Tabs():
            page.tabs += [build_train_tab(page), build_lesson_tab(page), build_generate_tab(page),
                          build_chat_tab(page), build_checkpoints_tab(page)]
            build_views_tab(page)
        load = demo.load(**sign_in_event(page))
        page.wire_polls()  # the tabs' live updates: one event per tick of the page's clock
        for event in page.on_load:
            load = load.then(**event)
    build_teacher_page(demo, manager)  # /teacher, only when GPT_TEACHER_TOKEN is set
    demo.manager = manager  # tests and scripts reach the run service through the demo
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Start the server with the page's styling and limits; kwargs override (tests pass a port)."""
    options = dict(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        css=CSS,
        theme=THEME,
        max_file_size=f"{demo.manager.limits.max_upload_mb}mb",
    )
    options.update(kwargs)
    # Gradio recomputes its per-function timing summary (a pandas table of up to 10,000 past events) after every
    # event by default; with every open page polling each second that grew to most of the server's CPU
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    start_decode_process()  # a class's text is made in a process of its own, beside the server (gpt.decode_process)
    if hasattr(demo, "models"):  # the shipped model's weights in that process, its decode step compiled there
        ready_in_background(demo.manager, demo.models, SHIPPED)
    keep_peer_address()  # who is asking is the peer, or what a trusted proxy says (gpt.ui.addresses)
    keep_swept(max_total_bytes=10 * demo.manager.limits.max_upload_bytes)  # uploads never fill the disk
    return demo.queue(default_concurrency_limit=2).launch(**options)


if __name__ == "__main__":
    import sys

    from gpt.errors import GPTError

    try:
        demo = build_demo()
    except GPTError as err:  # a setting in the environment (GPT_TEACHER_TOKEN, GPT_MAX_*): its sentence, no traceback
        sys.exit(f"error: {err}")
    launch(demo)
