"""The RL panel (gpt.ui.rl_panel): its handlers as the page calls them (in Chromium, in the app's Chat tab:
tests/test_rl_browser.py).

The handlers run against a real run service with a small chat run that counts
letters (it answers '1' to most questions, right about 70% of the time, so
its sampled answers are some right and some wrong).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import gradio as gr
import pytest

from gpt.jobs import JobManager
from gpt.limits import Limits
from gpt.ui.rl_panel import SERIES, RLHandlers, answers_html, before_after_html, reward_frame
from helpers_app import wait_until
from helpers_rl import chat_run, pretrained_run

pytestmark = pytest.mark.timeout(600)
BIG = Limits(max_concurrent_jobs=1, max_params=5_000_000, max_iters=1_000_000)
COUNTER = "counter-chat"


@pytest.fixture(scope="module")
def counter(tmp_path_factory) -> Path:
    return chat_run(tmp_path_factory.mktemp("parents"), COUNTER, steps=100, task="count", block_size=48)


@pytest.fixture
def manager(tmp_path, counter):
    shutil.copytree(counter, tmp_path / "runs" / COUNTER)
    m = JobManager(tmp_path / "runs", BIG, device="cpu")
    yield m
    m.shutdown()


ROWS = [
    {"step": 0, "val_accuracy": 0.5, "held_out": [["What is 1 + 2?", "3", "4", False], ["What is 2 + 2?", "4", "4", True]]},
    {"step": 2, "val_accuracy": 0.75, "reward": 0.5, "rewards": [[1, 0.25], [2, 0.75]],
     "sampled": [{"question": "What is 3 + 4?", "expected": "7", "answers": [["7", 1.0], ["<b>8</b>", 0.0]]}],
     "held_out": [["What is 1 + 2?", "3", "3", True], ["What is 2 + 2?", "4", "4", True]]},
]


def test_the_reward_frame_has_every_steps_reward_each_evaluations_mean_and_accuracy():
    frame = reward_frame(ROWS, live=[(3, 1.0)])
    by = {name: list(zip(g["step"], g["value"])) for name, g in frame.groupby("series")}
    assert by[SERIES[0]] == [(1, 0.25), (2, 0.75), (3, 1.0)]
    assert by[SERIES[1]] == [(2, 0.5)] and by[SERIES[2]] == [(0, 0.5), (2, 0.75)]
    empty = reward_frame([])
    assert sorted(empty["series"]) == sorted(SERIES) and all(math.isnan(v) for v in empty["value"])


def test_sampled_answers_are_green_when_right_red_when_wrong_newest_first_and_escaped():
    page = answers_html([(2, ROWS[1]["sampled"]), (5, ROWS[1]["sampled"])])
    assert page.index("Step 2") < page.index("Step 5")  # in the order given: the caller puts the newest first
    assert '<span class="rl-answer right"' in page and "background:#dcfce7" in page and "✓ 7" in page
    assert '<span class="rl-answer wrong"' in page and "background:#fee2e2" in page and "✗ &lt;b&gt;8&lt;/b&gt;" in page
    assert "<b>8</b>" not in page and "1 of 2 shown answers right" in page


def test_before_and_after_shows_the_same_held_out_questions_at_step_zero_and_now():
    table = before_after_html(ROWS)
    assert "at step 0 and at step 2: 1 then 2 of 2 right" in table
    assert table.count("What is 1 + 2?") == 1 and "✗ 4" in table and "✓ 3" in table
    first = before_after_html(ROWS[:1])  # one evaluation so far: one column, not step 0 beside step 0
    assert "Held-out questions at step 0: 1 of 2 right" in first and first.count("<th>Step 0</th>") == 1
    assert "and at step 0" not in first and "✗ 4" in first and "✓ 4" in first


def test_the_chat_runs_offered_are_the_chat_runs_the_asker_may_see(manager):
    pretrained_run(manager.root)
    update = RLHandlers(manager).parents("alice")
    assert [v for _, v in update["choices"]] == [COUNTER] and update["value"] == COUNTER


def test_start_without_a_chat_run_or_with_a_bad_one_is_a_sentence(manager):
    h = RLHandlers(manager)
    msg, watched = h.start("alice", None, "count", 8, 1.0, 30)
    assert "Choose a chat run to reward" in msg and "msg-error" in msg and watched == gr.skip()
    pretrained_run(manager.root)
    msg, _ = h.start("alice", "words-char", "count", 8, 1.0, 30)
    assert "is not a chat model" in msg
    msg, _ = h.start("alice", COUNTER, "count", 8, 0, 30)
    assert "temperature must be above 0" in msg


def test_start_poll_and_stop_as_the_page_calls_them(manager):
    h = RLHandlers(manager)
    progress, *_ = h.poll("alice", None, None)
    assert "No RL run yet" in progress
    msg, watched = h.start("alice", COUNTER, "count", 4, 1.0, 600)
    assert watched.startswith(f"{COUNTER}-rl") and "started" in msg
    job = manager.job(watched)
    wait_until(lambda: job.trainer is not None and job.trainer.step >= 12, timeout=300, what="a dozen steps")
    progress, frame, answers, before_after, stop, sig = h.poll("alice", watched, None)
    assert watched in progress and stop["interactive"] is True
    steps = frame[frame["series"] == SERIES[0]]["step"].tolist()
    assert steps[:10] == list(range(1, 11)) and len(steps) >= 11  # the row's ten, then the live ones
    assert "rl-answer" in answers and "Step " in answers and "at step 0 and at step 10" in before_after
    assert f"Stopping **{watched}**" in h.stop("alice", watched)
    manager.wait(watched, 60)
    assert manager.runs.status(watched, "alice").state == "stopped"
    sig = h.poll("alice", watched, sig)[-1]
    assert h.poll("alice", watched, sig)[:5] == (gr.skip(),) * 5  # nothing new: nothing is sent again
