"""Identity that cannot be forged: the attacks of the hardening probe, tried again, and failing.

A stranger knows only what the server sent them. They call the page's own
events by fn_index over raw HTTP with another person's owner id, forge a
token, reuse a run name, flood the queue with fresh identities: none of it
reaches anyone else's private run.
"""

from __future__ import annotations

import json
import logging

import pytest

from gpt.errors import GPTError, TrainingError
from gpt.jobs import JobManager
from gpt.jobs.signing import IdentityError, Signer
from gpt.limits import Limits
from helpers_app import addition, delete_by_hand, launch_app, tiny_request, wait_until
from helpers_http import call_event, fn_index

BIG = Limits(max_params=10_000_000, max_iters=1_000_000, max_batch_size=64)


def test_tokens_are_signed_and_ids_alone_are_worth_nothing(tmp_path):
    signer = Signer(tmp_path)
    token = signer.issue()
    owner = signer.owner(token)
    assert len(owner) == 32 and signer.issue(owner) == token  # the same person keeps the same token
    assert signer.owner(owner) == ""  # the bare id (what a leak would give) is not a token
    forged = owner + "." + "0" * 32
    assert signer.owner(forged) == "" and signer.owner("api-abc") == "" and signer.owner(None) == ""
    assert signer.owner(token[:-1] + ("1" if token[-1] == "0" else "0")) == ""
    with pytest.raises(IdentityError, match="not one this server issued"):
        signer.require(forged)
    assert Signer(tmp_path).owner(token) == owner  # the key survives a restart (kept in the runs folder)
    assert oct((tmp_path / ".identity_key").stat().st_mode & 0o777) == "0o600"


def test_the_page_events_called_by_hand_with_someone_elses_id_see_nothing_of_theirs(tmp_path):
    demo, url = launch_app(tmp_path / "runs", GPT_MAX_ITERS=1000)
    try:
        victim_token = demo.manager.identity.issue()
        victim = demo.manager.identity.owner(victim_token)
        job = demo.manager.start(victim, addition(), tiny_request(20))
        demo.manager.wait(job.name, 60)
        assert job.state == "finished"
        table = fn_index(demo, "runs_table")
        delete = fn_index(demo, "delete")
        mine = call_event(url, table, [victim_token, None])  # the victim's own browser sees the run
        assert job.name in json.dumps(mine["output"])
        for forged in (victim, f"{victim}.{'0' * 32}", "api-" + victim):
            seen = call_event(url, table, [forged, None])
            assert seen["success"] and job.name not in json.dumps(seen["output"]), forged
            gone = call_event(url, delete, [forged, job.name])
            assert job.name in demo.manager.runs.run_names()  # still there
            assert "Deleted" not in json.dumps(gone.get("output"))  # refused, one way or another
    finally:
        demo.close()
        demo.manager.shutdown()


def test_no_response_carries_an_owner_id(tmp_path):
    m = JobManager(tmp_path / "runs", BIG, device="cpu")
    job = m.start("a" * 32, addition(), tiny_request(20, shared=True))
    m.wait(job.name, 60)
    for status in (m.runs.status(job.name, "b" * 32), *m.runs.list_runs("b" * 32)):
        text = json.dumps(status.to_json())
        assert "a" * 32 not in text and "owner" not in status.to_json() and status.to_json()["whose"] == "shared"


def test_a_cancelled_run_name_is_never_given_to_someone_else(tmp_path):
    m = JobManager(tmp_path / "runs", BIG, device="cpu")
    busy = m.start("teacher", addition(), tiny_request(1_000_000))  # holds the one slot
    wait_until(lambda: m.runs.live_trainer(busy.name) is not None, what="training")
    alice = m.start("alice", addition(), tiny_request(20))
    m.stop("alice", alice.name)  # cancelled while queued: it stays, marked cancelled, for alice
    wait_until(lambda: m.runs.summary(alice.name, "alice").state == "stopped", what="the cancel")
    bob = m.start("bob", addition(), tiny_request(20))
    assert bob.name != alice.name  # the name alice's page still remembers is never bob's
    assert m.runs.current_run("alice") == alice.name  # alice's Train tab shows her cancelled run, nothing of bob's
    with pytest.raises(GPTError, match="exists or existed"):
        m.start("carol", addition(), tiny_request(20), name=alice.name)
    m.stop("teacher", busy.name)
    m.shutdown()


def test_fresh_identities_cannot_flood_the_queue(tmp_path):
    m = JobManager(tmp_path / "runs", Limits(max_iters=1_000_000, max_queue=3, max_runs_per_address=2), device="cpu")
    first = m.start("p0", addition(), tiny_request(1_000_000), address="10.1.1.1")
    m.start("p1", addition(), tiny_request(10), address="10.1.1.1")
    with pytest.raises(TrainingError, match="GPT_MAX_RUNS_PER_ADDRESS"):
        m.start("p2", addition(), tiny_request(10), address="10.1.1.1")  # a fresh id, the same address
    m.start("q1", addition(), tiny_request(10), address="10.2.2.2")
    m.start("q2", addition(), tiny_request(10), address="10.3.3.3")
    wait_until(lambda: m.runs.live_trainer(first.name) is not None, what="the first run to train")
    with pytest.raises(TrainingError, match="queue is full"):
        m.start("q3", addition(), tiny_request(10), address="10.4.4.4")
    m.shutdown(timeout=60)


def test_a_refusal_is_one_log_line(caplog):
    from gpt.ui.messages import refuse

    with caplog.at_level(logging.INFO, logger="gpt.ui"):
        with pytest.raises(Exception) as info:
            refuse(TrainingError("Run 'x' belongs to someone else."))
    assert "belongs to someone else" in str(info.value) and getattr(info.value, "print_exception", True) is False
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()


def test_a_run_folder_deleted_mid_training_is_not_recreated_without_its_owner(tmp_path):
    m = JobManager(tmp_path / "runs", BIG, device="cpu")
    job = m.start("alice", addition(), tiny_request(1_000_000))
    wait_until(lambda: m.runs.live_trainer(job.name) is not None and job.trainer.step > 2, what="training")
    delete_by_hand(job.path)
    m.wait(job.name, 60)
    assert job.state == "failed" and "deleted while it trained" in job.error
    assert not job.path.exists()  # not recreated as an ownerless, public run


def test_start_run_fields_of_the_wrong_type_get_a_sentence_naming_the_field():
    import inspect

    from gpt.errors import ConfigError
    from gpt.ui.api import Api, _check_start

    base = {k: v.default for k, v in inspect.signature(Api.start_run).parameters.items() if k not in ("self", "request")}
    for bad, field in ((dict(n_layer="abc"), "n_layer"), (dict(corpus=[1]), "corpus"), (dict(max_seconds="abc"),
                       "max_seconds"), (dict(max_iters=float("nan")), "max_iters"), (dict(name=5), "name"),
                       (dict(batch_size=1e30), "batch_size"), (dict(text={"a": 1}), "text")):
        with pytest.raises(ConfigError, match=field):
            _check_start({**base, **bad})
    _check_start(base)  # the defaults pass
