"""The class's side of the run service: a queue that says how long, live limits, names, the board.

No browser and no server: the scheduler, the queue estimate and the board
called directly, with tiny runs on the built-in 'addition' corpus and, for
the arithmetic of the estimate, made-up durations.
"""

from __future__ import annotations

import html
import json
from types import SimpleNamespace

import pytest

from gpt.errors import ConfigError, GPTError, TrainingError
from gpt.estimate import human_seconds
from gpt.jobs import folder as folders
from gpt.jobs.board import best_within, challenge_board
from gpt.jobs.labels import LABELS_FILE, Labels, check_label
from gpt.jobs.manager import TEACHER
from gpt.jobs.queue_eta import PREPARE_S, measured_pace, planned_seconds, start_times
from gpt.limits import Limits
from gpt.ui import frames
from gpt.ui.teacher import board_html

from helpers_app import addition, tiny_request, wait_until
from helpers_class import manager, training  # noqa: F401

pytestmark = pytest.mark.timeout(120)


# --- the estimate's arithmetic ------------------------------------------------------------------

def test_one_slot_queue_waits_for_every_run_ahead():
    # one run with 30 s left, then runs of 100, 50 and 10 s: each starts when the one before ends
    assert start_times([30.0], 1, [100.0, 50.0, 10.0]) == [30.0, 130.0, 180.0]


def test_two_slots_take_the_first_to_free():
    assert start_times([30.0, 5.0], 2, [100.0, 50.0, 10.0]) == [5.0, 30.0, 80.0]
    assert start_times([], 2, [100.0, 50.0, 10.0]) == [0.0, 0.0, 50.0]


def test_a_lowered_slot_count_waits_for_the_extra_runs_to_finish():
    # three train, the teacher allows one: the next run starts only when all three are done
    assert start_times([10.0, 20.0, 40.0], 1, [5.0, 5.0]) == [40.0, 45.0]


def test_the_class_time_per_run_cuts_the_planned_time():
    job = SimpleNamespace(plan=(500.0, None, 0.0))  # 500 s by its shape, no time limit of its own
    assert planned_seconds(job, Limits(), "cpu") == 500.0
    assert planned_seconds(job, Limits(max_run_seconds=60), "cpu") == PREPARE_S + 60
    job = SimpleNamespace(plan=(500.0, 130.0, 100.0))  # resumed: 100 of its 130 s are spent
    assert planned_seconds(job, Limits(), "cpu") == PREPARE_S + 30


def test_the_pace_measured_now_scales_the_estimate():
    from gpt import estimate
    from gpt.model import GPTConfig

    cfg = GPTConfig(vocab_size=13, n_layer=1, n_head=2, n_embd=16, block_size=16)
    estimated = estimate.step_seconds(cfg, 8, "cpu")
    trainer = SimpleNamespace(progress={"tokens_per_sec": 8 * 16 / (2 * estimated)},  # twice as slow as estimated
                              config=SimpleNamespace(batch_size=8), model_config=cfg)
    assert measured_pace([SimpleNamespace(trainer=trainer)], "cpu") == pytest.approx(2.0)
    assert measured_pace([SimpleNamespace(trainer=None)], "cpu") == 1.0
    job = SimpleNamespace(plan=(PREPARE_S + 100.0, None, 0.0))
    assert planned_seconds(job, Limits(), "cpu", pace=0.5) == PREPARE_S + 50.0


# --- the live queue --------------------------------------------------------------------------------

def test_queued_runs_say_their_position_and_when_they_start(manager):
    a = manager.start("alice", addition(), tiny_request(1_000_000, max_seconds=20))
    wait_until(lambda: a.trainer is not None and a.trainer.progress.get("eta_s"), what="alice's speed")
    b = manager.start("bob", addition(), tiny_request(1_000_000, max_seconds=7))
    c = manager.start("carol", addition(), tiny_request(20))
    sb, sc = manager.runs.status(b.name, "bob"), manager.runs.status(c.name, "carol")
    left = a.trainer.progress["eta_s"]
    assert sb.queue_position == 1 and sc.queue_position == 2
    assert 0 < sb.starts_in_s <= 20 and abs(sb.starts_in_s - left) < 3  # when alice's 20 s are up
    assert sc.starts_in_s == pytest.approx(sb.starts_in_s + PREPARE_S + 7, abs=1.5)  # then bob's 7 s
    out = sc.to_json()
    assert out["queue_position"] == 2 and out["eta_s"] == sc.starts_in_s and "label" not in out
    assert "starts in about" in frames.progress_html(sc)
    # the estimate follows the clock: a second later bob starts a second sooner
    wait_until(lambda: manager.runs.status(b.name, "bob").starts_in_s < sb.starts_in_s - 0.5, what="less wait")
    assert manager.runs.summary(a.name, "alice").starts_in_s is None  # a running run waits for nothing


