"""How long the Train tab takes to show a new BPE vocabulary size while a run trains (issue 14, problem 2).

    GPT_DATA_DIR=/work/shared/data .venv/bin/python bench/bench_bpe_vocab.py [--repeats 5]

Serves the app in this process, opens it in Debian's Chromium, starts the
default run (Tiny Shakespeare, the `fast` preset) from the page, picks the
BPE tokenizer, then types each vocabulary size into the slider's number box
and presses Enter, as a person does. It times Enter to the statistics table
showing that vocabulary size, and prints each time and the median. The goal
is under 3 s with a run training.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "tests")]

from helpers_app import launch_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def wait_text(page, elem_id: str, needle: str, timeout: float = 180_000) -> None:
    page.wait_for_function("([id, needle]) => (document.getElementById(id)?.innerText || '').includes(needle)",
                           arg=[elem_id, needle], timeout=timeout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    demo, url = launch_app(Path(tempfile.mkdtemp()), GPT_MAX_ITERS=20_000)
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(180_000)
            page.goto(url)
            wait_text(page, "corpus-stats", "characters")
            page.click("#start-btn")
            wait_text(page, "progress", "running")
            page.locator("#tokenizer").get_by_text("BPE trained on this corpus").click()
            t0 = time.monotonic()
            try:
                wait_text(page, "corpus-stats", "2,048", 60_000)
            except Exception:
                page.screenshot(path="/tmp/bpe-timeout.png")
                print("STATS:", page.locator("#corpus-stats").inner_text())
                raise
            print(f"BPE chosen: {time.monotonic() - t0:.2f} s", flush=True)
            print("training, BPE 2,048 shown", flush=True)
            for k in range(args.repeats):
                vocab = 1024 + 64 * (k + 1)
                box = page.locator("#bpe-vocab input[type=number]")
                box.fill(str(vocab))
                t0 = time.monotonic()
                box.press("Enter")
                wait_text(page, "corpus-stats", f"{vocab:,}")
                times.append(time.monotonic() - t0)
                print(f"vocabulary {vocab:,}: {times[-1]:.2f} s", flush=True)
            assert "running" in page.locator("#progress").inner_text(), "the run should still be training"
            browser.close()
    finally:
        demo.manager.shutdown()
        demo.close()
    print(f"median over {len(times)}: {statistics.median(times):.2f} s (goal: under 3 s with a run training)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
