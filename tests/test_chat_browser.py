"""The Chat tab in Chromium, as a student who just watched the lecture uses it.

On app.py's whole page: a broken conversation file is refused by line and
field; a fine-tune of a run on addition starts from the tab and its loss and
held-out accuracy are drawn live; the finished chat model is chosen for the
chat, answers, and refuses an empty and a huge message with a sentence; base
vs chat sets it beside its parent; the mask view colours what the loss
trains on. Then the page at 1366x768 with the projector view on.

The test uses a tiny parent (a few seconds of training, screenshots to
artifacts/). The same walk on the shipped model, with the screenshots of
docs/screenshots/ (a few minutes of fine-tuning):

    python tests/test_chat_browser.py --shipped [--seconds 240]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers_app import ROOT, launch_app  # noqa: E402
from helpers_browser import ARGS, CHROMIUM, SHOTS, sync_api, text, upload, wait_text  # noqa: E402 - skips without Chromium

pytestmark = pytest.mark.timeout(600)
BROKEN = ['{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}',
          '{"messages": [{"role": "bot", "content": "hi"}]}', '{"instruction": "say hi"}']


def set_number(page, elem_id: str, value) -> None:
    """Type into a slider's or a number's box and leave it, as a person does."""
    box = page.locator(f"#{elem_id} input[type=number]")
    for _ in range(10):
        box.fill(str(value))
        box.press("Tab")
        page.wait_for_timeout(300)
        if box.input_value() == str(value):
            return
    raise AssertionError(f"{elem_id} did not keep the value {value}")


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_function("([id, v]) => document.querySelector(`#${id} input`).value === v", arg=[elem_id, option])


def choose_run(page, elem_id: str, name: str) -> None:
    """A run picker's option by the run's name (its label goes on: name · whose · corpus · tokenizer)."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=f"{name} · ", exact=False).first.click()
    page.wait_for_function("([id, v]) => document.querySelector(`#${id} input`).value.startsWith(v)",
                           arg=[elem_id, f"{name} · "])


def send(page, message: str, until: str) -> str:
    """Type a message, press Enter, and return the line under the chat once it matches `until` (a regex)."""
    page.locator("#chat-message textarea").fill(message)
    page.locator("#chat-message textarea").press("Enter")
    page.wait_for_function("(until) => new RegExp(until).test(document.getElementById('chat-status')?.innerText || '')",
                           arg=until, timeout=120_000)
    return text(page, "chat-status")


