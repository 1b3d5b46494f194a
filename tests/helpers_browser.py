"""What every browser test shares: Debian's Chromium, its flags, and waiting for text by elem_id.

Importing this skips the importing test module when /usr/bin/chromium or
Playwright is missing, except under CI=true, where a missing browser is an
error. Never `playwright install`; never wait for 'network idle' (the page's
1 s timer keeps the network busy): wait for an element's text instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers_app import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "artifacts" / "screenshots"
# a page's init script: every text the progress line shows from the first paint, in window.__progress (a
# reload starts a new list), so a test can say what a person saw before the page settled
PROGRESS_HISTORY = """
window.__progress = [];
new MutationObserver(() => {
  const t = document.getElementById('progress')?.innerText;
  if (t && window.__progress[window.__progress.length - 1] !== t) window.__progress.push(t);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""

if not Path(CHROMIUM).exists():
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(f"{CHROMIUM} is missing; install it with apt-get install -y chromium")
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def text(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


# how often a wait looks again, in ms: Playwright's default looks every animation frame, and `innerText` lays the
# page out each time, which kept a renderer busy for as long as a test waited on a training run. Every
# `page.wait_for_function` of the browser tests looks this often unless it says otherwise.
POLL_MS = 100
_wait_for_function = sync_api.Page.wait_for_function


def _wait_for_function_every_poll_ms(self, expression, *, arg=None, timeout=None, polling=POLL_MS):
    return _wait_for_function(self, expression, arg=arg, timeout=timeout, polling=polling)


sync_api.Page.wait_for_function = _wait_for_function_every_poll_ms


def wait_text(page, elem_id: str, needle: str | tuple[str, ...], timeout: float = 60_000) -> None:
    """Wait until #elem_id's text holds `needle` (or any of a tuple of them: a fast machine may pass a state
    between two polls); a timeout says what it held instead (a flake explains itself)."""
    needles = [needle] if isinstance(needle, str) else list(needle)
    try:
        page.wait_for_function("([id, needles]) => needles.some(n => (document.getElementById(id)?.innerText || '')"
                               ".includes(n))", arg=[elem_id, needles], timeout=timeout)
    except sync_api.TimeoutError:
        held = page.evaluate("(id) => document.getElementById(id)?.innerText ?? '(no such element)'", elem_id)
        raise AssertionError(f"#{elem_id} never said {' or '.join(map(repr, needles))} in {timeout / 1000:.0f} s; "
                             f"it says {held!r}") from None


def upload(page, elem_id: str, path: Path, tries: int = 3, timeout: float = 30_000) -> None:
    """Give #elem_id's file box `path` and wait until the box shows the file's name.

    Once in a CI run a file set just after its box appeared never showed up (90 s without its name, the
    server busy with the other worker's tests); a person who sees no name picks the file again, and so does
    this, `tries` times. The last failure says what the box and any toast said."""
    field = page.locator(f"#{elem_id} input[type=file]")
    try:
        field.wait_for(state="attached", timeout=timeout)
    except sync_api.TimeoutError:  # twice in CI the box showed without its file input: say what it held instead
        page.screenshot(path=SHOTS / f"no-file-input-{elem_id}.png", full_page=True)
        held = page.evaluate("(id) => document.getElementById(id)?.outerHTML ?? '(no such element)'", elem_id)
        raise AssertionError(f"#{elem_id} has no file input after {timeout / 1000:.0f} s; it holds "
                             f"{held[:3000]!r}") from None
    for _ in range(tries):
        try:  # once in a CI run the box lost its file input for 90 s, under the other worker's load: try again
            field.set_input_files(str(path), timeout=timeout)
            # the box may draw the name as stem and extension on two lines ("mine\n.jsonl"): compare without spaces
            page.wait_for_function("([id, name]) => (document.getElementById(id)?.innerText || '')"
                                   ".replace(/\\s+/g, '').includes(name.replace(/\\s+/g, ''))",
                                   arg=[elem_id, path.name], timeout=timeout)
            return
        except sync_api.TimeoutError:
            continue
    toasts = page.evaluate("() => [...document.querySelectorAll('.toast-body')].map(t => t.innerText).join(' | ')")
    raise AssertionError(f"#{elem_id} never showed {path.name} after {tries} tries of {timeout / 1000:.0f} s; it says "
                         f"{text(page, elem_id)!r}; toasts: {toasts!r}")