def test_raising_the_concurrent_runs_starts_a_queued_run_at_once(manager):
    a = manager.start("alice", addition(), tiny_request(1_000_000))
    b = manager.start("bob", addition(), tiny_request(1_000_000))
    wait_until(lambda: a.state == "running", what="alice trains")
    assert b.state == "queued"
    manager.set_limits(manager.limits.with_class_limits(0, 2, manager.limits.max_params))
    wait_until(lambda: b.state == "running", timeout=10, what="bob starts")
    assert manager.queue_position(b.name) is None


def test_lowering_the_time_per_run_ends_a_running_run_that_long_after_it_is_set(manager):
    a = training(manager, "alice")
    wait_until(lambda: a.trainer is not None and a.trainer.elapsed > 3, what="three seconds of training")
    before, step = a.trainer.elapsed, a.trainer.step
    manager.set_limits(manager.limits.with_class_limits(3, 1, manager.limits.max_params))
    live = manager.runs.status(a.name, "alice")
    assert "the class's limit of 3 s per run, set by the teacher at" in live.limit  # what the page says now
    assert html.escape("by the class's limit of 3 s per run") in frames.progress_html(live)
    manager.wait(a.name, 60)
    assert a.state == "finished"  # it reached the class's time, then saved: not stopped, not failed
    status = manager.runs.status(a.name, "alice")
    assert status.step >= step + 3  # the limit applies from when it was set (3 s more), not from the run's start
    assert status.end_reason.startswith("reached the class's limit of 3 s per run, set by the teacher at ")
    assert f"when it had trained {human_seconds(before)}"[:30] in status.end_reason


def test_a_new_run_gets_the_class_time_per_run(manager):
    from gpt.ui.train_tab import TrainHandlers

    manager.set_limits(manager.limits.with_class_limits(1, 1, manager.limits.max_params))
    _, ends = TrainHandlers(manager).estimate(65, "tiny", "gpt", "classic", 1, 2, 16, 16, 0.0, 8, 3e-3, 1_000_000, 600)
    assert ends.startswith("Ends at **1 s**, the class's limit of 1 s per run, set by the teacher at ")
    a = manager.start("alice", addition(), tiny_request(1_000_000, max_seconds=600))
    manager.wait(a.name, 30)
    status = manager.runs.status(a.name, "alice")
    assert a.state == "finished" and status.elapsed_s < 600 and "the class's limit of 1 s" in status.end_reason


def test_class_limits_name_the_field_of_a_bad_value():
    for args, field in [((-1, 1, 10), "Time per run"), ((0, 0, 10), "Runs at the same time"),
                        ((0, 1, "lots"), "Largest model"), ((0, 1.5, 10), "Runs at the same time")]:
        with pytest.raises(ConfigError, match=field):
            Limits().with_class_limits(*args)
    assert Limits.from_env({"GPT_MAX_RUN_SECONDS": "90"}).max_run_seconds == 90
    assert Limits().cap_seconds(None) is None and Limits(max_run_seconds=90).cap_seconds(None) == 90
    assert Limits(max_run_seconds=90).cap_seconds(130) == 90 and Limits(max_run_seconds=90).cap_seconds(30) == 30


def test_the_teacher_may_stop_and_delete_any_run_and_a_student_may_not(manager):
    a = training(manager, "alice")
    with pytest.raises(GPTError, match="There is no run named"):  # a stranger learns nothing of a private run
        manager.stop("bob", a.name)
    with pytest.raises(GPTError, match="There is no run named"):
        manager.stop(repr(TEACHER), a.name)  # the sentinel's text is just another string
    manager.stop(TEACHER, a.name)
    manager.wait(a.name, 30)
    assert a.state == "stopped"
    manager.delete(TEACHER, a.name)
    assert not (manager.root / a.name).exists()


