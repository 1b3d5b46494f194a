"""The page's clock: every tab's live update rides one event per tick, and one tab's failure spares the others.

Each event a page sends costs a round trip, the server's bookkeeping and a
browser redraw whatever it returns; thirty open pages polling five tabs
apart were five times that (gpt.ui.page.Page.wire_polls).
"""

from __future__ import annotations

import gradio as gr

import app
from gpt.jobs import JobManager
from gpt.ui.page import IDLE_S, LIVE_S, WAITING_S, Page

from helpers_app import addition, tiny_request
from helpers_class import ONE_AT_A_TIME, training


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
    assert [x is who for x in event.inputs] == [True, False]  # the asker read once for every tab, then the clock
    period, *out = event.fn("me", 1.0)
    assert out[0] == "hello me" and out[1] == gr.skip()
    assert period == gr.skip()  # the clock's own reading failed too (no run service here): it keeps its period


def test_the_clock_ticks_every_second_while_your_run_trains_and_slower_while_it_waits_or_nothing_is_live(tmp_path):
    m = JobManager(tmp_path, ONE_AT_A_TIME, device="cpu")
    try:
        with gr.Blocks() as demo:
            who, timer = gr.State(None), gr.Timer(1.0)
            page = Page(manager=m, models=None, who=who, timer=timer)
            page.every_tick(lambda owner: owner, [who], [gr.Markdown()])
            page.wire_polls()
        (event,) = tick_events(demo, timer)

        def period(owner, now):
            got = event.fn(owner, now)[0]
            return now if got == gr.skip() else got.value

        assert period("ann", 1.0) == IDLE_S and period("ann", IDLE_S) == IDLE_S and period(None, 1.0) == IDLE_S
        training(m, "ann")
        assert period("ann", IDLE_S) == LIVE_S == 1.0
        m.start("bob", addition(), tiny_request(20))  # behind ann's run
        assert m.active_job("bob").state == "queued" and period("bob", LIVE_S) == WAITING_S
        assert period("cy", LIVE_S) == IDLE_S  # another person's runs do not speed up your page
        assert WAITING_S > LIVE_S and IDLE_S > WAITING_S
    finally:
        m.shutdown()


def test_a_start_wakes_the_clock_at_once(tmp_path):
    demo = app.build_demo(JobManager(tmp_path, device="cpu"))
    timer = next(b for b in demo.blocks.values() if isinstance(b, gr.Timer) and b.value == 1.0)
    start = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "start-btn")
    followers = [f for f in demo.fns.values() if f.outputs == [timer] and f.trigger_after is not None]
    assert any(demo.fns[f.trigger_after].targets == [(start._id, "click")] for f in followers)
    assert [f.fn() for f in followers][0].value == LIVE_S
    demo.manager.shutdown()
