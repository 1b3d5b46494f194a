"""How long tokenizers take to build on Tiny Shakespeare: a markdown table row each.

    python bench/bench_tokenizer.py [path/to/tinyshakespeare.txt]

Rows: training a 2,048-token BPE (rustbpe, the issue asks for under 10 s), and,
where GPT-2's ranks are at hand ($GPT_GPT2_RANKS or .tiktoken_cache/gpt2.tiktoken),
building the compact GPT-2 vocabulary. Each figure is the median of 3 runs.
"""

import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gpt import bpe  # noqa: E402

CANDIDATES = [os.path.join(ROOT, "data", "tinyshakespeare.txt"),
              os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt")]
COMMAND = "python bench/bench_tokenizer.py"


def median_seconds(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else next((p for p in CANDIDATES if os.path.exists(p)), None)
    if not path:
        raise SystemExit("tinyshakespeare.txt not found; pass its path")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    where = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    print("| what | median of 3 | machine | command |")
    print("|---|---|---|---|")
    seconds = median_seconds(lambda: bpe.train(text, 2048))
    print(f"| train 2,048-token BPE on Tiny Shakespeare ({len(text) / 1e6:.1f} MB) | {seconds:.2f} s | {where} "
          f"| `{COMMAND}` |")
    ranks = os.environ.get("GPT_GPT2_RANKS") or os.path.join(ROOT, ".tiktoken_cache", "gpt2.tiktoken")
    if os.path.exists(ranks):
        os.environ["GPT_GPT2_RANKS"] = ranks
        bpe.load_encoding("gpt2")  # parse the ranks once; time the compaction itself
        tok = bpe.pretrained("gpt2", text)
        seconds = median_seconds(lambda: bpe.pretrained("gpt2", text))
        print(f"| compact GPT-2 vocabulary on Tiny Shakespeare ({tok.vocab_size:,} of {tok.full_vocab_size:,}) "
              f"| {seconds:.2f} s | {where} | `{COMMAND}` |")


if __name__ == "__main__":
    main()