# --- names and the board ---------------------------------------------------------------------------

def test_a_display_name_is_checked_and_stored_with_the_owners_runs(manager):
    for bad, words in [("", "empty"), ("   ", "empty"), ("x" * 41, "41 characters"), ("a\x00b", "control")]:
        with pytest.raises(ConfigError, match=words):
            check_label(bad)
    assert check_label("  Ada   Lovelace ") == "Ada Lovelace"
    a = manager.start("alice", addition(), tiny_request(20))
    manager.wait(a.name, 60)
    manager.labels.set("alice", "<b>Ada</b>")
    assert folders.app_info(manager.root, a.name)["label"] == "<b>Ada</b>"
    assert json.loads((manager.root / LABELS_FILE).read_text())["alice"] == "<b>Ada</b>"
    again = Labels(manager.root)  # after a restart
    assert again.display("alice") == "<b>Ada</b>"
    assert again.display("zed") == "unnamed 1" and again.display("yan") == "unnamed 2" and again.display("zed") == "unnamed 1"
    assert "zed" not in again.display("zed") and again.display(None) == "(ships with the app)"


def test_best_within_ignores_evaluations_after_the_time():
    rows = [{"step": 10, "val_bpc": 3.0, "elapsed_s": 10}, {"step": 60, "val_bpc": 2.0, "elapsed_s": 60},
            {"step": 200, "val_bpc": 1.0, "elapsed_s": 200}]
    assert best_within(rows, 60)["val_bpc"] == 2.0
    assert best_within(rows, 300)["val_bpc"] == 1.0
    assert best_within(rows, 5) is None


def test_the_untrained_step_0_evaluation_never_ranks_a_run(manager):
    """Every run is evaluated at step 0 (about log2(vocab) / chars per token: 4.47 bits/char for a 65-character
    vocabulary); the board counts only evaluations after training, and lists a run without one unranked."""
    trained = manager.start("alice", addition(), tiny_request(120, shared=True))
    manager.wait(trained.name, 60)
    untrained = manager.start("bob", addition(), tiny_request(40, shared=True))
    manager.wait(untrained.name, 60)
    (manager.root / untrained.name / "metrics.jsonl").write_text(  # as if bob's run had trained no step yet
        (manager.root / untrained.name / "metrics.jsonl").read_text().splitlines()[0] + "\n")
    assert [r["step"] for r in manager.runs.metrics(untrained.name)] == [0]
    assert best_within(manager.runs.metrics(untrained.name), 600) is None
    board = challenge_board(manager, 600)
    assert [(r.run, r.rank) for r in board] == [(trained.name, 1), (untrained.name, None)]
    assert board[0].step > 0 and board[1].val_bpc is None and board[1].student == "unnamed 2"
    html_board = board_html(manager, 600)
    assert f'data-run="{untrained.name}" data-ranked="false"' in html_board and "not yet" in html_board


def test_the_board_ranks_each_students_best_shared_run(manager):
    slow = manager.start("alice", addition(), tiny_request(5, shared=True))
    manager.wait(slow.name, 60)
    fast = manager.start("alice", addition(), tiny_request(120, shared=True))
    manager.wait(fast.name, 60)
    bob = manager.start("bob", addition(), tiny_request(40, shared=True))
    manager.wait(bob.name, 60)
    hidden = manager.start("carol", addition(), tiny_request(200))  # not shared: not on the board
    manager.wait(hidden.name, 60)
    manager.labels.set("bob", "Bob")
    board = challenge_board(manager, 600)
    assert [r.run for r in board] == [fast.name, bob.name]  # alice's better run, then bob's
    assert [r.rank for r in board] == [1, 2] and board[0].student == "unnamed 1" and board[1].student == "Bob"
    assert board[0].val_bpc < board[1].val_bpc
    assert all(r.rank is None for r in challenge_board(manager, -5))  # nothing evaluated within no time: unranked
