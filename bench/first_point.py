"""Click on Start to the first loss point, through the app's API (no browser needed).

    python bench/first_point.py                           # the default preset, 3 rounds
    python bench/first_point.py --preset medium --rounds 1

Starts `python app.py` on a free 127.0.0.1 port with a temporary checkpoints
folder (as bench/load_test.py does), then per round calls `/start_run` and
polls `/run_status` every 20 ms until the run's first evaluation row (the
step-0 point of the loss plot) is there, and stops the run. The browser
figure (bench/bench_app.py) adds the page's own redraw, ~0.1 s here; this one
runs where no Chromium is installed, e.g. a fresh GPU machine (bench/gpu.sh).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_test import free_port, start_app, stop_app, wait_http  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None, help="default: the app's default preset")
    ap.add_argument("--corpus", default="shakespeare")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    from gradio_client import Client

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gpt.presets import DEFAULT_PRESET

    preset = args.preset or DEFAULT_PRESET
    folder = Path(tempfile.mkdtemp(prefix="gpt-first-point-"))
    port = free_port()
    proc = start_app(folder, port)
    times = []
    try:
        up = wait_http(f"http://127.0.0.1:{port}/", args.timeout)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            name = client.predict(corpus=args.corpus, preset=preset, api_name="/start_run")["name"]
            while time.perf_counter() - t0 < args.timeout:
                status = client.predict(run=name, api_name="/run_status")
                if status.get("metrics"):
                    break
                time.sleep(0.02)
            else:
                sys.exit(f"no loss point within {args.timeout} s")
            times.append(time.perf_counter() - t0)
            client.predict(run=name, api_name="/stop_run")
            while client.predict(run=name, api_name="/run_status").get("state") in ("queued", "preparing", "running"):
                time.sleep(0.2)
    finally:
        stop_app(proc, folder)
    print("| figure | preset | median | rounds | app answered HTTP after |")
    print("|---|---|---|---|---|")
    print(f"| Start -> first loss point (API) | `{preset}` | {statistics.median(times):.2f} s | "
          f"{', '.join(f'{t:.2f}' for t in times)} s | {up:.1f} s |")


if __name__ == "__main__":
    main()
