"""The default recipe with each kind of norm: validation bits per character, and what a step costs.

    python bench/bench_arch.py --runs 3                       # equal time: the recipe's own 133 s, median of 3
    python bench/bench_arch.py --runs 3 --max-iters 2000 --parallel --threads 1   # equal steps, all at once
    python bench/bench_arch.py --runs 3 --max-iters 2000 --parallel --device cuda --burst-rounds 0   # the same, on a GPU
    python bench/bench_arch.py --variants layer,rms+emb,rms --runs 3

A variant is the default recipe (the Train tab's `two-minutes`: Tiny
Shakespeare on a 512-token BPE, context 128, rotary, QK-norm, ReLU², Muon)
with its blocks' norm changed: `layer` is LayerNorm with a gain (the modern
architecture until nanochat's block), `rms` RMSNorm without a gain, and
`+emb` adds a norm right after the embedding; `rms+emb` is nanochat's block,
which transformers runs as NanoChat. Runs interleave (A B A B ...) so a load
that drifts slows every variant alike; each seed is shared by its variants
(the same initial weights, the same batches), so the differences are also
printed seed by seed; the 1-minute load is printed beside every run.

Why two measurements: on a machine others share, a run's step count in 133 s
moves with the load, while quality at equal steps does not. The recipe stops
at 2,000 steps, which a quiet 2-thread CPU with native bf16 reaches in ~115 s,
within its 133 s: there equal time is equal steps (`--max-iters 2000`) as long
as neither variant's step costs 15% more (the step-cost lines). `--parallel`
runs every run at once in its own process, so all see the same load.

The step-cost line also times forward + backward alone, where the norms
are: on a CPU without native bf16 (no AVX512-BF16 or AMX), Muon's bf16
Newton-Schulz is emulated and takes most of a step, the same for every
variant, so the whole-step ratio understates the norms' difference there.

Printed per run: steps, training seconds, the recipe's own last validation
bits per character (20 batches) and one over 200 batches (steadier); then the
median of each variant, the seed-by-seed differences from the first variant,
and the step cost of each relative to the first.
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
    """The default recipe with the variant's norms; GPT_BENCH_DEVICE (set by --device) names the device."""
    from gpt.presets import DEFAULT_PRESET
    from gpt.train import Trainer, configs_from

    over = dict(seed=seed, sample_tokens=0, device=os.environ.get("GPT_BENCH_DEVICE"))
    if max_iters:
        over.update(max_iters=max_iters, max_seconds=0)  # 0: no time limit
    model_cfg, train_cfg = configs_from(DEFAULT_PRESET, dataset.tokenizer.vocab_size, VARIANTS[variant], over)
    return Trainer(model_cfg, train_cfg, dataset, None)


def one_run(variant: str, dataset, seed: int, max_iters: int | None, val_batches: int = 200) -> dict:
    from gpt.tokcompare import bits_per_char

    before = load()
    t = trainer(variant, dataset, seed, max_iters)
    if t.run() != "finished":
        raise SystemExit(f"{variant} failed: {t.error}")
    t.model.eval()
    val200 = bits_per_char(t.objective.mean_loss(t, "val", val_batches), dataset.val_chars_per_token)
    return dict(variant=variant, seed=seed, steps=t.step, seconds=t.elapsed, bpc=t.metrics[-1]["val_bpc"],
                bpc200=val200, load=f"{before} -> {load()}")


def print_row(row: dict) -> None:
    print(f"| {row['variant']} | {row['seed']} | {row['steps']:,} | {row['seconds']:.0f} | {row['bpc']:.4f} | "
          f"{row['bpc200']:.4f} | {row['load']} |", flush=True)


def step_costs(variants: list[str], dataset, rounds: int, steps: int) -> dict[str, tuple[float, float]]:
    """Median seconds per training step of each variant, and per forward + backward alone (where the norms
    are: the optimizer's share is the same for all), bursts in turn (A B A B ...) after one warm-up round."""
    from gpt.device import autocast

    built = [trainer(v, dataset, 1337, 10**6) for v in variants]
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for rnd in range(rounds + 1):
        for v, t in zip(variants, built):
            t0 = time.perf_counter()
            for _ in range(steps):
                t.train_step()  # counts the step itself
            t1 = time.perf_counter()
            for _ in range(steps):
                with autocast(t.device, t.dtype):
                    loss = t.objective.loss(t.model, t.next_batch())
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
    ap.add_argument("--threads", type=int, default=2, help="CPU threads per run (the CLI's default is two)")
    ap.add_argument("--parallel", action="store_true",
                    help="every run at once, each in its own process (with --max-iters: the same load for all)")
    ap.add_argument("--device", default=None, help="auto (the recipe's), cpu, cuda: equal steps on a GPU are minutes")
    ap.add_argument("--val-batches", type=int, default=200, help="batches of the steadier validation figure")
    ap.add_argument("--burst-rounds", type=int, default=8, help="rounds of step-cost bursts (0: skip)")
    ap.add_argument("--burst-steps", type=int, default=20)
    args = ap.parse_args()
    os.environ["GPT_NUM_THREADS"] = str(args.threads)
    if args.device:
        os.environ["GPT_BENCH_DEVICE"] = args.device  # read in each run's process (--parallel forks them)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    from gpt import corpus
    from gpt.presets import DEFAULT_PRESET, preset_tokenizer

    dataset = corpus.dataset(corpus.load("shakespeare"), *preset_tokenizer(DEFAULT_PRESET))
    budget = f"{args.max_iters} steps, no time limit" if args.max_iters else "the recipe's time limit"
    print(f"{DEFAULT_PRESET} recipe, {budget}, {args.threads} threads, device {args.device or 'auto'}; load (1, 5, 15 min) at start: {load()}\n")
    print(f"| variant | seed | steps | train s | val bpc (20 batches) | val bpc ({args.val_batches}) | load before -> after |")
    print("|---|---:|---:|---:|---:|---:|---|")
    jobs = [(v, dataset, 1337 + r, args.max_iters, args.val_batches) for r in range(args.runs) for v in variants]  # A B A B ...
    if args.parallel:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:  # forked: the tokenizer is built once
            done = pool.starmap_async(one_run, jobs)
            rows = done.get()
    else:
        rows = []
    for job in jobs[len(rows):] if not args.parallel else ():
        rows.append(one_run(*job))
        print_row(rows[-1])
    for row in rows if args.parallel else ():
        print_row(row)
    print(f"\n| variant | median val bpc (20) | median val bpc ({args.val_batches}) | median steps |")
    print("|---|---:|---:|---:|")
    for v in variants if rows else ():
        mine = [r for r in rows if r["variant"] == v]
        print(f"| {v} | {statistics.median(r['bpc'] for r in mine):.4f} | "
              f"{statistics.median(r['bpc200'] for r in mine):.4f} | {statistics.median(r['steps'] for r in mine):,.0f} |")
    for v in variants[1:] if rows else ():  # the same seed is the same initial weights and the same batches
        pairs = {r["seed"]: r["bpc200"] for r in rows if r["variant"] == v}
        diffs = [pairs[r["seed"]] - r["bpc200"] for r in rows if r["variant"] == variants[0]]
        print(f"\n{v} minus {variants[0]}, val bpc ({args.val_batches}) seed by seed: "
              f"{', '.join(f'{d:+.4f}' for d in diffs)} (median {statistics.median(diffs):+.4f})")
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