def walk(page, parent: str, seconds: int, steps: int, shots: Path, tmp: Path) -> dict:
    """The student's walk through the tab; returns what the page said at each point."""
    said = {}
    page.get_by_role("tab", name="3 · Chat").click()
    page.wait_for_function("(v) => document.querySelector('#ft-parent input')?.value.length > 0", arg=parent)
    send_box = page.locator("#chat-send").bounding_box()  # a 768-pixel screen shows Send without scrolling
    assert send_box["y"] + send_box["height"] <= page.viewport_size["height"], send_box
    choose_run(page, "ft-parent", parent)
    # 1) a broken conversation file: a sentence naming each bad line and its field, and no run is made
    choose(page, "ft-task", "my file (JSONL or Alpaca)")
    bad = tmp / "mine.jsonl"
    bad.write_text("\n".join(BROKEN) + "\n")
    page.locator("#ft-upload").wait_for(state="visible")  # shown once the server has the task, as a person sees it
    upload(page, "ft-upload", bad)
    page.click("#ft-start")
    wait_text(page, "ft-msg", "cannot be used")
    said["broken"] = text(page, "ft-msg")
    # 2) the fine-tune on addition, watched live
    choose(page, "ft-task", "addition")
    set_number(page, "ft-seconds", seconds)
    page.click("#ft-settings .label-wrap")
    set_number(page, "ft-steps", steps)
    page.click("#ft-start")
    wait_text(page, "ft-msg", "started")
    said["started"] = text(page, "ft-msg")
    wait_text(page, "ft-growth", "Added", timeout=120_000)
    said["growth"] = text(page, "ft-growth")
    page.wait_for_function("() => (document.querySelector('#ft-sample textarea')?.value || '').startsWith('Q: ')",
                           timeout=300_000)  # the step-0 evaluation: the parent made a chat model, untrained
    if seconds > 60:  # the shipped walk: the curves half way
        page.wait_for_timeout(seconds * 500)
    page.locator("#ft-progress").scroll_into_view_if_needed()
    page.screenshot(path=shots / "chat-finetune-live-1366.png")
    wait_text(page, "ft-progress", "finished", timeout=(seconds + 240) * 1000)
    said["progress"] = text(page, "ft-progress")
    said["sample"] = page.locator("#ft-sample textarea").input_value()
    page.wait_for_function("() => document.querySelectorAll('#ft-accuracy svg, #ft-accuracy canvas').length > 0")
    page.wait_for_function("() => document.querySelector('#chat-run input')?.value.includes('-chat')")
    said["chat_run"] = page.locator("#chat-run input").input_value()
    # 3) chatting, then what may not be sent
    said["answer_status"] = send(page, "What is 47 + 38?", "ended with|did not end")
    said["answer"] = page.locator("#chatbot").inner_text()
    page.locator("#chatbot").scroll_into_view_if_needed()
    page.screenshot(path=shots / "chat-1366.png")
    page.locator("#chat-message textarea").fill("")
    page.click("#chat-send")
    wait_text(page, "chat-status", "Type a message first.")
    said["huge"] = send(page, "4" * 20_000, "20,000 characters")
    page.locator("#chat-status").scroll_into_view_if_needed()
    page.screenshot(path=shots / "chat-refused-1366.png")
    # 4) base vs chat, and the mask made visible
    page.click("#vs-ask")
    wait_text(page, "vs-status", "only continues the text", timeout=120_000)
    said["base"], said["chat"] = (page.locator(f"#vs-{k} textarea").input_value() for k in ("base", "chat"))
    page.click("#mask-area .label-wrap")
    page.locator("#mask-source").get_by_text("The chat above").click()
    page.click("#mask-show")
    wait_text(page, "mask-view", "carry the loss")
    said["mask"] = text(page, "mask-view")
    page.locator("#vs-question").scroll_into_view_if_needed()
    page.screenshot(path=shots / "chat-base-vs-chat-1366.png")
    page.locator("#ft-start").scroll_into_view_if_needed()
    page.screenshot(path=shots / "chat-finetune-1366.png")
    page.click("#projector-toggle input")
    page.get_by_role("tab", name="3 · Chat").scroll_into_view_if_needed()
    page.screenshot(path=shots / "chat-projector-1366.png")
    page.click("#projector-toggle input")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.get_by_role("tab", name="3 · Chat").scroll_into_view_if_needed()
    page.screenshot(path=shots / "chat-1920.png")
    return said


def open_page(p, url: str):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(90_000)
    page.goto(url)
    page.get_by_role("tab", name="3 · Chat").wait_for()
    return browser, page


def test_a_student_fine_tunes_chats_compares_and_sees_the_mask(tmp_path):
    from helpers_chat import save_chat_pair

    pair = save_chat_pair(tmp_path / "pair")
    for run in pair:
        shutil.copytree(run, tmp_path / "runs" / run.name)
    demo, url = launch_app(tmp_path / "runs")
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            browser, page = open_page(p, url)
            said = walk(page, "parent", 0, 20, SHOTS, tmp_path)
            browser.close()
    finally:
        demo.manager.shutdown()
        demo.close()
    assert "2 of the 3 records in mine.jsonl cannot be used" in said["broken"]
    assert "Line 2: message 1's 'role' must be user, assistant or system, got 'bot'." in said["broken"]
    assert "Line 3: 'output' is missing." in said["broken"]
    assert "Added 1 character the conversations use: W." in said["growth"]
    assert "finished" in said["progress"] and said["sample"].startswith("Q: What is ")
    assert said["chat_run"].startswith("parent-chat-1 · ")  # the new chat model, chosen for the chat
    assert "What is 47 + 38?" in said["answer"] and ("ended" in said["answer_status"] or "did not end" in
                                                      said["answer_status"])
    assert "Your message is 20,000 characters long" in said["huge"]
    assert said["base"].startswith("What is 47 + 38?") and "carry the loss" in said["mask"]


def shipped(seconds: int) -> None:
    """The walk on the shipped model (a copy), screenshots to docs/screenshots/; prints what the page said."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copytree(ROOT / "checkpoints" / "shakespeare-char", tmp / "runs" / "shakespeare-char")
        demo, url = launch_app(tmp / "runs")
        shots = ROOT / "docs" / "screenshots"
        try:
            with sync_api.sync_playwright() as p:
                browser, page = open_page(p, url)
                said = walk(page, "shakespeare-char", seconds, 10_000, shots, tmp)
                browser.close()
        finally:
            demo.manager.shutdown()
            demo.close()
    print(json.dumps({k: v[:600] for k, v in said.items()}, indent=1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--shipped", action="store_true", required=True)
    ap.add_argument("--seconds", type=int, default=240)
    shipped(ap.parse_args().seconds)
