"""A class in five browsers and a teacher's: one trains, four queue, the teacher stops one, the board ranks.

Five browser contexts (five people: five localStorage ids) open the page at
once on a server that trains one run at a time. Each gives a name, picks
the addition corpus and the tiny preset, shares the run and presses Start:
the first trains, the four others show their position and when they should
start. The teacher's page (a sixth context, at /teacher with the token)
lists all five with the students' names, stops the first, and once the four
others finished, the class challenge board ranks them by bits per character.
A second, shorter test: the teacher cancels a queued run, which its student
still sees with who cancelled it and why; a reloaded queued page says
"Loading your run" until it knows, never "No run yet" (issue 24, 1 and 10).

Screenshots of the teacher's page at 1366x768 and 1920x1080 go to
docs/screenshots/; the rest to artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
import time

import pytest

from gpt.jobs.manager import TEACHER

from helpers_class import TOKEN, launch_class_app
from helpers_browser import ARGS, CHROMIUM, PROGRESS_HISTORY, SHOTS, text, wait_text
from test_app_browser import pick_addition_and_tiny, set_number

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.timeout(600)
DOCS_SHOTS = SHOTS.parent.parent / "docs" / "screenshots"
ITERS = [20_000, 30, 40, 50, 60]  # the first trains until the teacher stops it


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    demo, url = launch_class_app(tmp_path_factory.mktemp("runs"), GPT_MAX_CONCURRENT_JOBS=1, GPT_MAX_ITERS=20_000)
    demo.url = url
    yield demo
    demo.manager.shutdown()
    demo.close()


@pytest.fixture(scope="module")
def chromium():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def url(app):
    return app.url


@pytest.fixture
def browser(chromium, app):
    """The test's people. When it ends their pages close and what they left training stops, as a teacher would,
    so a failure in one test never leaves the next a busy server."""
    yield chromium
    for context in chromium.contexts:
        context.close()
    m = app.manager
    for job in [j for j in m.registry.jobs.values() if j.active]:
        m.stop(TEACHER, job.name)
        m.wait(job.name, timeout=60)


def open_page(browser, url: str, width: int = 1366, height: int = 768, wait: bool = True):
    """A new person's page; with `wait=False` the page is only asked for, so several load at once."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(PROGRESS_HISTORY)  # window.__progress: what the progress line showed since the load
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(url, wait_until="load" if wait else "commit")
    return page


def fill_in(pages, names: list[str], iters: list[int]) -> None:
    """Everything before Start on each page: a name, the addition corpus, the tiny preset, the steps, share.
    Each step is taken on every page before waiting for any: a class fills in its forms together."""
    for page in pages:
        wait_text(page, "corpus-stats", "characters")
    boxes = [page.locator("#display-name input, #display-name textarea").first for page in pages]
    for box, name in zip(boxes, names):
        box.fill(name)
        box.press("Enter")
    for page in pages:
        wait_text(page, "display-name-msg", "Saved")
    pick_addition_and_tiny(*pages)
    for page, n in zip(pages, iters):
        set_number(page, "max-iters", n)
        page.locator("#share input").check()


def run_name(page) -> str:
    return page.locator("#progress .run-line b").first.inner_text().strip()


def table_rows(page, elem_id: str) -> list[list[str]]:
    return page.evaluate("""(id) => [...document.querySelectorAll(`#${id} tr[data-run]`)]
                                  .map(tr => [...tr.children].map(td => td.innerText.trim()))""", elem_id)


def lap(t0: float, what: str) -> None:
    print(f"{time.monotonic() - t0:6.1f} s  {what}", flush=True)  # where the time went, when a wait times out


