"""The page in a real browser: a student's first two minutes.

Open the page, pick the addition corpus and the character tokenizer, start a
short run, see the loss curve gain points while it trains, stop it, then
generate text with a chosen temperature and top-k and see it appear.

Playwright drives Debian's Chromium (/usr/bin/chromium; never `playwright
install`). Without it the test is skipped, unless CI=true, where it fails.
Screenshots land in artifacts/screenshots/ (git-ignored). Elements are found
by elem_id; the page is never waited on for 'network idle', because the 1 s
timer keeps the network busy.
"""

from __future__ import annotations

import time

import pytest

from helpers_app import launch_app
from helpers_browser import ARGS, CHROMIUM, SHOTS, sync_api, text, wait_text

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    demo, url = launch_app(tmp_path_factory.mktemp("runs"), GPT_MAX_ITERS=20_000)
    yield url
    demo.manager.shutdown()
    demo.close()


@pytest.fixture(scope="module")
def page(url):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def curve_length(page) -> int:
    """Total size of the drawn loss lines: grows as the plot gains points."""
    return page.evaluate("""() => [...document.querySelectorAll('#loss-plot g.mark-line path')]
                                 .reduce((n, p) => n + (p.getAttribute('d') || '').length, 0)""")


def set_number(page, elem_id: str, value) -> None:
    """Type into a slider's number box and leave it, as a person does.

    Typed again if a late update from an earlier event (a preset applied twice: Gradio's dropdown
    fires its input event twice) puts the old value back.
    """
    box = page.locator(f"#{elem_id} input[type=number]")
    read = "(id) => document.querySelector(`#${id} input[type=range]`).value"
    for _ in range(10):
        box.fill(str(value))
        box.press("Tab")
        page.wait_for_timeout(400)
        if page.evaluate(read, elem_id) == str(value):
            return
    raise AssertionError(f"{elem_id} did not keep the value {value}")


def pick_addition_and_tiny(*pages) -> None:
    """The addition corpus and the tiny preset, with the settings open: a run of a few seconds. With several
    pages, each step is taken on all of them before waiting for any, as a class does at once."""
    for page in pages:
        page.click("#corpus input")
        page.get_by_role("option", name="Synthetic: addition (37+45=82)").click()
    for page in pages:
        wait_text(page, "corpus-stats", "addition")
        page.click("#settings .label-wrap")
        page.click("#preset input")
        page.get_by_role("option", name="tiny", exact=False).first.click()
    for page in pages:
        page.wait_for_function("document.querySelector('#n-embd input[type=number]').value == '32'")


def test_first_two_minutes(page, url):
    t0 = time.monotonic()
    page.goto(url)
    wait_text(page, "corpus-stats", "characters")
    page.wait_for_selector("#token-preview .tok")
    print(f"\npage ready with statistics and preview in {time.monotonic() - t0:.1f} s")
    page.screenshot(path=SHOTS / "01-opened.png", full_page=True)

    # 1. a small corpus and the character tokenizer
    page.click("#corpus input")
    page.get_by_role("option", name="Synthetic: addition (37+45=82)").click()
    wait_text(page, "corpus-stats", "addition")
    wait_text(page, "estimate", "parameters")
    estimate_before = text(page, "estimate")
    page.locator("#tokenizer").get_by_text("Characters").click()
    wait_text(page, "corpus-stats", "char (13 tokens)")
    assert "13" in text(page, "corpus-stats")
    # the estimate follows the vocabulary (13 characters: a smaller embedding and head)
    page.wait_for_function("(before) => document.getElementById('estimate').innerText !== before", arg=estimate_before)

    # 2. the tiny preset, run long enough to watch; the estimate follows the sliders
    page.click("#settings .label-wrap")
    page.click("#preset input")
    page.get_by_role("option", name="tiny", exact=False).first.click()
    page.wait_for_function("document.querySelector('#n-embd input[type=number]').value == '32'")
    set_number(page, "max-iters", 5000)
    wait_text(page, "estimate", "parameters")
    estimate_before = text(page, "estimate")
    set_number(page, "n-layer", 3)
    page.wait_for_function("(before) => document.getElementById('estimate').innerText !== before", arg=estimate_before)
    set_number(page, "n-layer", 2)

    # 3. start, and the curve gains points while it trains
    t_click = time.monotonic()
    page.click("#start-btn")
    page.wait_for_function("() => [...document.querySelectorAll('#loss-plot g.mark-line path')]"
                           ".some(p => (p.getAttribute('d') || '').length > 0)")
    first_point = time.monotonic() - t_click
    wait_text(page, "progress", "running")
    first = curve_length(page)
    page.wait_for_function(f"() => [...document.querySelectorAll('#loss-plot g.mark-line path')]"
                           f".reduce((n, p) => n + (p.getAttribute('d') || '').length, 0) > {first}")
    assert "tokens/s" in text(page, "progress")
    print(f"click to first loss point: {first_point:.2f} s")

    # another control answers while the run trains
    t_other = time.monotonic()
    page.locator("#preview-text input, #preview-text textarea").first.fill("99+1=100")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#token-preview .tok').length === 8")
    print(f"preview answered in {time.monotonic() - t_other:.2f} s while training")
    page.screenshot(path=SHOTS / "02-training.png", full_page=True)

    # 4. stop it
    page.click("#stop-btn")
    wait_text(page, "progress", "stopped")
    run = page.locator("#progress .run-line b").first.inner_text().strip()  # not Gradio's timer overlay
    assert run.startswith("addition-char-")
    page.screenshot(path=SHOTS / "03-stopped.png", full_page=True)

    # 5. generate with a chosen temperature and top-k
    page.get_by_role("tab", name="2 · Generate").click()
    page.click("#gen-run input")
    page.get_by_role("option", name=run, exact=False).first.click()
    set_number(page, "gen-temperature", 0.5)
    set_number(page, "gen-top-k", 5)
    set_number(page, "gen-max-new", 120)
    page.locator("#gen-prompt textarea, #gen-prompt input").first.fill("12+")
    page.click("#gen-btn")
    wait_text(page, "gen-status", "Done")
    out = page.locator("#gen-output textarea").input_value()
    assert out.startswith("12+") and len(out) == 3 + 120 and "=" in out
    page.screenshot(path=SHOTS / "04-generated.png", full_page=True)

    # a character the model never saw: a sentence, not a traceback
    page.locator("#gen-prompt textarea, #gen-prompt input").first.fill("hello")
    page.click("#gen-btn")
    wait_text(page, "gen-status", "never saw")

    # 6. the run is in the checkpoints table, with a download ready
    page.get_by_role("tab", name="4 · Checkpoints").click()
    wait_text(page, "runs-table", run)
    page.wait_for_function("() => !document.querySelector('#ckpt-download').disabled")
    page.screenshot(path=SHOTS / "05-checkpoints.png", full_page=True)


def test_a_second_tab_shows_the_same_run(page, url):
    """State lives on the server: a fresh page of the same browser finds the run and its curve."""
    page.goto(url)
    wait_text(page, "progress", "addition-char-")
    page.wait_for_selector("#loss-plot g.mark-line path")
    assert "stopped" in text(page, "progress")
