"""The reward stage in the app, in Chromium: an RL run started from the Chat tab, its reward curve drawn live and
its sampled answers coloured by the grader; then stopped.

The chat run counts letters (it answers most questions right, some wrong), so one
step's answers are green and red. Screenshots of the panel at 1366x768 and
1920x1080 go to docs/screenshots/ (under 300 KB each) and artifacts/screenshots/.
"""

from __future__ import annotations

import shutil

import pytest

from helpers_app import ROOT, launch_app
from helpers_browser import ARGS, CHROMIUM, SHOTS, sync_api, wait_text
from helpers_rl import chat_run

pytestmark = [pytest.mark.timeout(600), pytest.mark.browser]
DOCS = ROOT / "docs" / "screenshots"
MAX_PNG_BYTES = 300_000
COUNTER = "counter-chat"


def shoot(page, name: str) -> None:
    """The viewport, with the RL run's progress line at its top, into artifacts/ and (under 300 KB)
    docs/screenshots/."""
    page.locator("#rl-progress").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(1500)  # let the plot and its legend repaint at the new width
    path = SHOTS / f"{name}.png"
    page.screenshot(path=path)
    if path.stat().st_size > MAX_PNG_BYTES:  # fewer colours, same pixels: screenshots are mostly flat colour
        from PIL import Image

        with Image.open(path) as img:
            img.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    assert path.stat().st_size < MAX_PNG_BYTES, f"{name}.png is {path.stat().st_size:,} bytes"
    shutil.copyfile(path, DOCS / f"{name}.png")


def test_an_rl_run_started_from_the_chat_tab_draws_its_reward_and_colours_its_answers(tmp_path):
    chat_run(tmp_path, COUNTER, steps=100, task="count", block_size=48)
    demo, url = launch_app(tmp_path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(url)
            page.get_by_role("tab", name="3 · Chat").click()
            page.locator("#rl-area").get_by_text("Reward the answers (RL)").first.click()  # open the accordion
            page.wait_for_function(f"document.querySelector('#rl-parent input')?.value.includes('{COUNTER}')",
                                   timeout=60_000)
            page.locator("#rl-task input").click()
            page.get_by_role("option", name="count", exact=True).click()
            page.locator("#rl-start").click()
            wait_text(page, "rl-msg", "started")
            # the latest step's answers, live from the trainer: k = 8 per question, green or red
            page.wait_for_function("document.querySelectorAll('#rl-answers .rl-answer').length >= 8",
                                   timeout=240_000)
            wait_text(page, "rl-before-after", "held-out questions at step 0")
            page.wait_for_function("document.querySelectorAll('#rl-plot svg, #rl-plot canvas').length > 0",
                                   timeout=60_000)
            colours = page.eval_on_selector_all("#rl-answers .rl-answer", "els => els.map(e => e.className)")
            assert {"rl-answer right", "rl-answer wrong"} <= set(colours), colours
            # every right answer green, every wrong one red (the chip's own style: a chip the page redraws from
            # red to green may still be mid-transition in its computed style)
            backgrounds = page.eval_on_selector_all(
                "#rl-answers .rl-answer", "els => els.map(e => [e.classList.contains('right'), e.style.backgroundColor])")
            assert {bg for right, bg in backgrounds if right} == {"rgb(220, 252, 231)"}, backgrounds  # green
            assert {bg for right, bg in backgrounds if not right} == {"rgb(254, 226, 226)"}, backgrounds  # red
            shoot(page, "rl-1366x768")
            page.set_viewport_size({"width": 1920, "height": 1080})
            shoot(page, "rl-1920x1080")
            page.locator("#rl-stop").click()
            wait_text(page, "rl-progress", "stopped")
            browser.close()
    finally:
        demo.close()
        demo.manager.shutdown()
