"""An RL run is an ordinary run of the one run service: a chat run a person may see, rewarded by a task's grader,
with the queue, Stop/Resume, checkpoints, limits and GPU slices of any run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.corpus import Corpus
from gpt.errors import GPTError
from gpt.jobs import JobManager, RunRequest
from gpt.jobs import kinds
from gpt.limits import Limits
from helpers_app import wait_until
from helpers_rl import ADDER, chat_run, pretrained_run

pytestmark = pytest.mark.timeout(600)
BIG = Limits(max_concurrent_jobs=1, max_params=5_000_000, max_iters=1_000_000)


@pytest.fixture
def manager(tmp_path):
    chat_run(tmp_path / "runs")
    m = JobManager(tmp_path / "runs", BIG, device="cpu")
    yield m
    m.shutdown()


def rl(parent: str = ADDER, task: str | None = "addition", **kw) -> RunRequest:
    return RunRequest(kind="rl", parent=parent, task=task, **{"samples": 4, "batch_size": 4, "max_iters": 20,
                                                              "max_seconds": 0, **kw})


def same_weights(a: Path, b: Path) -> bool:
    x, y = ckpt.load_checkpoint(a).model.state_dict(), ckpt.load_checkpoint(b).model.state_dict()
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_an_rl_runs_step_zero_is_its_parents_weights(manager, tmp_path):
    parent = manager.root / ADDER
    out = tmp_path / "step0"
    request = rl()
    corpus = Corpus("addition", "", "task")  # what the run service makes of a built-in task
    _, train_cfg = kinds.check(corpus, request, manager.limits, "cpu", None, parent)
    note = kinds.write_initial(out, request, corpus, parent, manager.limits, train_cfg, kinds.meta(request, corpus))
    assert note == f"Starts from {ADDER} at step 150." and same_weights(out, parent)
    saved = ckpt.load_checkpoint(out)
    assert saved.step == 0 and saved.meta["parent"] == ADDER and saved.meta["task"] == "addition"
    assert saved.meta["samples"] == 4 and saved.meta["temperature"] == 1.0 and saved.meta["train"]["lr"] == 1e-4


def test_an_rl_run_rewards_a_chat_run_as_an_ordinary_run(manager):
    job = manager.start("alice", None, rl(temperature=1.2))
    wait_until(lambda: job.state in ("finished", "failed", "stopped"), timeout=300, what="the RL run")
    assert job.state == "finished", job.error
    assert job.name.startswith(f"{ADDER}-rl")
    rows = ckpt.read_metrics(manager.root / job.name)
    assert [r["step"] for r in rows] == [0, 10, 20]
    assert all(0 <= r["val_accuracy"] <= 1 for r in rows)
    assert [s for s, _ in rows[1]["rewards"]] == list(range(1, 11)) and 0 <= rows[2]["reward"] <= 1
    assert len(rows[2]["sampled"]) == 3 and all(len(g["answers"]) == 4 for g in rows[2]["sampled"])
    status = manager.runs.status(job.name, "alice")
    assert status.kind == "rl" and status.parent == ADDER and status.task == "addition" and status.chat
    assert status.grown == f"Starts from {ADDER} at step 150."
    saved = ckpt.load_checkpoint(manager.root / job.name)
    assert saved.meta["temperature"] == 1.2 and saved.meta["samples"] == 4
    assert manager.runs.status(ADDER, "alice").state == "finished"  # the parent is untouched


def test_an_rl_run_stops_and_resumes_where_it_was(manager):
    job = manager.start("alice", None, rl(max_iters=100_000))
    wait_until(lambda: job.trainer is not None and job.trainer.step > 3, timeout=120, what="training")
    manager.stop("alice", job.name)
    manager.wait(job.name, 60)
    stopped_at = ckpt.load_checkpoint(manager.root / job.name).step
    again = manager.resume("alice", job.name)
    wait_until(lambda: again.trainer is not None and again.trainer.step > stopped_at + 2, timeout=120, what="more")
    assert again.trainer.objective.name == "rl" and again.trainer.objective.config.samples == 4
    manager.stop("alice", job.name)
    manager.wait(job.name, 60)
    assert ckpt.load_checkpoint(manager.root / job.name).step > stopped_at


def test_bad_inputs_are_refused_at_start_with_a_sentence_and_nothing_is_made(manager):
    pretrained_run(manager.root)
    before = set(manager.runs.run_names())
    cases = [
        (rl(parent="words-char"), "Run 'words-char' is not a chat model: fine-tune it on conversations first"),
        (rl(samples=2), r"samples \(answers per question\) must be at least 4, got 2"),
        (rl(samples=40), r"samples \(answers per question\) must be at most 16, got 40"),
        (rl(temperature=0), "temperature must be above 0"),
        (rl(task="count"), "count uses .* characters that chat run 'adder-chat' has never written"),
        (rl(task="poetry"), "Unknown task 'poetry'"),
        (rl(parent="nobody"), "There is no run named 'nobody'"),
    ]
    for request, sentence in cases:
        with pytest.raises(GPTError, match=sentence):
            manager.start("alice", None, request)
    assert set(manager.runs.run_names()) == before


def test_someone_elses_private_chat_run_cannot_be_rewarded(manager):
    job = manager.start("alice", None, rl())
    wait_until(lambda: job.state in ("finished", "failed"), timeout=300, what="alice's run")
    with pytest.raises(GPTError, match="There is no run named"):
        manager.start("bob", None, rl(parent=job.name))
    again = manager.start("alice", None, rl(parent=job.name, max_iters=2))  # one's own RL run: RL again
    wait_until(lambda: again.state in ("finished", "failed"), timeout=300, what="RL on RL")
    assert again.state == "finished", again.error


def test_an_rl_run_trains_in_gpu_slices_like_any_run(tmp_path):
    """ZeroGPU: the parent's copy is written on the CPU before the first slice; the slices train and sample."""
    from gpt.jobs.slice_runner import SliceRunner
    from gpt.jobs.slices import train_slice
    from gpt.jobs.zerogpu import SliceSettings, StandIn

    chat_run(tmp_path / "runs")
    m = JobManager(tmp_path / "runs", BIG, device="cpu", runner=SliceRunner(StandIn(train_slice, 20), SliceSettings(20, 4)))
    job = m.start("alice", None, rl(max_iters=30))
    for _ in range(20):
        if not m.runner.wants_slice(job.name):
            break
        m.run_slice("alice", job.name)
    status = m.runs.status(job.name, "alice")
    assert status.state == "finished" and status.step == 30 and status.kind == "rl" and status.parent == ADDER
    rows = ckpt.read_metrics(m.root / job.name)
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 30 and "reward" in rows[-1]
