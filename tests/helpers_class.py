"""The app as a class uses it: the main page plus the display-name field and the teacher's page.

Until app.py mounts both itself, `launch_class_app` adds them to the built
demo the way app.py will (and adds nothing it already has), then serves it
on 127.0.0.1. `call_event` drives an event the way a browser does, by its
fn_index over /gradio_api/queue/join, with no client library in between:
what a student who read /config could send.
"""

from __future__ import annotations

import json
import os
import urllib.request

import gradio as gr
import pytest

from gpt.jobs import JobManager
from gpt.limits import Limits

from helpers_app import addition, free_port, tiny_request, wait_until
from helpers_http import call_event  # noqa: F401 - the class tests import it from here

TOKEN = "class-secret-7f3a9c"
ONE_AT_A_TIME = Limits(max_concurrent_jobs=1, max_params=5_000_000, max_iters=1_000_000)


@pytest.fixture
def manager(tmp_path):
    """A run service that trains one run at a time (import this fixture into a test module)."""
    m = JobManager(tmp_path / "runs", ONE_AT_A_TIME, device="cpu")
    yield m
    m.shutdown()


def training(m: JobManager, owner: str, **kw):
    """A run of `owner` that trains until stopped, once it has taken a few steps."""
    job = m.start(owner, addition(), tiny_request(1_000_000, **kw))
    wait_until(lambda: job.trainer is not None and job.trainer.step > 2, what=f"{owner}'s run trains")
    return job


def _has(demo: gr.Blocks, elem_id: str) -> bool:
    return any(getattr(b, "elem_id", None) == elem_id for b in demo.blocks.values())


def add_class_parts(demo: gr.Blocks, token: str | None = TOKEN) -> None:
    from types import SimpleNamespace

    from gpt.ui.name_field import build_name_field
    from gpt.ui.teacher import build_teacher_page

    if not _has(demo, "display-name"):
        who = next(b for b in demo.blocks.values() if isinstance(b, gr.BrowserState))
        page = SimpleNamespace(manager=demo.manager, who=who, on_load=[])
        with demo:
            build_name_field(page)
            for event in page.on_load:
                demo.load(**event)
    build_teacher_page(demo, demo.manager, env={"GPT_TEACHER_TOKEN": token} if token else {})


def launch_class_app(checkpoint_dir, token: str | None = TOKEN, **limits_env):
    """(demo, url) of the class's app on a free port. Close with demo.close() and demo.manager.shutdown()."""
    import app

    limits = Limits.from_env({**os.environ, **{k: str(v) for k, v in limits_env.items()}})
    demo = app.build_demo(JobManager(checkpoint_dir, limits, device="cpu"))
    add_class_parts(demo, token)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, ""


def fn_index(url: str, elem_id: str, trigger: str = "click", page: str = "teacher") -> int:
    """The fn_index of the event `trigger` of the component `elem_id`, read from the public /config."""
    _, text = get(f"{url}config?page={page}")
    config = json.loads(text)
    ids = {c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id}
    for dep in config["dependencies"]:
        if any(t[0] in ids and t[1] == trigger for t in dep["targets"]):
            return dep["id"]
    raise AssertionError(f"no {trigger} event on #{elem_id}")
