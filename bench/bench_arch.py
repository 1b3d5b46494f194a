"""The default recipe with each kind of norm: validation bits per character, and what a step costs.

    python bench/bench_arch.py --runs 3                       # equal time: the recipe's own 133 s, median of 3
    python bench/bench_arch.py --runs 1 --max-iters 1500      # equal steps, no time limit: quality per step
    python bench/bench_arch.py --variants layer,rms+emb,rms --runs 3

A variant is the default recipe (`--preset two-minutes`: a 512-token BPE,
context 128, rotary, QK-norm, ReLU², Muon) with its blocks' norm changed:
`layer` is LayerNorm with a gain (the modern architecture until nanochat's
block), `rms` RMSNorm without a gain, and `+emb` adds a norm right after
the embedding; `rms+emb` is nanochat's block, which transformers runs as
NanoChat. Runs interleave (A B A B ...) so a load that drifts slows every
variant alike, each run's seed is shared by its variants, and the 1-minute
load is printed beside every run.

Why two measurements: on a machine others share, a run's step count in 133 s
moves with the load, while quality at equal steps does not. So the default
answer is `--max-iters N` (equal steps) and the step-cost ratio measured
afterwards in this one process, bursts of steps of each variant in turn
(`--burst-rounds`); equal time (`--runs 3` alone) is for a quiet machine.

The step-cost line also times forward + backward alone, where the norms
are: on a CPU without native bf16 (no AVX512-BF16 or AMX), Muon's bf16
Newton-Schulz is emulated and takes most of a step, the same for every
variant, so the whole-step ratio understates the norms' difference there.

Printed per run: steps, training seconds, the recipe's own last validation
bits per character (20 batches) and one over 200 batches (steadier); then the
median of each variant, and the step cost of each relative to the first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {"layer": dict(norm="layer", embed_norm=False), "layer+emb": dict(norm="layer", embed_norm=True),
            "rms": dict(norm="rms", embed_norm=False), "rms+emb": dict(norm="rms", embed_norm=True)}


def load() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def trainer(variant: str, dataset, seed: int, max_iters: int | None):
    from gpt.train import Trainer
    from gpt.train_config import configs_from

    over = dict(seed=seed, sample_tokens=0)
    if max_iters:
        over.update(max_iters=max_iters, max_seconds=0)  # 0: no time limit
    model_cfg, train_cfg = configs_from("two-minutes", dataset.tokenizer.vocab_size, VARIANTS[variant], over)
    return Trainer(model_cfg, train_cfg, dataset, None)


def one_run(variant: str, dataset, seed: int, max_iters: int | None) -> dict:
    from gpt.tokcompare import bits_per_char

    before = load()
    t = trainer(variant, dataset, seed, max_iters)
    if t.run() != "finished":
        raise SystemExit(f"{variant} failed: {t.error}")
    val200 = bits_per_char(t.estimate_loss(200)["val"], dataset.val_chars_per_token)
    return dict(variant=variant, seed=seed, steps=t.step, seconds=t.elapsed, bpc=t.metrics[-1]["val_bpc"],
                bpc200=val200, load=f"{before} -> {load()}")


def step_costs(variants: list[str], dataset, rounds: int, steps: int) -> dict[str, tuple[float, float]]:
    """Median seconds per training step of each variant, and per forward + backward alone (where the norms
    are: the optimizer's share is the same for all), bursts in turn (A B A B ...) after one warm-up round."""
    import torch

    built = [trainer(v, dataset, 1337, 10**6) for v in variants]
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    gen = torch.Generator()
    for rnd in range(rounds + 1):
        for v, t in zip(variants, built):
            t0 = time.perf_counter()
            for _ in range(steps):
                gen.manual_seed(t.step)
                t.train_step(*t._batch("train", gen))  # counts the step itself
            t1 = time.perf_counter()
            for _ in range(steps):
                gen.manual_seed(t.step)
                _, loss = t.model(*t._batch("train", gen))
                loss.backward()
                t.model.zero_grad(set_to_none=True)
            if rnd:
                times[v].append(((t1 - t0) / steps, (time.perf_counter() - t1) / steps))
    return {v: (statistics.median(a for a, _ in ts), statistics.median(b for _, b in ts)) for v, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="layer,rms+emb", help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--runs", type=int, default=3, help="runs of each variant (the median is printed)")
    ap.add_argument("--max-iters", type=int, default=None, help="equal steps and no time limit (default: equal time)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (the CLI's default is two)")
    ap.add_argument("--burst-rounds", type=int, default=8, help="rounds of step-cost bursts (0: skip)")
    ap.add_argument("--burst-steps", type=int, default=20)
    args = ap.parse_args()
    os.environ["GPT_NUM_THREADS"] = str(args.threads)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    from gpt.data import make_dataset

    dataset = make_dataset("shakespeare", "bpe", 512)
    budget = f"{args.max_iters} steps, no time limit" if args.max_iters else "the recipe's time limit"
    print(f"two-minutes recipe, {budget}, {args.threads} threads; load (1, 5, 15 min) at start: {load()}\n")
    print("| variant | seed | steps | train s | val bpc (20 batches) | val bpc (200) | load before -> after |")
    print("|---|---:|---:|---:|---:|---:|---|")
    rows = []
    for r in range(args.runs):
        for v in variants:  # interleaved: A B A B ...
            row = one_run(v, dataset, 1337 + r, args.max_iters)
            rows.append(row)
            print(f"| {v} | {row['seed']} | {row['steps']:,} | {row['seconds']:.0f} | {row['bpc']:.4f} | "
                  f"{row['bpc200']:.4f} | {row['load']} |", flush=True)
    print("\n| variant | median val bpc (20) | median val bpc (200) | median steps |")
    print("|---|---:|---:|---:|")
    for v in variants if rows else ():
        mine = [r for r in rows if r["variant"] == v]
        print(f"| {v} | {statistics.median(r['bpc'] for r in mine):.4f} | "
              f"{statistics.median(r['bpc200'] for r in mine):.4f} | {statistics.median(r['steps'] for r in mine):,.0f} |")
    if args.burst_rounds:
        before = load()
        cost = step_costs(variants, dataset, args.burst_rounds, args.burst_steps)
        print(f"\nstep cost, {args.burst_rounds} rounds of {args.burst_steps} steps each, in turn "
              f"(load {before} -> {load()}):")
        first = cost[variants[0]]
        for v in variants:
            (step, fb) = cost[v]
            print(f"- {v}: {step * 1e3:.1f} ms/step ({step / first[0]:.3f}x {variants[0]}); forward + backward "
                  f"{fb * 1e3:.1f} ms ({fb / first[1]:.3f}x)")


if __name__ == "__main__":
    main()
