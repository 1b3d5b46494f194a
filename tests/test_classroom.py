"""Issue 14, part A, without a browser: what a class stumbled on, each as the run service now answers it.

1. A resume keeps the whole curve (per-step losses and every evaluation), after an app restart and after
   an upload too; the status carries it as `history`.
4. The limit that ends a run is named, the bar follows it, and an ended run says why (`end_reason`).
7. A too-short text is refused at Start, before any run exists.
10. A stopped run reports the time it trained, not 0 s.
"""

from __future__ import annotations

import pytest

from gpt import checkpoint as ckpt
from gpt import history
from gpt.corpus import Corpus
from gpt.errors import DataError
from gpt.jobs import JobManager, RunStatus
from gpt.limits import Limits
from gpt.ui import frames, library

from helpers_app import addition, tiny_request, wait_until

pytestmark = pytest.mark.timeout(180)
LIMITS = Limits(max_concurrent_jobs=1, max_params=5_000_000, max_iters=1_000_000, max_upload_mb=5, max_new_tokens=500)


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", LIMITS, device="cpu")
    yield m
    m.shutdown()


def stop_after(m: JobManager, job, steps: int) -> None:
    wait_until(lambda: job.trainer is not None and job.trainer.step >= steps, what=f"{steps} steps")
    m.stop(job.owner, job.name)
    m.wait(job.name, 60)
    assert job.state == "stopped", job.error


def test_resume_keeps_every_step_and_evaluation_across_stops_and_restarts(manager, tmp_path):
    job = manager.start("alice", addition(), tiny_request(1_000_000, max_seconds=0))
    stop_after(manager, job, 25)
    before = manager.runs.step_losses(job.name)
    saved = ckpt.load_checkpoint(manager.root / job.name).step
    assert [s for s, _ in before] == list(range(1, saved + 1))  # every step up to the checkpoint
    again = manager.resume("alice", job.name)
    wait_until(lambda: again.trainer is not None and again.trainer.step >= saved + 25, what="resumed steps")
    assert manager.runs.step_losses(job.name)[:saved] == before  # live: the old curve, then the new steps
    manager.stop("alice", job.name)
    manager.wait(job.name, 60)
    final = ckpt.load_checkpoint(manager.root / job.name).step
    steps = manager.runs.step_losses(job.name)
    assert [s for s, _ in steps] == list(range(1, final + 1))  # one continuous curve, no gap at the resume
    status = manager.runs.status(job.name, "alice")
    assert [s for s, _ in status.history] == list(range(1, final + 1))
    assert status.metrics[0]["step"] == 0  # the evaluations from the first one on

    restarted = JobManager(manager.root, LIMITS, device="cpu")  # the app restarted: the files say the same
    try:
        assert restarted.runs.step_losses(job.name) == [(s, pytest.approx(v, rel=1e-4)) for s, v in steps]
        assert restarted.runs.status(job.name, "alice").to_json()["history"] == status.to_json()["history"]
    finally:
        restarted.shutdown()


def test_an_uploaded_run_shows_and_keeps_its_history_when_resumed(manager, tmp_path):
    job = manager.start("alice", addition(), tiny_request(30))
    manager.wait(job.name, 60)
    evaluations = [r["step"] for r in manager.runs.metrics(job.name)]
    file = tmp_path / "mine.safetensors"
    file.write_bytes((manager.root / job.name / ckpt.WEIGHTS).read_bytes())  # what a download gives
    name = library.import_checkpoint(manager, "bob", str(file))
    status = manager.runs.status(name, "bob")
    assert [r["step"] for r in status.metrics] == evaluations and len(status.history) == 30
    resumed = manager.resume("bob", name, more_iters=20)
    manager.wait(name, 60)
    assert resumed.state == "finished", resumed.error
    status = manager.runs.status(name, "bob")
    assert [r["step"] for r in status.metrics][: len(evaluations)] == evaluations
    assert [s for s, _ in status.history] == list(range(1, 51))


def test_history_is_downsampled_for_a_long_run():
    points = [(s, 5.0 - s / 10_000) for s in range(1, 20_001)]
    short = history.downsample(points, 1000)
    assert len(short) == 1000 and short[0][0] == pytest.approx(10.5) and short[-1][0] == pytest.approx(19_990.5)


def test_an_ended_run_says_why(manager):
    by_steps = manager.start("alice", addition(), tiny_request(20))
    manager.wait(by_steps.name, 60)
    status = manager.runs.status(by_steps.name, "alice")
    assert status.end_reason == "reached its 20 steps" and status.message == "Finished: reached its 20 steps."
    by_time = manager.start("alice", addition(), tiny_request(1_000_000, max_seconds=1))
    manager.wait(by_time.name, 60)
    status = manager.runs.status(by_time.name, "alice")
    assert status.end_reason == f"reached its 1 s time limit at step {status.step:,}"
    assert status.to_json()["end_reason"] == status.end_reason
    stopped = manager.start("alice", addition(), tiny_request(1_000_000))
    stop_after(manager, stopped, 5)
    status = manager.runs.status(stopped.name, "alice")
    assert status.end_reason == f"stopped by you at step {status.step:,}"
    restarted = JobManager(manager.root, LIMITS, device="cpu")  # read back from the folder
    try:
        assert restarted.runs.status(stopped.name, "alice").end_reason == status.end_reason
        assert "end_reason" in restarted.runs.status(by_steps.name, None).to_json()
    finally:
        restarted.shutdown()


