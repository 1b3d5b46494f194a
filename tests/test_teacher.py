"""The teacher's page: it exists only with GPT_TEACHER_TOKEN, and nobody without the token gets anything from it.

The handlers are called as plain functions first; then a real server is
attacked the ways a student could: gradio_client, and the raw queue
(/gradio_api/queue/join with an fn_index read from the public /config), with
no token, a wrong one and one that differs by a character. Each attack is
followed by a check that nothing happened (the run still trains, nothing
was shown), and the same call with the real token is shown to work, so the
attack really reached the handler.
"""

from __future__ import annotations

import json

import gradio as gr
import pytest

from gpt.errors import ConfigError
from gpt.jobs import JobManager, class_limits
from gpt.jobs import folder as folders
from gpt.limits import Limits
from gpt.ui.api import Api
from gpt.ui.name_field import NameHandlers
from gpt.ui.teacher import WRONG, Gate, TeacherHandlers, board_html, build_teacher_page, runs_html, teacher_token

from helpers_app import addition, tiny_request, wait_until
from helpers_class import ONE_AT_A_TIME, TOKEN, call_event, fn_index, get, launch_class_app, manager, training  # noqa: F401

pytestmark = pytest.mark.timeout(180)
LIMITS = ONE_AT_A_TIME


@pytest.fixture
def teacher(manager):
    return TeacherHandlers(manager, Gate(TOKEN))


def manager_teacher():
    from gpt.jobs.manager import TEACHER

    return TEACHER


# --- the token ----------------------------------------------------------------------------------

def test_the_page_needs_a_token_of_some_length():
    assert teacher_token({}) is None and teacher_token({"GPT_TEACHER_TOKEN": "  "}) is None
    assert teacher_token({"GPT_TEACHER_TOKEN": " long-enough "}) == "long-enough"
    with pytest.raises(ConfigError, match="GPT_TEACHER_TOKEN must be at least 8"):
        teacher_token({"GPT_TEACHER_TOKEN": "short"})


def test_the_gate_opens_for_the_token_only():
    gate = Gate(TOKEN)
    assert gate.opens(TOKEN) and gate.opens(f" {TOKEN}\n")
    for wrong in ("", None, TOKEN[:-1], TOKEN + "x", TOKEN.upper(), 12345, ["x"], "é" * 20):
        assert not gate.opens(wrong)
    assert TOKEN not in repr(gate) and TOKEN not in str(vars(gate).keys())


def test_without_the_token_no_page_is_added():
    from gpt.ui.teacher import build_teacher_page

    with gr.Blocks() as demo:
        gr.Markdown("main")
    assert build_teacher_page(demo, None, env={}) is False
    assert all(p[0] != "teacher" for p in demo.pages)


# --- the handlers -------------------------------------------------------------------------------

def test_a_wrong_token_gets_a_sentence_and_nothing_else(manager, teacher):
    job = training(manager, "alice")
    msg, panel, *limits = teacher.unlock("guess")
    assert WRONG in msg and panel["visible"] is False and limits == [None, None, None]
    skipped = teacher.refresh("guess", 120, None)
    assert all(isinstance(x, dict) and x.get("__type__") == "update" and len(x) == 1 for x in skipped[:3])
    assert WRONG in teacher.stop("guess", job.name) and job.state == "running"
    assert WRONG in teacher.delete("guess", job.name, job.name)[0]
    assert WRONG in teacher.share("guess", job.name) and not folders.app_info(manager.root, job.name)["shared"]
    assert WRONG in teacher.set_limits("guess", 1, 5, 1) and manager.limits == LIMITS


def test_the_teacher_sees_every_run_with_names_never_owner_ids(manager, teacher):
    a = training(manager, "owner-id-alice-0001")
    b = manager.start("owner-id-bob-0002", addition(), tiny_request(20))
    manager.labels.set("owner-id-bob-0002", "<script>alert(1)</script>")
    msg, panel, seconds, jobs, params = teacher.unlock(TOKEN)
    assert panel["visible"] is True and (seconds, jobs, params) == (0, 1, 5.0)
    table, picker, board, sig = teacher.refresh(TOKEN, 120, None)
    assert a.name in table and b.name in table and "unnamed 1" in table and "#1, starts in ~" in table
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in table and "<script>" not in table
    assert "owner-id" not in table and {c[0] if isinstance(c, tuple) else c for c in picker["choices"]} == \
        {a.name, b.name}
    manager.stop(manager_teacher(), a.name)
    manager.wait(b.name, 60)
    _, _, _, sig = teacher.refresh(TOKEN, 120, None)
    assert teacher.refresh(TOKEN, 120, sig)[:3] == (gr.skip(),) * 3  # nothing new: nothing sent


