"""The one run service: a stranger learns nothing of a private run, a folder deleted under a run frees its owner,
a cancelled queued run stays visible to its owner, and the grep-able promises (one definition of each idea)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from gpt.errors import GPTError, TrainingError
from gpt.jobs import JobManager
from gpt.jobs.book import LOST
from gpt.jobs.manager import TEACHER
from gpt.limits import Limits
from helpers_app import addition, delete_by_hand, launch_app, tiny_request, wait_until
from helpers_http import call_api

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parent.parent
BIG = Limits(max_concurrent_jobs=1, max_params=5_000_000, max_iters=1_000_000)


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", BIG, device="cpu")
    yield m
    m.shutdown()


def test_over_raw_http_a_strangers_private_run_reads_as_no_run_at_all(tmp_path):
    """/stop_run, /resume_run, /delete_run, /run_status and /generate: one answer for a private run of someone else
    and for a run that never existed, so a stranger cannot learn that it is there."""
    demo, url = launch_app(tmp_path)
    try:
        event, alice = call_api(url, "start_run", ["addition", "char", "tiny", 20, -1, "", 0, "gpt", "", "", 0, 0, 0,
                                                   0, 0, 0, ""])
        assert event == "complete", alice
        run = alice[0]["name"]
        wait_until(lambda: demo.manager.runs.summary(run).state in ("finished", "stopped"), timeout=120,
                   what="alice's run")
        _, bob = call_api(url, "new_token", [])
        answers = {}
        for name in (run, "never-was-here"):
            for api, data in (("stop_run", [name, bob[0]]), ("resume_run", [name, 0, bob[0]]),
                              ("delete_run", [name, bob[0]]), ("run_status", [name, bob[0]]),
                              ("generate", [name, "1+", 5, 0.8, 0, 1.0, 1, bob[0]])):
                event, message = call_api(url, api, data)
                assert event == "error" and message, (api, message)
                answers[(api, name)] = json.dumps(message).replace(name, "NAME")
        for api in ("stop_run", "resume_run", "delete_run", "run_status", "generate"):
            assert answers[(api, run)] == answers[(api, "never-was-here")], api
            assert "There is no run named 'NAME'." in answers[(api, run)], answers[(api, run)]
        assert (demo.manager.root / run).is_dir()  # and nothing happened to it
    finally:
        demo.close()
        demo.manager.shutdown()


def test_a_folder_deleted_while_its_run_trains_ends_the_run_with_a_sentence_and_frees_its_owner(manager):
    job = manager.start("alice", addition(), tiny_request(1_000_000))
    wait_until(lambda: job.trainer is not None and job.trainer.step > 2, what="training")
    delete_by_hand(manager.root / job.name)
    status = manager.runs.status(job.name, "alice")
    assert status.state == "failed" and status.message == LOST  # its owner is told, not shown "no run"
    assert manager.runs.current_run("alice") == job.name
    with pytest.raises(TrainingError, match="was deleted from the server while it trained"):
        manager.stop("alice", job.name)
    with pytest.raises(GPTError, match="There is no run named"):  # a stranger still learns nothing
        manager.runs.summary(job.name, "bob")
    second = manager.start("alice", addition(), tiny_request(20))  # not "you already have a run in progress"
    wait_until(lambda: second.state == "finished", timeout=120, what="alice's new run")
    assert not (manager.root / job.name).exists()  # the lost run was never recreated without its owner file


def test_the_teacher_cancels_a_queued_run_and_its_owner_still_sees_it_with_who_and_why(manager):
    busy = manager.start("teacher", addition(), tiny_request(1_000_000))  # holds the one slot
    wait_until(lambda: busy.trainer is not None, what="the busy run")
    queued = manager.start("bob", addition(), tiny_request(20))
    said = manager.stop(TEACHER, queued.name)
    assert said.startswith(f"Cancelled **{queued.name}** while it waited in the queue") and "Its owner sees it" in said
    wait_until(lambda: queued.state == "stopped", what="the cancel")
    status = manager.runs.status(queued.name, "bob")
    assert status.end_reason == "cancelled by the teacher while it waited in the queue"
    assert "Resume starts it again" in status.message and manager.runs.current_run("bob") == queued.name
    assert queued.name in [r.name for r in manager.runs.list_runs("bob")]  # still in bob's Checkpoints list
    manager.stop("teacher", busy.name)
    manager.wait(busy.name, 60)
    again = manager.resume("bob", queued.name)  # nothing was saved: it starts over, settings checked again
    wait_until(lambda: again.state == "finished", timeout=120, what="bob's run, started again")


@pytest.mark.parametrize("idea, pattern", [
    ("the progress fraction", r"def progress_fraction\b"),
    ("the steps.jsonl writer", r"class StepLog\b"),
    ("the steps.jsonl reader", r"def read_steps\b"),
    ("the owner check", r"def check_owner\b"),
    ("the run start", r"def start\(self, owner: str, corpus"),
])
def test_each_idea_is_defined_once(idea, pattern):
    found = subprocess.run(["grep", "-rEn", pattern, "gpt", "app.py"], cwd=ROOT, capture_output=True, text=True).stdout
    found = [line for line in found.splitlines() if not line.startswith("gpt/jobs/runner.py")]  # its Protocol
    assert len(found) == 1, f"{idea}: {found}"
    assert len(re.findall(r'STEPS = "steps.jsonl"', (ROOT / "gpt" / "history.py").read_text())) == 1
