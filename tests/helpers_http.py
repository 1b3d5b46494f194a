"""Raw HTTP against a running app, as a stranger without gradio_client would: named endpoints and page events.

Every call is bounded in time; headers (X-Forwarded-For, a cookie) go through as given.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid


def get(url: str, headers: dict | None = None) -> str:
    """The body of a GET (an error status's body too)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as resp:
            return resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.read().decode("utf-8", "replace")


def call_api(url: str, api: str, data: list, headers: dict | None = None) -> tuple[str, object]:
    """POST /gradio_api/call/<api>, read its event stream: ('complete', outputs) or ('error', message or None)."""
    body = json.dumps({"data": data}, allow_nan=True).encode()
    req = urllib.request.Request(f"{url}gradio_api/call/{api}", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    event_id = json.loads(urllib.request.urlopen(req, timeout=30).read())["event_id"]
    stream = urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event_id}", timeout=120).read().decode()
    event, payload = "", None
    for line in stream.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            payload = json.loads(line[5:])
    return event, payload


def call_event(url: str, fn_index: int, data: list, headers: dict | None = None, timeout: float = 120) -> dict:
    """Join the queue for one of the page's events by fn_index, as the page does; the completed message."""
    session = uuid.uuid4().hex[:11]
    body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                       "trigger_id": None}, allow_nan=True).encode()
    req = urllib.request.Request(f"{url}gradio_api/queue/join", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    urllib.request.urlopen(req, timeout=30).read()
    stream = urllib.request.urlopen(urllib.request.Request(f"{url}gradio_api/queue/data?session_hash={session}",
                                                           headers=headers or {}), timeout=timeout)
    for raw in stream:
        line = raw.decode().strip()
        if line.startswith("data:"):
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                return msg
    raise AssertionError("the event never completed")


def fn_index(demo, name: str) -> int:
    """The index of the page's event with this api_name (private events keep theirs in the config)."""
    return next(i for i, d in enumerate(demo.config["dependencies"]) if d.get("api_name") == name)
