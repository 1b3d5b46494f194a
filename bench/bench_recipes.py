"""Step cost of training recipes, side by side in one process.

    python bench/bench_recipes.py fast fast+bpe512 "fast+bpe1024" --threads 2
    python bench/bench_recipes.py "fast:batch_size=32" "fast:n_embd=192,n_head=4"

A recipe is a preset name, optionally `+bpeN` (a trained BPE of N tokens
instead of characters) and `:key=value,...` overrides of its model or
training settings. Each recipe's Trainer is built once; then bursts of steps
run in turn (A B C A B C ...), so a machine whose speed drifts, or that
others share, slows every recipe alike and the ratios hold. Printed: the
median ms per step, the process's CPU ms per step (steadier than the wall
clock on a busy machine), characters of training text per second (tokens x
chars/token: what a time budget buys across tokenizers) and the 1-minute
load before and after.

Why not time whole runs: on a shared 2-core machine a 130 s run's step count
moves by 25% with the load, while quality at equal steps does not move at
all. So recipes are compared on quality at equal steps (`python -m gpt.train
--max-iters N`) and on step cost here, and N for a time budget is the budget
over the quiet step cost.
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


def parse_recipe(spec: str) -> tuple[str, str, int | None, dict]:
    """'fast+bpe512:batch_size=32' -> ('fast', 'bpe', 512, {'batch_size': 32})."""
    head, _, over = spec.partition(":")
    name, _, tok = head.partition("+")
    kind, vocab = ("char", None) if not tok else ("bpe", int(tok.removeprefix("bpe")))
    overrides = {}
    for pair in filter(None, over.split(",")):
        k, v = pair.split("=")
        overrides[k] = float(v) if "." in v or "e-" in v else (int(v) if v.lstrip("-").isdigit() else v)
    return name, kind, vocab, overrides


def build(spec: str):
    from gpt.model import GPTConfig
    from gpt import corpus as corpora
    from gpt.train import Trainer
    from gpt.train import TrainConfig, configs_from

    name, kind, vocab, over = parse_recipe(spec)
    dataset = corpora.dataset(corpora.load("shakespeare"), kind, vocab)
    model_keys = set(GPTConfig.__dataclass_fields__)
    model_over = {k: v for k, v in over.items() if k in model_keys}
    train_over = {k: v for k, v in over.items() if k in TrainConfig.__dataclass_fields__}
    train_over.update(max_seconds=None, max_iters=10**6, eval_interval=10**9, sample_tokens=0)
    model_cfg, train_cfg = configs_from(name, dataset.tokenizer.vocab_size, model_over, train_over)
    train_cfg.max_seconds = None
    return Trainer(model_cfg, train_cfg, dataset, None), dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="+")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--steps", type=int, default=20, help="steps per burst")
    ap.add_argument("--rounds", type=int, default=5, help="bursts per recipe")
    args = ap.parse_args()
    if args.threads:
        os.environ["GPT_NUM_THREADS"] = str(args.threads)
    import torch

    built = [build(spec) for spec in args.recipes]
    gens = [torch.Generator() for _ in built]
    times: list[list[float]] = [[] for _ in built]
    cpus: list[list[float]] = [[] for _ in built]
    l0 = os.getloadavg()[0]
    for rnd in range(args.rounds + 1):  # round 0 warms up
        for i, (trainer, _) in enumerate(built):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                gens[i].manual_seed(trainer.step)
                x, y = trainer._batch("train", gens[i])
                trainer.train_step(x, y)
            if rnd:
                times[i].append((time.perf_counter() - t0) / args.steps)
                cpus[i].append((time.process_time() - c0) / args.steps)
    l1 = os.getloadavg()[0]
    threads = os.environ.get("GPT_NUM_THREADS", str(os.cpu_count()))
    print("| recipe | ms/step median (min-max) | CPU ms/step (median) | train chars/s | threads | load |")
    print("|---|---|---|---|---|---|")
    for spec, (trainer, dataset), ts, cs in zip(args.recipes, built, times, cpus):
        med = statistics.median(ts)
        tokens = trainer.config.batch_size * trainer.model_config.block_size
        chars = tokens * dataset.val_chars_per_token / med
        print(f"| `{spec}` | {med * 1e3:.1f} ({min(ts) * 1e3:.1f}-{max(ts) * 1e3:.1f}) | "
              f"{statistics.median(cs) * 1e3:.1f} | {chars:,.0f} | {threads} | "
              f"{l0:.1f}-{l1:.1f} |")


if __name__ == "__main__":
    main()
