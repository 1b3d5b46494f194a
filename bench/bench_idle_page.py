"""What open pages cost when nobody does anything: the server's and Chromium's CPU over a window.

    python bench/bench_idle_page.py --pages 5            # five idle pages
    python bench/bench_idle_page.py --pages 0            # the server alone

Starts `python app.py` in its own process on 127.0.0.1 with an empty runs
folder, opens N pages in Debian's Chromium (one context each, as N people),
waits until each shows its corpus statistics, then reads the CPU time of the
server and of every Chromium process over `--seconds` (psutil) and prints
both as a share of one core, with the load beside them. Compare two trees in
the same hour (`git stash`, or a worktree): the machine's load moves these.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the tests' Chromium helpers import gpt


def chromium_cpu() -> float:
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if "chrom" in (proc.info["name"] or ""):
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--port", type=int, default=7998)
    args = ap.parse_args()
    from helpers_browser import ARGS, CHROMIUM, sync_api, wait_text  # Debian's Chromium and its flags

    url = f"http://127.0.0.1:{args.port}/"
    env = {**os.environ, "GPT_CHECKPOINT_DIR": tempfile.mkdtemp(), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(args.port), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for _ in range(args.pages):
                page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
                page.goto(url)
                wait_text(page, "corpus-stats", "characters")
            time.sleep(5)  # past the pages' first events
            server = psutil.Process(app.pid)
            load, c0, k0, t0 = os.getloadavg()[0], server.cpu_times(), chromium_cpu(), time.monotonic()
            time.sleep(args.seconds)
            c1, k1, dt = server.cpu_times(), chromium_cpu(), time.monotonic() - t0
            browser.close()
        busy = (c1.user + c1.system) - (c0.user + c0.system)
        print(f"{args.pages} idle pages over {dt:.0f} s: server {100 * busy / dt:.0f}% of a core, "
              f"Chromium {100 * (k1 - k0) / dt:.0f}% (load {load:.1f} at the start)")
    finally:
        app.kill()


if __name__ == "__main__":
    main()
