"""What an SFT batch costs to build beside a pretraining batch, and how full its rows are.

    python bench/bench_chat_batches.py            # markdown rows: task, ms per batch, padding, loss share

For each source (built-in tasks and a file of 10,000 two-turn conversations),
a character chat tokenizer over Tiny Shakespeare grown for it, batches of
32 x 256: the median time of `ChatBatches.get_batch` over 30 calls (after 5
warm-up calls that fill the render cache), the share of padding positions, and
the share of positions with a loss. `Dataset.get_batch` on the corpus is the
yardstick. The load average is printed beside the figures: on a shared
machine they move with it.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpt import corpus  # noqa: E402
from gpt.chat import ChatBatches, ChatTokenizer, parse_conversations, task_from_name  # noqa: E402
from gpt.chat.grow import data_texts, grown_base  # noqa: E402
from gpt.data import Dataset  # noqa: E402
from gpt.tokenizer import CharTokenizer  # noqa: E402

B, T, CALLS, WARM = 32, 256, 30, 5


def median_ms(fn) -> float:
    for _ in range(WARM):
        fn()
    times = []
    for _ in range(CALLS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def file_of(n: int):
    lines = [json.dumps({"messages": [{"role": "user", "content": f"Tell me fact number {i}."},
                                      {"role": "assistant", "content": f"Fact {i} is that {i} * 2 = {2 * i}."}]})
             for i in range(n)]
    return parse_conversations("\n".join(lines).encode(), "facts.jsonl")


def main() -> None:
    text = corpus.load("shakespeare").text
    base = CharTokenizer.from_text(text)
    ds = Dataset(text, base, "shakespeare")
    gen = torch.Generator().manual_seed(0)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), torch threads {torch.get_num_threads()}")
    print("| source | ms per 32 x 256 batch | padding | positions with a loss |")
    print("|---|---:|---:|---:|")
    print(f"| Dataset (pretraining) | {median_ms(lambda: ds.get_batch('train', B, T, 'cpu', gen)):.2f} | 0% | 100% |")
    for name, task in [("addition", task_from_name("addition")), ("mix", task_from_name("mix")),
                       ("shakespeare", task_from_name("shakespeare")), ("file, 10,000", file_of(10_000))]:
        chat = ChatTokenizer(grown_base(base, data_texts(task))[0])
        batches = ChatBatches(task, chat, T)
        ms = median_ms(lambda: batches.get_batch("train", B, T, "cpu", gen))
        x, y = batches.get_batch("train", B, T, "cpu", torch.Generator().manual_seed(1))
        last_real = [max((t for t in range(T) if row[t] != chat.end_id), default=0) for row in x.tolist()]
        padding = sum(T - 1 - t for t in last_real) / x.numel()
        print(f"| {name} | {ms:.2f} | {padding:.0%} | {(y >= 0).float().mean().item():.0%} |")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
