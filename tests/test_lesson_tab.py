"""The Lesson tab's handlers, without a browser: steps on the Train tab's text, the ladder as queued runs."""

from __future__ import annotations

import dataclasses
import time

import gradio as gr
import pytest

from gpt import ladder
from gpt.jobs import JobManager
from gpt.ui.lesson_tab import LessonHandlers

from helpers_app import wait_until

STEP_ARGS = dict(seed=1337, block_size=8, batch_size=4)


@pytest.fixture
def handlers(tmp_path):
    manager = JobManager(tmp_path, device="cpu")
    yield LessonHandlers(manager)
    manager.shutdown()


def show(h, choice, step, upload=None, pasted=None, kind="char", **kw):
    return h.show(choice, upload, pasted, kind, 2048, step, *{**STEP_ARGS, **kw}.values())


def test_a_step_on_shakespeare_shows_the_lectures_batch(handlers, shakespeare_text):
    heading, why, code, output, lecture, plot = show(handlers, "shakespeare", "batches")
    assert "shakespeare" in heading and "char (65 tokens)" in heading
    assert "tensor([[24, 43, 58,  5, 57,  1, 46, 43]," in output
    assert "def first_block" in code and "Yours is the same batch" in lecture
    assert plot["visible"] is False


def test_an_uploaded_text_runs_every_step_and_draws_the_weights(handlers, tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("Shall I compare thee to a summer's day? Thou art more lovely and more temperate. " * 80)
    heading, _, _, output, lecture, _ = show(handlers, "upload", "batches", upload=str(path), block_size=16)
    assert "poem" in heading and "holds on Tiny Shakespeare + characters" in lecture
    assert output.count("when input is [") == 4 * 16
    *_, plot = show(handlers, "upload", "trick", upload=str(path))
    assert plot["visible"] is True and plot["value"] is not None


def test_a_bad_setting_is_a_sentence_not_a_traceback(handlers):
    heading, *rest = show(handlers, "paste", "batches", pasted="abcabc" * 10, block_size=64)
    assert "msg-error" in heading and "block size of 64" in heading
    heading, *_ = show(handlers, "upload", "data")
    assert "Choose a .txt file" in heading


def test_next_step_walks_the_lecture_in_order():
    assert LessonHandlers.next_step("data") == "tokenize"
    assert LessonHandlers.next_step("head") == "ladder"
    assert LessonHandlers.next_step("ladder") == "chat"  # past the lecture's ending: how it becomes ChatGPT
    assert LessonHandlers.next_step("chat") == "chat"


def test_the_ladder_button_queues_the_rungs_one_after_another(handlers, monkeypatch):
    short = dict(max_iters=20, eval_interval=10, eval_iters=2, sample_tokens=0)
    for n in (1, 2, 3):
        monkeypatch.setitem(ladder.RUNGS, n, dataclasses.replace(ladder.RUNGS[n], train={**ladder.RUNGS[n].train,
                                                                                          **short}))
    h, owner = handlers, "student-1"
    msg, names = h.start_ladder(owner, "addition", None, None, "char", 2048, "1-3")
    assert "3 runs" in msg and [n.rsplit("rung", 1)[1] for n in names] == ["1", "2", "3"]
    assert h.m.active_job(owner).name == names[0]  # one person's rungs train one after another
    _, again = h.start_ladder(owner, "addition", None, None, "char", 2048, "1-3")
    assert not isinstance(again, list)  # refused while the first ladder trains: one run per person

    def finished():
        return all(h.m.runs.summary(n, owner).state == "finished" for n in names if (h.m.root / n).exists()) \
            and (h.m.root / names[-1]).exists()

    wait_until(lambda: finished() and h.m.active_job(owner) is None, timeout=120, what="three rungs")
    fig, table, status, shown = h.ladder_view(owner, names)
    assert status == "3 of 3 rungs finished." and shown == names
    assert list(table["rung"]) == [1, 2, 3] and list(table["state"]) == ["finished"] * 3
    assert all(table["val loss"] > 0) and list(table["lecture"]) == [2.5, 2.4, 2.28]
    assert fig is not None and len(fig.axes[0].lines) == 3  # the curves overlaid
    assert h.ladder_view(owner, [])[3] == names  # after a refresh the page finds the ladder again
    first = h.poll(owner, names, None)
    assert first[1] is not None and first[3] == names
    second = h.poll(owner, names, first[-1])
    assert second == (gr.skip(),) * 4 + (first[-1],)  # nothing new: every output skipped, nothing redrawn
    assert h.ladder_view("someone-else", [])[2].startswith("Press the button")


def test_stopping_the_ladder_says_which_rungs_ran_and_go_on_climbs_on(handlers, monkeypatch):
    for n, steps in ((1, 20), (2, 400), (3, 20)):  # rung 2 long enough to be stopped half way
        short = dict(max_iters=steps, eval_interval=10, eval_iters=2, sample_tokens=0)
        monkeypatch.setitem(ladder.RUNGS, n, dataclasses.replace(ladder.RUNGS[n], train={**ladder.RUNGS[n].train,
                                                                                          **short}))
    h, owner = handlers, "student-1"
    _, names = h.start_ladder(owner, "addition", None, None, "char", 2048, "1-3")
    wait_until(lambda: h.m.runs.live_trainer(names[1]) is not None and h.m.runs.live_trainer(names[1]).step > 5,
               timeout=120, what="rung 2 to train")
    assert "Stopping the ladder at rung 2" in h.stop_ladder(owner, names)
    wait_until(lambda: h.m.active_job(owner) is None, timeout=60, what="the stop")
    _, table, status, _ = h.ladder_view(owner, names)
    assert list(table["state"]) == ["finished", "stopped", "not started"]
    assert status.startswith("1 of 3 rungs finished; rung 2 stopped; rung 3 never started.") and "Go on" in status
    assert "No rung of your ladder is training" in h.stop_ladder(owner, names)
    msg, _ = h.go_on(owner, names)
    assert "from rung 2" in msg and "2 rungs to go" in msg
    wait_until(lambda: (h.m.root / names[2]).exists() and h.m.runs.summary(names[2], owner).state == "finished",
               timeout=300, what="the climb to rung 3's end")
    _, table, status, _ = h.ladder_view(owner, names)
    assert list(table["state"]) == ["finished"] * 3 and status == "3 of 3 rungs finished."
    assert h.m.runs.summary(names[1], owner).step == 400  # rung 2 went on from where it stopped
    assert "Every rung of this ladder has finished" in h.go_on(owner, names)[0]


def test_a_stop_on_the_train_tab_says_the_rungs_after_it_will_not_start(handlers, monkeypatch):
    for n, steps in ((1, 20_000), (2, 20)):
        monkeypatch.setitem(ladder.RUNGS, n, dataclasses.replace(ladder.RUNGS[n], train={
            **ladder.RUNGS[n].train, "max_iters": steps, "eval_interval": 10, "eval_iters": 2, "sample_tokens": 0}))
    h, owner = handlers, "student-2"
    _, names = h.start_ladder(owner, "addition", None, None, "char", 2048, "1-2")
    wait_until(lambda: h.m.runs.live_trainer(names[0]) is not None, timeout=120, what="rung 1 to train")
    assert "The 1 run planned after it will not start." in h.m.stop(owner, names[0])


def test_a_stop_between_two_rungs_stops_the_climb_and_cancels_the_rung_being_set_up(handlers, monkeypatch):
    """Stop pressed after rung 1 finished, while rung 2 is being set up: the climb stops there, never 'no rung is
    training' (the Lesson browser test once pressed Stop in that moment on a slow machine)."""
    import threading

    for n in (1, 2, 3):
        monkeypatch.setitem(ladder.RUNGS, n, dataclasses.replace(ladder.RUNGS[n], train={
            **ladder.RUNGS[n].train, "max_iters": 20, "eval_interval": 10, "eval_iters": 2, "sample_tokens": 0}))
    h, owner = handlers, "student-3"
    real_start, setting_up, go = h.m.start, threading.Event(), threading.Event()

    def slow_start(*args, **kw):  # the rungs after the first: held while rung 2 is being set up
        if kw.get("name", "").endswith("rung2"):
            setting_up.set()
            go.wait(60)
        return real_start(*args, **kw)

    _, names = h.start_ladder(owner, "addition", None, None, "char", 2048, "1-3")
    monkeypatch.setattr(h.m, "start", slow_start)
    assert setting_up.wait(120), "rung 1 did not finish"
    assert h.m.active_job(owner) is None  # the moment in between: nothing of the ladder is active
    msg = h.stop_ladder(owner, names)
    assert "Stopping the ladder at rung 2, before it began: rung 1 had just finished" in msg
    go.set()
    # its folder is made, then its state written: wait for a state, not for the folder (a busy CI read between)
    wait_until(lambda: h.m.active_job(owner) is None and list(h.ladder_view(owner, names)[1]["state"])[1] not in
               ("unknown", "not started"), timeout=60, what="rung 2 to be cancelled")
    _, table, status, _ = h.ladder_view(owner, names)
    assert list(table["state"]) == ["finished", "stopped", "not started"], status
    assert "rung 3 never started" in status


def test_a_stop_before_the_next_rung_is_made_redraws_the_page_and_says_it_never_started(handlers, monkeypatch):
    """Stop pressed after rung 1 finished and before its worker reads the plan: rung 2 is never made, and the
    page's poll (which saw rungs 2 and 3 'waiting' before) redraws to say they never started (the Lesson browser
    test once waited 90 s on a page that kept its old line)."""
    import threading

    for n in (1, 2, 3):
        monkeypatch.setitem(ladder.RUNGS, n, dataclasses.replace(ladder.RUNGS[n], train={
            **ladder.RUNGS[n].train, "max_iters": 20, "eval_interval": 10, "eval_iters": 2, "sample_tokens": 0}))
    h, owner = handlers, "student-4"
    runner, held, go = h.m.runner, threading.Event(), threading.Event()
    real_next = runner._start_next

    def slow_next(job):  # the worker of rung 1, between its end and reading the plan
        held.set()
        go.wait(60)
        return real_next(job)

    monkeypatch.setattr(runner, "_start_next", slow_next)
    _, names = h.start_ladder(owner, "addition", None, None, "char", 2048, "1-3")
    assert held.wait(120), "rung 1 did not finish"
    *_, before, sig = h.poll(owner, names, None)
    assert before == names and "never started" not in h.ladder_view(owner, names)[2]  # rungs 2 and 3 waiting
    assert "before it began: rung 1 had just finished" in h.stop_ladder(owner, names)
    go.set()
    wait_until(lambda: not h.m.job(names[0]).thread.is_alive(), timeout=60, what="rung 1's worker to end")
    _, table, status, _, sig2 = h.poll(owner, names, sig)
    assert sig2 != sig and "rungs 2 and 3 never started" in status, status  # redrawn, not skipped
    assert list(table["state"]) == ["finished", "not started", "not started"]
    assert not (h.m.root / names[1]).exists()  # nothing of rung 2 was made
    assert "Going on with the ladder from rung 2" in h.go_on(owner, names)[0]


def test_a_stop_on_a_rung_still_waiting_in_the_queue_says_nothing_was_trained(handlers, monkeypatch):
    for n, steps in ((1, 20_000), (2, 20)):
        monkeypatch.setitem(ladder.RUNGS, n, dataclasses.replace(ladder.RUNGS[n], train={
            **ladder.RUNGS[n].train, "max_iters": steps, "eval_interval": 10, "eval_iters": 2, "sample_tokens": 0}))
    real = time.strftime  # both ladders pressed in the same second
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "1202-0635" if fmt == "%m%d-%H%M%S" else real(fmt, *a))
    h = handlers  # one slot on a CPU: another student's long rung holds it
    msg, theirs = h.start_ladder("student-a", "addition", None, None, "char", 2048, "1")
    assert "queued" in msg
    msg, names = h.start_ladder("student-b", "addition", None, None, "char", 2048, "1-2")
    assert "queued" in msg, msg  # a ladder pressed in the same second as another gets names of its own
    assert len({theirs[0], *names}) == 3 and names[0].endswith("-rung1")
    assert h.m.active_job("student-b").state == "queued"
    msg = h.stop_ladder("student-b", names)
    assert "Cancelled the ladder at rung 1 while it waited in the queue: nothing of it was trained" in msg
    assert "weights are saved" not in msg
    h.m.stop("student-a", theirs[0])
    # the cancelled rung shows as stopped, and Go on climbs from it: rung 1 starts afresh, rung 2 after it
    wait_until(lambda: h._state(names[0], "student-b") == "stopped", timeout=60)
    msg, _ = h.go_on("student-b", names)
    assert "Going on with the ladder from rung 1: 2 rungs to go" in msg, msg
    wait_until(lambda: h.m.active_job("student-b") is not None and h.m.active_job("student-b").name == names[0])
    h.m.stop("student-b", names[0])
