"""The context windows past block_size, timed as ratios that survive a busy machine.

    python bench/bench_crop.py                 # medium and small, 500 new tokens, 5 rounds, 1 thread
    python bench/bench_crop.py --tokens 300 --rounds 3

bench_sampling.py times each mode in its own stretch, so on a shared machine
a change of load between stretches shows up as a speed-up. Here every round
runs each mode once, back to back, and a mode's speed-up is the median over
rounds of (no-cache time / its time) within that round. Fresh weights: speed
does not depend on the values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gpt.device import configure_cpu_threads  # noqa: E402
from gpt.engine import SamplingSettings, generate  # noqa: E402
from gpt.model import MODEL_PRESETS, GPTConfig, build_model  # noqa: E402

MODES = {"no cache (nanoGPT)": dict(use_cache=False), "KV cache, slide": dict(use_cache=True, window="slide"),
         "KV cache, crop": dict(use_cache=True, window="crop")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="medium,small")
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    threads = configure_cpu_threads(args.threads)
    settings = SamplingSettings(max_new_tokens=args.tokens, temperature=0.8, seed=1337)
    print("| model | mode | tokens/s (median) | speed-up vs no cache (median of rounds) | range | threads | load |")
    print("|---|---|---|---|---|---|---|")
    for preset in args.presets.split(","):
        torch.manual_seed(0)
        model = build_model(GPTConfig(vocab_size=65, **MODEL_PRESETS[preset])).eval()
        c = model.config
        l0 = os.getloadavg()[0]
        times: dict[str, list[float]] = {m: [] for m in MODES}
        for m, kw in MODES.items():
            generate(model, [0], SamplingSettings(max_new_tokens=20), **kw)  # warm-up
        for _ in range(args.rounds):
            for m, kw in MODES.items():
                t = time.perf_counter()
                generate(model, [0], settings, **kw)
                times[m].append(time.perf_counter() - t)
        base = times["no cache (nanoGPT)"]
        for m, ts in times.items():
            ratios = [b / t for b, t in zip(base, ts)]
            print(f"| {preset} ({c.n_layer}x{c.n_head}x{c.n_embd}, block {c.block_size}) | {m} | "
                  f"{args.tokens / statistics.median(ts):,.0f} | {statistics.median(ratios):.2f}x | "
                  f"{min(ratios):.2f}-{max(ratios):.2f}x | {threads} | {l0:.1f}-{os.getloadavg()[0]:.1f} |")
    print(f"\ncommand: `python bench/bench_crop.py --tokens {args.tokens} --rounds {args.rounds} --threads {args.threads}`")


if __name__ == "__main__":
    main()
