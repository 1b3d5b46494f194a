"""The Lesson tab's handlers, without a browser: steps on the Train tab's text, the ladder as queued runs."""

from __future__ import annotations

import dataclasses

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
    assert LessonHandlers.next_step("ladder") == "ladder"


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
