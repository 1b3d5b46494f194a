"""Walk the whole page in Chromium and save a screenshot of each tab at each screen size in docs/screenshots/.

    GPT_TEACHER_TOKEN=t python app.py &             # any running app; the teacher's page needs the token
    python .ci/screenshots.py http://127.0.0.1:7860/ t

A student's way through: a default run started on the Train tab, then every tab (and every view of
See inside) at 1366x768 with the projector view off and on, and at 1920x1080; then the teacher's page
at both sizes (`teacher-page-*`: the class tests keep `teacher-*` for five runs). Files are named by tab and
size: `train-1366x768.png`, `train-1366x768-projector.png`.
Only the first screen is taken (what a person sees before scrolling), never the full page.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
TABS = [("train", "1 · Train"), ("lesson", "Lesson"), ("generate", "2 · Generate"), ("chat", "3 · Chat"),
        ("checkpoints", "4 · Checkpoints"), ("inside", "5 · See inside the model")]
VIEWS = ["Tokenizers", "Anatomy", "Attention", "Next token", "Why the mask", "Watch it learn", "Compare runs"]
SIZES = [(1366, 768, False), (1366, 768, True), (1920, 1080, False)]


def wait_text(page, elem_id: str, needle: str, timeout: float = 120_000) -> None:
    page.wait_for_function("([id, n]) => (document.getElementById(id)?.innerText || '').includes(n)",
                           arg=[elem_id, needle], timeout=timeout)


def set_projector(page, on: bool) -> None:
    box = page.locator("#projector-toggle input")
    if box.is_checked() != on:
        box.click()
    page.wait_for_function(f"document.body.classList.contains('projector') === {str(on).lower()}")


def shoot(page, name: str) -> None:
    """The first screen once the tab's events are answered (Gradio's loading overlays, which show a timer, gone;
    60 s at most: on a loaded machine a view may still be loading, and the screenshot shows it)."""
    page.wait_for_timeout(1200)
    try:
        page.wait_for_function("() => ![...document.querySelectorAll('[data-testid=status-tracker]:not(.hide)')]"
                               ".some(e => e.offsetParent && e.innerText.trim())", timeout=60_000)
    except Exception:  # noqa: BLE001 - a slow view is still worth a screenshot
        pass
    page.screenshot(path=OUT / f"{name}.png")
    print("saved", name)


def student(browser, url: str) -> None:
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    wait_text(page, "corpus-stats", "characters")
    page.click("#start-btn")  # the default run, as a student who watched the lecture would
    wait_text(page, "progress", "running")
    page.wait_for_timeout(15_000)
    for width, height, projector in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        set_projector(page, projector)
        size = f"{width}x{height}" + ("-projector" if projector else "")
        for slug, label in TABS:
            page.get_by_role("tab", name=label, exact=True).click()
            shoot(page, f"{slug}-{size}")
        for view in VIEWS if not projector else []:
            page.locator("#views-tabs").get_by_role("tab", name=view, exact=True).click()
            shoot(page, f"inside-{view.lower().replace(' ', '-')}-{size}")
        page.get_by_role("tab", name="1 · Train", exact=True).click()
    set_projector(page, False)


def teacher(browser, url: str, token: str) -> None:
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    page.goto(f"{url}teacher")
    page.locator("#teacher-token input").fill(token)
    page.click("#teacher-open")
    page.wait_for_selector("#teacher-runs tr[data-run]", timeout=60_000)
    for width, height in ((1366, 768), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        shoot(page, f"teacher-page-{width}x{height}")


def main(url: str, token: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        student(browser, url)
        if token:
            teacher(browser, url, token)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") + "/", sys.argv[2] if len(sys.argv) > 2 else "")
