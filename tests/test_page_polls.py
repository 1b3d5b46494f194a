"""The page's clock: every tab's live update rides one event per tick, and one tab's failure spares the others.

Each event a page sends costs a round trip, the server's bookkeeping and a
browser redraw whatever it returns; thirty open pages polling five tabs
apart were five times that (gpt.ui.page.Page.wire_polls).
"""

from __future__ import annotations

import gradio as gr

import app
from gpt.jobs import JobManager
from gpt.ui.page import Page


def tick_events(demo: gr.Blocks, timer: gr.Timer) -> list:
    return [f for f in demo.fns.values() if (timer._id, "tick") in f.targets]


def test_the_page_polls_every_tab_in_one_event_per_tick(tmp_path):
    demo = app.build_demo(JobManager(tmp_path, device="cpu"))
    timer = next(b for b in demo.blocks.values() if isinstance(b, gr.Timer) and b.value == 1.0)
    events = tick_events(demo, timer)
    assert len(events) == 1  # the Train tab, its class limit, the Lesson's ladder, the Chat tab and the RL panel
    outputs = {b.elem_id for b in events[0].outputs}
    assert {"progress", "loss-plot", "ladder-status", "ft-progress", "rl-progress"} <= outputs, outputs
    demo.manager.shutdown()


def test_a_poll_that_fails_leaves_its_outputs_and_the_others_still_update():
    def broken(who):
        raise RuntimeError("a bug in one tab")

    with gr.Blocks() as demo:
        who, timer = gr.State("me"), gr.Timer(1.0)
        a, b, c = gr.Markdown(), gr.Markdown(), gr.Markdown()
        page = Page(manager=None, models=None, who=who, timer=timer)
        page.every_tick(lambda owner: f"hello {owner}", [who], [a])
        page.every_tick(broken, [who], [b])
        page.wire_polls()
    (event,) = tick_events(demo, timer)
    assert [x is who for x in event.inputs] == [True]  # the asker is read once for every tab
    out = event.fn("me")
    assert out[0] == "hello me" and out[1] == gr.skip()