def test_the_teacher_stops_shares_and_deletes_any_run(manager, teacher):
    a = training(manager, "alice")
    assert "Stopping" in teacher.stop(TOKEN, a.name)
    manager.wait(a.name, 30)
    assert a.state == "stopped"
    assert "shared with everyone" in teacher.share(TOKEN, a.name)
    assert manager.runs.visible("bob", a.name)
    assert "no longer shared" in teacher.share(TOKEN, a.name) and not manager.runs.visible("bob", a.name)
    msg, armed = teacher.delete(TOKEN, a.name, "")
    assert "again" in msg and armed == a.name and (manager.root / a.name).exists()
    msg, armed = teacher.delete(TOKEN, a.name, armed)
    assert "Deleted" in msg and not (manager.root / a.name).exists()
    assert "no run named" in teacher.stop(TOKEN, "nope")


def test_the_teacher_sets_the_class_limits_live(manager, teacher):
    assert "at least 0, got -5" in teacher.set_limits(TOKEN, -5, 1, 1) and manager.limits == LIMITS
    assert "Largest model" in teacher.set_limits(TOKEN, 60, 1, None)
    msg = teacher.set_limits(TOKEN, 60, 3, 0.5)
    assert "1 min 00 s per run, 3 at the same time" in msg
    assert (manager.limits.max_run_seconds, manager.limits.max_concurrent_jobs, manager.limits.max_params) == \
        (60, 3, 500_000)


@pytest.mark.parametrize("values, says", [
    ((1e308, 1, 1), "Time per run (seconds) must be at most 86,400, got about 1e+308"),
    ((-1, 1, 1), "Time per run (seconds) must be at least 0, got -1"),
    ((60, 1.5, 1), "Runs at the same time must be a positive whole number, got 1.5"),
    ((60, 1e12, 1), "Runs at the same time must be at most 64, got 1,000,000,000,000"),
    ((60, 0, 1), "Runs at the same time must be a positive whole number, got 0"),
    ((60, 1, 1e9), "Largest model (millions of parameters) must be at most 2000, got 1e+09"),
    ((60, 1, 0), "Largest model (millions of parameters) must be at least 0.001, got 0"),
    ((60, 1, float("nan")), "Largest model (millions of parameters) must be a finite number, got nan"),
    (("abc", 1, 1), "Time per run (seconds) must be a whole number, got 'abc'"),
])
def test_each_class_limit_has_a_range_and_the_sentence_says_which_end(manager, teacher, values, says):
    msg = teacher.set_limits(TOKEN, *values)
    assert says in msg and len(msg) < 300, msg
    assert manager.limits == LIMITS and not (manager.root / class_limits.FILE).exists()


def test_the_class_limits_survive_a_restart(manager, teacher):
    assert "Applied" in teacher.set_limits(TOKEN, 90, 3, 0.5)
    saved = json.loads((manager.root / class_limits.FILE).read_text())
    assert saved == {"max_run_seconds": 90, "max_concurrent_jobs": 3, "max_params": 500_000}
    restarted = JobManager(manager.root, LIMITS, device="cpu")
    with gr.Blocks() as demo:
        gr.Markdown("main page")
    assert build_teacher_page(demo, restarted, env={"GPT_TEACHER_TOKEN": TOKEN})
    assert (restarted.limits.max_run_seconds, restarted.limits.max_concurrent_jobs, restarted.limits.max_params) == \
        (90, 3, 500_000)
    (manager.root / class_limits.FILE).write_text('{"max_run_seconds": 1e400, "max_concurrent_jobs": [[[' + "[" * 5000)
    assert not class_limits.restore(JobManager(manager.root, LIMITS, device="cpu"))  # damaged: the env's hold
    (manager.root / class_limits.FILE).write_text(json.dumps({**saved, "max_concurrent_jobs": 10**9}))
    assert not class_limits.restore(JobManager(manager.root, LIMITS, device="cpu"))


def test_the_board_shows_names_escaped(manager):
    job = manager.start("alice", addition(), tiny_request(40, shared=True))
    manager.wait(job.name, 60)
    NameHandlers(manager).save("alice", "Ada & <i>Eve</i>")
    html = board_html(manager, 600)
    assert "Ada &amp; &lt;i&gt;Eve&lt;/i&gt;" in html and job.name in html and "<i>" not in html
    early = board_html(manager, -10)  # no evaluation within the time: listed, but without a rank
    assert 'data-ranked="false"' in early and 'data-ranked="true"' not in early and "not yet" in early
    assert "alice" not in runs_html(manager)[0]