def test_five_browsers_one_trains_four_queue_the_teacher_stops_one_and_the_board_ranks(browser, url):
    t0 = time.monotonic()
    students = [open_page(browser, url, wait=False) for _ in ITERS]  # five people open the page at once
    fill_in(students, [f"Student {k + 1}" for k in range(len(ITERS))], ITERS)  # and fill in their forms together
    for k, page in enumerate(students):  # then Start, one after another: the first trains, four queue
        page.click("#start-btn")
        wait_text(page, "progress", "running" if k == 0 else "queued")
    names = [run_name(p) for p in students]
    assert len(set(names)) == 5
    lap(t0, "five runs asked for")

    # every queued page shows its position and an estimated start, and the estimate is live
    for k, page in enumerate(students[1:], start=1):
        wait_text(page, "progress", f"position {k} in the queue")
        line = text(page, "progress")
        assert re.search(r"starts in about \d+ (s|min|h)", line), line
    students[4].screenshot(path=SHOTS / "class-queued.png", full_page=True)
    before = text(students[1], "progress")
    students[1].wait_for_function("(before) => document.getElementById('progress').innerText !== before",
                                  arg=before, timeout=15_000)

    lap(t0, "the queue checked")
    # the teacher's page: a sentence for a wrong token, then every run with its student's name
    intruder = open_page(browser, f"{url}teacher")
    intruder.locator("#teacher-token input").fill("not-the-token")
    intruder.click("#teacher-open")
    wait_text(intruder, "teacher-msg", "not the teacher's token")
    assert not intruder.locator("#teacher-runs").is_visible() and names[0] not in intruder.content()
    teacher = open_page(browser, f"{url}teacher")
    teacher.locator("#teacher-token input").fill(TOKEN)
    teacher.click("#teacher-open")
    teacher.wait_for_function("() => document.querySelectorAll('#teacher-runs tr[data-run]').length === 5")
    rows = {r[0]: r for r in table_rows(teacher, "teacher-runs")}
    assert set(rows) == set(names)
    assert [rows[n][1] for n in names] == [f"Student {k + 1}" for k in range(5)]
    assert rows[names[0]][2] == "running" and all(rows[n][2] == "queued" for n in names[1:])
    assert rows[names[4]][8].startswith("#4, starts in ~")
    for width, height in ((1366, 768), (1920, 1080)):
        teacher.set_viewport_size({"width": width, "height": height})
        teacher.wait_for_timeout(500)
        teacher.screenshot(path=DOCS_SHOTS / f"teacher-{width}x{height}.png")

    lap(t0, "the teacher's page checked")
    # the teacher stops the first run: the queue moves, and its student's page says so
    teacher.click("#teacher-run input")
    teacher.get_by_role("option", name=names[0], exact=True).click()
    teacher.click("#teacher-stop")
    wait_text(teacher, "teacher-action-msg", f"Stopping {names[0]}")
    wait_text(students[0], "progress", "stopped")
    wait_text(students[1], "progress", (" · running", " · finished"))  # 30 tiny steps can end between two polls

    lap(t0, "the first run stopped")
    # once the four others finished, the board ranks them, lowest bits per character first
    teacher.wait_for_function("""(runs) => runs.every(r => [...document.querySelectorAll('#teacher-runs tr')]
                                   .some(tr => tr.dataset.run === r && tr.innerText.includes('finished')))""",
                              arg=names[1:], timeout=240_000)
    teacher.wait_for_function("() => document.querySelectorAll('#teacher-board tr[data-run]').length >= 4")
    lap(t0, "the four others finished")
    board = table_rows(teacher, "teacher-board")
    assert [int(r[0]) for r in board] == list(range(1, len(board) + 1))
    bpc = [float(r[2]) for r in board]
    assert bpc == sorted(bpc)
    assert {r[3] for r in board} >= set(names[1:]) and {r[1] for r in board} >= {f"Student {k}" for k in (2, 3, 4, 5)}
    for width, height in ((1366, 768), (1920, 1080)):
        teacher.set_viewport_size({"width": width, "height": height})
        teacher.wait_for_timeout(500)
        teacher.screenshot(path=DOCS_SHOTS / f"teacher-board-{width}x{height}.png", full_page=True)


def open_teacher(browser, url: str):
    teacher = open_page(browser, f"{url}teacher")
    teacher.locator("#teacher-token input").fill(TOKEN)
    teacher.click("#teacher-open")
    return teacher


def teacher_stops(teacher, run: str) -> None:
    teacher.click("#teacher-run input")
    teacher.get_by_role("option", name=run, exact=True).click()
    teacher.click("#teacher-stop")


def test_the_teacher_cancels_a_queued_run_and_its_student_still_sees_it(browser, url):
    busy, waiting = open_page(browser, url, wait=False), open_page(browser, url, wait=False)
    fill_in([busy, waiting], ["Student A", "Student B"], [20_000, 60])
    busy.click("#start-btn")
    wait_text(busy, "progress", "running")
    waiting.click("#start-btn")
    wait_text(waiting, "progress", "queued")
    busy_run, queued_run = run_name(busy), run_name(waiting)

    waiting.reload()  # a refresh: "Loading your run" until the first poll, then the queue, never "No run yet"
    wait_text(waiting, "progress", "position 1 in the queue")
    seen = waiting.evaluate("window.__progress")
    assert "Loading your run" in seen[0] and not any("No run yet" in t for t in seen), seen

    teacher = open_teacher(browser, url)
    teacher.wait_for_function("(run) => document.querySelector(`#teacher-runs tr[data-run='${run}']`)", arg=queued_run)
    teacher_stops(teacher, queued_run)  # the teacher's message says what really happens: a cancel, kept
    wait_text(teacher, "teacher-action-msg", f"Cancelled {queued_run} while it waited in the queue")
    wait_text(waiting, "progress", "Cancelled by the teacher while it waited in the queue")
    line = text(waiting, "progress")
    assert queued_run in line and "stopped" in line  # still there, for its student, not "No run yet"
    # the board lists it without a rank: it was never evaluated (a step-0 loss ranks nothing)
    teacher.wait_for_function("(run) => document.querySelector(`#teacher-board tr[data-run='${run}']`)", arg=queued_run)
    row = [r for r in table_rows(teacher, "teacher-board") if r[3] == queued_run][0]
    assert row[0] == "-" and row[2] == "not yet", row
    teacher_stops(teacher, busy_run)
    wait_text(busy, "progress", "stopped")
