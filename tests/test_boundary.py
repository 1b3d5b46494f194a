"""What Gradio refuses before a handler runs answers with a sentence, over raw HTTP, and still refuses.

A page event's file input must point into Gradio's upload cache: a hand-made
request naming /etc/passwd or the server's signing key is refused by Gradio
(nothing is read) but used to answer `{"error": null}`. A value a component
cannot convert (text in a whole-number box) did the same.
"""

from __future__ import annotations

import json

import pytest

from gpt.jobs.signing import KEY_FILE
from helpers_app import launch_app
from helpers_http import call_event


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("boundary") / "runs"
    demo, url = launch_app(root)
    yield demo, url, root
    demo.close()
    demo.manager.shutdown()


def component(demo, elem_id: str) -> int:
    return next(c["id"] for c in demo.config["components"] if c.get("props", {}).get("elem_id") == elem_id)


def event_on(demo, elem_id: str, trigger: str) -> dict:
    """The event `trigger` of the component `elem_id`, as a stranger reads it from /config."""
    target = [component(demo, elem_id), trigger]
    return next(d for d in demo.config["dependencies"] if any(list(t) == target for t in d["targets"]))


def inputs(demo, dep: dict, token: str, **given) -> list:
    """The event's inputs as the page would send them, with `given` ({component id: value}) in their place."""
    kinds = {c["id"]: c["type"] for c in demo.config["components"]}
    values = {c["id"]: c.get("props", {}).get("value") for c in demo.config["components"]}
    return [given[str(i)] if str(i) in given else token if kinds[i] == "browserstate" else values.get(i)
            for i in dep["inputs"]]


def as_file(path: str) -> dict:
    return {"path": path, "orig_name": path.rsplit("/", 1)[-1], "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("elem_id, shape", [("ckpt-upload", "one"), ("import-upload", "list"),
                                            ("corpus-upload", "one")])
def test_a_file_outside_the_upload_cache_is_refused_with_a_sentence(app, elem_id, shape):
    demo, url, root = app
    dep = event_on(demo, elem_id, "upload")
    token = demo.manager.identity.issue()
    key = (root / KEY_FILE).read_text().strip()
    for path in ("/etc/passwd", str(root / KEY_FILE)):
        value = [as_file(path)] if shape == "list" else as_file(path)
        data = inputs(demo, dep, token, **{str(component(demo, elem_id)): value})
        answer = call_event(url, dep["id"], data)
        text = json.dumps(answer)
        assert not answer["success"] and answer["output"]["error"], text
        assert "not uploaded through this page" in answer["output"]["error"], text
        assert "root:" not in text and key not in text and "Traceback" not in text


def test_a_value_a_component_cannot_convert_is_a_sentence_naming_it(app):
    demo, url, _ = app
    seed = component(demo, "lesson-seed")
    dep = next(d for d in demo.config["dependencies"] if seed in d["inputs"])
    data = inputs(demo, dep, demo.manager.identity.issue(), **{str(seed): "not a number"})
    answer = call_event(url, dep["id"], data)
    assert not answer["success"] and "seed got a value it cannot take" in (answer["output"]["error"] or ""), answer


@pytest.mark.parametrize("elem_id, value, says", [("nt-top-k", -3, "Top-k (0 = off): Value -3 is less than minimum value 0"),
                                                  ("nt-temperature", 7, "Temperature (0 = greedy): Value 7 is greater")])
def test_a_value_outside_a_sliders_bounds_is_a_sentence_naming_it(app, elem_id, value, says):
    demo, url, _ = app
    dep = event_on(demo, elem_id, "change")
    data = inputs(demo, dep, demo.manager.identity.issue(), **{str(component(demo, elem_id)): value})
    answer = call_event(url, dep["id"], data)
    error = answer["output"]["error"] or ""
    assert not answer["success"] and error.startswith(says) and "; type a value from" in error, answer