def test_a_name_that_is_empty_or_too_long_gets_a_sentence(manager):
    names = NameHandlers(manager)
    assert "empty" in names.save("alice", "   ") and names.leave("alice", "") == ""
    assert "keep it to 40" in names.save("alice", "x" * 50)
    assert "Saved" in names.save("alice", "Ada") and names.saved("alice") == "Ada"
    assert "loading" in names.save("", "Ada")


# --- a student attacks a real server ------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    demo, url = launch_class_app(tmp_path_factory.mktemp("runs"), GPT_MAX_ITERS=1_000_000, GPT_MAX_CONCURRENT_JOBS=1)
    yield demo, url
    demo.manager.shutdown()
    demo.close()


def test_without_a_token_there_is_no_route(tmp_path):
    demo, url = launch_class_app(tmp_path, token=None)
    try:
        assert get(url)[0] == 200 and get(f"{url}teacher")[0] == 404
        assert "teacher" not in get(f"{url}config")[1]
    finally:
        demo.manager.shutdown()
        demo.close()


def test_the_raw_queue_refuses_every_teacher_event_without_the_token(server):
    demo, url = server
    m = demo.manager
    job = training(m, "alice")
    m.labels.set("alice", "Alice Secretname")
    config = get(f"{url}config?page=teacher")[1]
    assert job.name not in config and "Secretname" not in config and TOKEN not in config
    calls = {"teacher-open": lambda t: [t], "teacher-stop": lambda t: [t, job.name],
             "teacher-share": lambda t: [t, job.name], "teacher-delete": lambda t: [t, job.name, None],
             "limit-apply": lambda t: [t, 1, 9, 1]}
    for elem, data in calls.items():
        index = fn_index(url, elem)
        deps = json.loads(config)["dependencies"]
        assert next(d for d in deps if d["id"] == index)["api_visibility"] == "private"
        for token in ("", None, "wrong", TOKEN[:-1], TOKEN + "1"):
            out = json.dumps(call_event(url, index, data(token))["output"])
            assert WRONG.replace("'", "\\'")[:30] in out or "not the teacher" in out, (elem, out)
            assert job.name not in out  # the run picked is not even echoed
            assert "Secretname" not in out
    # every event of the page (the timer's refresh, the refreshes chained after each button), any inputs
    for dep in json.loads(config)["dependencies"]:
        for token in ("", "wrong"):
            n = len(dep["inputs"])
            out = json.dumps(call_event(url, dep["id"], ([token, 120] + [None] * n)[:n]))
            assert job.name not in out and "Secretname" not in out and "<table" not in out, out
    assert job.state == "running" and (m.root / job.name).exists() and m.limits.max_concurrent_jobs == 1
    assert not folders.app_info(m.root, job.name)["shared"]
    # values no form would send (NaN, text, a fraction of a run) get the field's sentence, not {"error": null}
    apply = fn_index(url, "limit-apply")
    for data, says in (([TOKEN, "abc", 1, 1], "Time per run (seconds) must be a whole number, got 'abc'"),
                       ([TOKEN, 60, float("nan"), 1], "Runs at the same time must be a positive whole number, got nan"),
                       ([TOKEN, 60, 1.5, 1], "Runs at the same time must be a positive whole number, got 1.5"),
                       ([TOKEN, 60, 1, "lots"], "Largest model (millions of parameters) must be a finite number")):
        out = json.dumps(call_event(url, apply, data))
        assert says in out and '"error": null' not in out, out
    assert m.limits.max_concurrent_jobs == 1
    # the same call with the token does reach the handler
    assert "Stopping" in json.dumps(call_event(url, fn_index(url, "teacher-stop"), [TOKEN, job.name])["output"])
    m.wait(job.name, 30)
    assert job.state == "stopped"


def test_gradio_client_sees_no_teacher_endpoint(server):
    from gradio_client import Client

    demo, url = server
    client = Client(url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    students_api = sorted(f"/{name}" for name in Api.endpoints(Api.__new__(Api)))
    assert sorted(api["named_endpoints"]) == students_api  # the student API, and nothing of the teacher's
    assert not api["unnamed_endpoints"]
    with pytest.raises(Exception):  # the client knows only the main page; a teacher fn_index is not an endpoint
        client.predict("wrong", fn_index=fn_index(url, "teacher-open"))
