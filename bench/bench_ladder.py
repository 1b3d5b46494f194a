"""The lecture's ablation ladder, timed: `python -m gpt.ladder` run N times, the median per rung.

    GPT_DATA_DIR=/work/shared/data python bench/bench_ladder.py            # rungs 1-6, 3 runs
    python bench/bench_ladder.py --runs 1 --rungs 1-7 -- --init gpt2       # flags after -- go to gpt.ladder

Each run is the user's command (a fresh process, the tqdm bar, a checkpoint
per evaluation); the seconds per rung are its training wall time, evaluations
included. The validation loss is the same every run (seeded); the seconds are
not, on a shared machine: the 1-minute load average before and after each run
is printed beside them. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(rungs: str, extra: list[str]) -> tuple[list[dict], float, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as out:
        before, t0 = os.getloadavg()[0], time.perf_counter()
        subprocess.run([sys.executable, "-m", "gpt.ladder", "--out", out, "--rungs", rungs, *extra], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        return json.loads((Path(out) / "ladder.json").read_text()), wall, (before, os.getloadavg()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rungs", default="1-6")
    args, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]
    runs = []
    for k in range(args.runs):
        rows, wall, (before, after) = one_run(args.rungs, extra)
        runs.append(rows)
        print(f"run {k + 1}: {wall:.0f} s for the whole command, load {before:.1f} -> {after:.1f}", flush=True)
    print("| rung | change | val loss | lecture | params | steps | median s | runs (s) |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for i, row in enumerate(runs[0]):
        secs = [r[i]["seconds"] for r in runs]
        print(f"| {row['rung']} | {row['change']} | {row['val_loss']:.3f} | ~{row['lecture_val_loss']:g} | "
              f"{row['params']:,} | {row['steps']:,} | {statistics.median(secs):.0f} | "
              f"{', '.join(f'{s:.0f}' for s in secs)} |")
    totals = [sum(r["seconds"] for r in rows) for rows in runs]
    print(f"\nall rungs: median {statistics.median(totals):.0f} s ({', '.join(f'{t:.0f}' for t in totals)})")


if __name__ == "__main__":
    main()
