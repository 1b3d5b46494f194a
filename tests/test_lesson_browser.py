"""The Lesson tab in a real browser: the lecture's steps on Shakespeare and on an uploaded text, and the ladder.

Until app.py mounts the Lesson tab, the page here is the Train tab and the
Lesson tab on one `Page`, built as app.py builds its tabs. Playwright drives
Debian's Chromium; elements are found by elem_id and the page is never
waited on for 'network idle' (the one-second timer keeps it busy).
Screenshots at 1366x768 and 1920x1080 go to docs/screenshots/.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest

from helpers_app import ROOT, free_port
from helpers_browser import ARGS, CHROMIUM, sync_api, text, upload, wait_text  # Debian's Chromium, or the module is skipped

SHOTS = ROOT / "docs" / "screenshots"
pytestmark = pytest.mark.timeout(300)


def lesson_page(manager):
    """app.py's page, which mounts the Lesson tab."""
    import app

    return app.build_demo(manager)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    import app
    from gpt import ladder
    from gpt.jobs import JobManager

    saved = dict(ladder.RUNGS)
    for n in range(1, 7):  # the real ladder takes minutes: rungs of 60 steps show the same page
        short = dict(max_iters=60, eval_interval=20, eval_iters=2, sample_tokens=0)
        ladder.RUNGS[n] = dataclasses.replace(ladder.RUNGS[n], train={**ladder.RUNGS[n].train, **short})
    demo = lesson_page(JobManager(tmp_path_factory.mktemp("runs"), device="cpu"))
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.manager.shutdown()
    demo.close()
    ladder.RUNGS.update(saved)


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_lesson(browser, url, width=1366, height=768):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(90_000)
    page.goto(url)
    page.wait_for_selector("#corpus-stats")
    page.locator("#tokenizer").get_by_text("Characters").click()  # the lecture's tokenizer (the page's default is BPE)
    wait_text(page, "corpus-stats", "char (65 tokens)")
    page.get_by_role("tab", name="Lesson").click()
    wait_text(page, "lesson-output", "length of dataset in characters")
    return page


wait_text = functools.partial(wait_text, timeout=90_000)  # a lesson step's output can take a while on two cores


def wait_plot(page, elem_id: str) -> None:
    """Until the gr.Plot shows its matplotlib figure (an image, PNG or WebP)."""
    page.wait_for_function("(id) => (document.querySelector(`#${id} img`)?.getAttribute('src') || '')"
                           ".startsWith('data:image/')", arg=elem_id)


def pick_step(page, title: str) -> None:
    page.locator("#lesson-step").get_by_text(title).click()


def test_the_lectures_steps_on_shakespeare(browser, url, shakespeare_text):
    page = open_lesson(browser, url)
    wait_text(page, "lesson-output", "1115394")
    wait_text(page, "lesson-lecture", "Yours match")
    pick_step(page, "5. Chunks and batches")
    wait_text(page, "lesson-output", "[25, 17, 27, 10,  0, 21,  1, 54]")
    assert "def first_block" in page.locator("#lesson-code").inner_text()
    cut = page.evaluate("""() => ['lesson-code', 'lesson-output'].map(id => {  // issue 24, 11
        const s = document.querySelector(`#${id} .cm-scroller`); return s.scrollWidth - s.clientWidth; })""")
    assert cut == [0, 0], cut  # long lines wrap: nothing is cut off at the pane's right edge
    assert page.locator("#lesson-output .cm-lineNumbers").count() == 0  # no numbers to drift from its lines
    page.wait_for_timeout(1500)
    page.screenshot(path=SHOTS / "lesson-1366.png")
    pick_step(page, "7. The mathematical trick of self-attention")
    wait_plot(page, "lesson-plot")
    wait_text(page, "lesson-output", "allclose")
    page.click("#lesson-next")
    wait_text(page, "lesson-heading", "8. One head")
    wait_text(page, "lesson-output", "0.1574, 0.8426")
    page.close()
    wide = open_lesson(browser, url, 1920, 1080)
    pick_step(wide, "6. The bigram model")
    wait_text(wide, "lesson-output", "loss at initialisation: 4.8786")
    wide.wait_for_timeout(1500)  # the code box finishes its highlighting
    wide.screenshot(path=SHOTS / "lesson-1920.png")
    wide.close()


def test_an_uploaded_text_and_the_ladder(browser, url, tmp_path):
    sonnet = tmp_path / "sonnet.txt"  # not `text`: that reads an element's text when a wait fails
    sonnet.write_text("Shall I compare thee to a summer's day? Thou art more lovely and more temperate.\n" * 150)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(90_000)
    page.goto(url)
    page.wait_for_selector("#corpus-stats")
    page.click("#corpus input")
    page.get_by_role("option", name="Upload a .txt file").click()
    upload(page, "corpus-upload", sonnet)
    wait_text(page, "corpus-stats", "sonnet")
    page.get_by_role("tab", name="Lesson").click()
    wait_text(page, "lesson-heading", "sonnet")
    pick_step(page, "5. Chunks and batches")
    wait_text(page, "lesson-lecture", "holds on Tiny Shakespeare + characters")
    pick_step(page, "9. The ablation ladder")
    page.click("#ladder-btn")
    wait_text(page, "ladder-msg", "The ladder is queued")
    page.click("#ladder-stop")  # issue 24, 4: the Lesson tab stops the climb, says where it stands, and goes on
    # a Stop that lands before rung 1's worker took its slot (a loaded machine) cancels it in the queue instead
    wait_text(page, "ladder-msg", ("Stopping the ladder at rung", "Cancelled the ladder at rung 1"))
    # the rung it stopped says "stopped"; a Stop that lands after rung 1 finished and before rung 2 was made says
    # so in the message, and rung 2 "never started" (a fast rung 1 on a slow machine); one that lands as rung 1
    # (a bigram: about a second) ends leaves it finished, and so does one that lands as rung 2 ends (a fast CPU
    # trains it in a few seconds). Whichever moment, the climb stops at the rung the message names
    try:
        page.wait_for_function("""() => { const s = document.getElementById('ladder-status')?.innerText || '';
            const m = document.getElementById('ladder-msg')?.innerText || '';
            const at = (m.match(/at rung (\\d)/) || [])[1];
            return s.includes('never started') && (s.includes('stopped') || m.includes('before it began')
                                                   || s.startsWith('1 of 6 rungs finished')
                                                   || (at && s.startsWith(at + ' of 6 rungs finished'))); }""")
    except sync_api.TimeoutError:
        raise AssertionError(f"the stopped ladder says {text(page, 'ladder-status')!r} / "
                             f"{text(page, 'ladder-msg')!r}") from None
    page.click("#ladder-go-on")
    wait_text(page, "ladder-msg", "Going on with the ladder from rung")
    wait_text(page, "ladder-status", "6 of 6 rungs finished", timeout=240_000)
    wait_plot(page, "ladder-plot")
    assert "finished" in page.locator("#ladder-table").inner_text()
    page.locator("#ladder-table").scroll_into_view_if_needed()
    page.screenshot(path=SHOTS / "lesson-ladder-1366.png", full_page=True)
    page.close()
