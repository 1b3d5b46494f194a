"""How long a real Ctrl+V into the Train tab's "Your text" box takes to land, by size, in Chromium.

    python bench/bench_paste.py                       # 1 KB to 1 MB, 3 rounds; prints markdown rows
    python bench/bench_paste.py --sizes 50000 200000 --rounds 1

Launches `python app.py` (127.0.0.1, a free port, a temporary runs folder), chooses "Paste text", puts
the text on the browser's clipboard and presses Ctrl+V in the box, then times the paste until the box
holds the text. Below `gpt.ui.paste.FAST_PASTE_CHARS` this is the browser's own paste; above it, the
page's script that takes long pastes over (one assignment). Each figure includes Playwright's round
trips (about a second on a loaded machine: the 1 KB row is that floor). The load average is printed
beside the figures: this is a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from load_test import free_port, start_app, stop_app, wait_http  # noqa: E402

from gpt.ui.paste import FAST_PASTE_CHARS  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LINE = "To be, or not to be, that is the question.\n"


def paste_seconds(page, n: int) -> float:
    page.evaluate("([n, line]) => navigator.clipboard.writeText(line.repeat(Math.ceil(n / line.length)).slice(0, n))",
                  [n, LINE])
    box = page.locator("#corpus-paste textarea")
    box.fill("")
    box.focus()
    start = time.monotonic()
    page.keyboard.press("Control+V")
    # the box may normalise line ends: 95% of the characters is the paste having landed
    page.wait_for_function("(n) => document.querySelector('#corpus-paste textarea').value.length > 0.95 * n",
                           arg=n, timeout=300_000)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 20_000, 50_000, 90_000, 200_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    folder, port = Path(tempfile.mkdtemp(prefix="bench-paste-")), free_port()
    proc = start_app(folder, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/", 300)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("(document.getElementById('corpus-stats')?.innerText || '').includes('characters')")
            page.click("#corpus input")
            page.get_by_role("option", name="Paste text").click()
            page.wait_for_selector("#corpus-paste textarea")
            print(f"load average {os.getloadavg()[0]:.1f}; the page takes pastes over above {FAST_PASTE_CHARS:,} chars\n")
            print("| characters | who pastes | median s (Ctrl+V to the text in the box) |\n|---:|---|---:|")
            for n in args.sizes:
                times = [paste_seconds(page, n) for _ in range(args.rounds)]
                who = "the page's script" if n > FAST_PASTE_CHARS else "the browser"
                print(f"| {n:,} | {who} | {statistics.median(times):.2f} |", flush=True)
            browser.close()
        print(f"\nload average {os.getloadavg()[0]:.1f}")
    finally:
        stop_app(proc, folder)


if __name__ == "__main__":
    main()