def test_a_stopped_run_reports_the_time_it_trained(manager):
    job = manager.start("alice", addition(), tiny_request(1_000_000, max_seconds=0))
    wait_until(lambda: job.trainer is not None and job.trainer.elapsed > 1.0, what="a second of training")
    manager.stop("alice", job.name)
    manager.wait(job.name, 60)
    status = manager.runs.status(job.name, "alice")
    assert status.elapsed_s >= 1.0  # not the last evaluation's (step 0: 0 s)
    assert "elapsed 0 s" not in frames.progress_html(status)


BASE = dict(name="r", owner=None, mine=True, shared=False, corpus="addition", tokenizer="char", model_type="gpt",
            params=30000, processes=1, best_val_loss=None, has_weights=True, created=0.0, updated=0.0,
            max_iters=2000, tokens_per_sec=1234.0, eta_s=12, n_params=30000, message="")


def test_the_progress_line_counts_in_the_limit_that_ends_the_run():
    timed = RunStatus(**BASE, state="running", step=797, elapsed_s=65, max_seconds=130, fraction=0.5)
    html = frames.progress_html(timed)
    assert "<b>1 min 05 s</b> of its 2 min 10 s time limit" in html and "width:50.0%" in html
    assert "process" not in html  # one process is not news
    assert timed.to_json()["limit"] == "stops after 2,000 steps or 2 min 10 s, whichever comes first"
    counted = RunStatus(**BASE, state="running", step=1500, elapsed_s=20, max_seconds=130, fraction=0.75)
    assert "step <b>1,500</b> / 2,000 (or 2 min 10 s, whichever comes first)" in frames.progress_html(counted)
    ended = RunStatus(**BASE, state="finished", step=1527, elapsed_s=130, max_seconds=130,
                      end_reason="reached its 2 min 10 s time limit at step 1,527")
    assert "Reached its 2 min 10 s time limit at step 1,527." in frames.progress_html(ended)
    starting = RunStatus(**{**BASE, "eta_s": None, "message": "GPU slice 1: starting (the GPU process loads the run)"},
                         state="running", step=0, elapsed_s=0, max_seconds=130)
    html = frames.progress_html(starting)  # issue 24, 6: no step timed yet, so no guess at the time left
    assert "left" not in html.split("run-message")[0] and "GPU slice 1: starting" in html


def test_a_too_short_text_is_refused_before_a_run_exists(manager):
    short = Corpus("pasted", "abc" * 10, "text")
    with pytest.raises(DataError, match="too short.*block size"):
        manager.start("alice", short, tiny_request(20, block_size=16))
    assert manager.runs.run_names() == []


def test_why_the_mask_shows_the_first_words_and_says_what_to_look_at():
    from gpt.ui.views import mask_view as mask

    assert mask.shown("\n\n  \n\t\nROMEO:\nthe first words\n\n") == "ROMEO:\nthe first words\n\n"
    assert mask.shown("  indented first line") == "  indented first line"
    assert "\n" not in mask.LOOK_AT and "What to look at" in mask.LOOK_AT and "garbage" in mask.LOOK_AT


def test_after_a_refresh_the_form_shows_the_run_on_screen(manager):
    from gpt.ui.train_tab import SLIDERS, TrainHandlers

    h = TrainHandlers(manager)
    assert h.restore_form("alice") == ({"__type__": "update"},) * (6 + len(SLIDERS))  # no run: the defaults stay
    job = manager.start("alice", addition(), tiny_request(20, n_layer=1, n_embd=16, lr=3e-3))
    manager.wait(job.name, 60)
    corpus, tokenizer, vocab, preset, model_type, architecture, *sliders = h.restore_form("alice")
    assert (corpus, tokenizer, preset, model_type, architecture) == ("addition", "char", "tiny", "gpt", "classic")
    assert dict(zip(SLIDERS, sliders)) == dict(n_layer=1, n_head=2, n_embd=16, block_size=16, dropout=0.0,
                                               batch_size=8, lr=3e-3, max_iters=20, max_seconds=0)


def test_the_compare_chart_takes_the_new_run_without_a_refresh(manager):
    from gpt.ui.train_tab import TrainHandlers

    h = TrainHandlers(manager)
    first = manager.start("alice", addition(), tiny_request(10))
    manager.wait(first.name, 60)
    shown = h.compare_choices("alice", None)["value"]
    second = manager.start("alice", addition(), tiny_request(10))
    assert second.name not in h.compare_choices("alice", shown)["value"]  # the old picker kept its choice
    assert h.compare_with_new("alice", shown)["value"] == [*shown, second.name]  # what Start now runs after it
    manager.wait(second.name, 60)


def test_a_dropdown_label_never_goes_stale_while_open():
    from gpt.ui.pickers import run_label

    running = RunStatus(**{**BASE, "name": "a", "state": "running", "step": 1339})
    assert "1,339" not in run_label(running) and "training" not in run_label(running)
    assert run_label(RunStatus(**{**BASE, "name": "a", "state": "finished", "step": 2000})).endswith("step 2,000")
