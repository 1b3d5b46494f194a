"""`/start_rl` over raw HTTP: an RL run of a chat run, watched through /run_status; every bad field one sentence
naming it, and nothing queued."""

from __future__ import annotations

import json

import pytest

from helpers_app import launch_app, wait_until
from helpers_http import call_api
from helpers_rl import ADDER, chat_run, pretrained_run

pytestmark = pytest.mark.timeout(600)
#          parent, task, samples, temperature, max_seconds, max_iters, lr, batch_size, name, token
GOOD = [ADDER, "addition", 4, 1.0, -1, 3, 0, 2, "", ""]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    chat_run(root)
    pretrained_run(root)
    demo, url = launch_app(root)
    yield demo, url
    demo.close()
    demo.manager.shutdown()


def with_(**changed) -> list:
    names = ["parent", "task", "samples", "temperature", "max_seconds", "max_iters", "lr", "batch_size", "name",
             "token"]
    return [changed.get(n, v) for n, v in zip(names, GOOD)]


def test_start_rl_queues_an_rl_run_whose_rows_carry_the_reward(server):
    demo, url = server
    event, out = call_api(url, "start_rl", GOOD)
    assert event == "complete", out
    status = out[0]
    assert status["kind"] == "rl" and status["parent"] == ADDER and status["token"]
    run, token = status["name"], status["token"]
    assert run.startswith(f"{ADDER}-rl")
    wait_until(lambda: demo.manager.runs.summary(run).state in ("finished", "failed"), timeout=300, what="the RL run")
    event, out = call_api(url, "run_status", [run, token])
    assert event == "complete" and out[0]["state"] == "finished" and out[0]["task"] == "addition", out
    rows = out[0]["metrics"]
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 3 and "val_accuracy" in rows[-1]
    assert [s for s, _ in rows[-1]["rewards"]] == [1, 2, 3] and 0 <= rows[-1]["reward"] <= 1
    assert len(rows[-1]["sampled"][0]["answers"]) == 4  # k = 4 answers to each shown question
    event, out = call_api(url, "run_status", [run, ""])  # a stranger: the run is private
    assert event == "error" and f"There is no run named '{run}'" in json.dumps(out)


@pytest.mark.parametrize("changed, match", [
    (dict(parent=""), "Choose a chat run to reward"),
    (dict(parent="never-was"), "There is no run named 'never-was'"),
    (dict(parent="words-char"), "is not a chat model"),
    (dict(task=""), "Choose a built-in task"),
    (dict(task="poetry"), "Unknown task 'poetry'"),
    (dict(task=["addition"]), "task must be"),
    (dict(samples="eight"), "samples must be a whole number"),
    (dict(samples=3), "samples (answers per question) must be at least 4"),
    (dict(samples=2.5), "samples must be a whole number"),
    (dict(temperature="hot"), "temperature must be a finite number"),
    (dict(temperature=0), "temperature must be above 0"),
    (dict(temperature=2.5), "temperature must be at most 2"),
    (dict(max_seconds=-5), "max_seconds must be at least -1"),
    (dict(max_iters=-1), "max_iters must be at least 0"),
    (dict(lr="fast"), "lr must be a finite number"),
    (dict(batch_size=10**12), "batch_size must be at most"),
    (dict(token="forged"), "token"),
])
def test_every_bad_field_is_one_sentence_naming_it_and_nothing_is_queued(server, changed, match):
    demo, url = server
    before = sorted(p.name for p in demo.manager.root.iterdir())
    event, out = call_api(url, "start_rl", with_(**changed))
    assert event == "error" and match in json.dumps(out), out
    assert "Traceback" not in json.dumps(out) and str(demo.manager.root) not in json.dumps(out)
    assert sorted(p.name for p in demo.manager.root.iterdir()) == before
