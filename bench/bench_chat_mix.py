"""Does addition still reach a high accuracy inside the default mix? Same steps, addition alone vs the mix.

    python bench/bench_chat_mix.py --steps 3000        # markdown rows: source, addition accuracy, ended, minutes

A 4-layer, 128-wide (--layers, --width) character GPT (context 64) over Tiny Shakespeare's
characters, grown into a chat model for the source, trained from scratch on
`ChatBatches` (batch 32, AdamW, lr 1e-3 after 100 warm-up steps, cosine to
1e-4) for the same number of steps; then `evaluate` on 200 held-out addition
questions, greedy. The mix gives addition half of its draws (`DEFAULT_MIX`),
so it sees about half as many sums: the row to read is how close it comes to
addition alone. Minutes are wall time on this machine, the load beside them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpt import corpus  # noqa: E402
from gpt.chat import ChatBatches, chat_model, evaluate, task_from_name  # noqa: E402
from gpt.model import GPTConfig, build_model  # noqa: E402
from gpt.tokenizer import CharTokenizer  # noqa: E402


def train(source: str, steps: int, layers: int, width: int, seed: int = 0) -> tuple[float, float, float]:
    torch.manual_seed(seed)
    base = CharTokenizer.from_text(corpus.load("shakespeare").text)
    task = task_from_name(source)
    model = build_model(GPTConfig(vocab_size=base.vocab_size, block_size=64, n_layer=layers, n_head=4, n_embd=width))
    grown = chat_model(model, base, task)
    batches = ChatBatches(task, grown.tokenizer, 64)
    opt = torch.optim.AdamW(grown.model.parameters(), lr=1e-3, weight_decay=0.1)
    gen = torch.Generator().manual_seed(seed)
    start = time.time()
    grown.model.train()
    for step in range(steps):
        lr = 1e-3 * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batches.get_batch("train", 32, 64, "cpu", gen)
        _, loss = grown.model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(grown.model.parameters(), 1.0)
        opt.step()
        if step % 500 == 0:
            print(f"  {source} step {step} loss {loss.item():.3f}", flush=True)
    score = evaluate(grown.model.eval(), grown.tokenizer, "addition", n=200)
    return score.accuracy, score.ended, (time.time() - start) / 60


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--sources", default="addition,mix")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    args = parser.parse_args()
    rows = []
    for source in args.sources.split(","):
        accuracy, ended, minutes = train(source, args.steps, args.layers, args.width)
        rows.append(f"| {source} | {args.steps:,} | {accuracy:.0%} | {ended:.0%} | {minutes:.1f} "
                    f"(load {os.getloadavg()[0]:.1f}) |")
    print(f"{args.layers} layers x {args.width}, {torch.get_num_threads()} thread(s)")
    print("| trained on | steps | addition accuracy (200 held out) | ended | minutes |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
