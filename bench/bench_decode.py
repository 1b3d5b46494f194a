"""Decoding speed on one machine, in one process: one stream, and a class's requests at once.

    python bench/bench_decode.py --checkpoint checkpoints/shakespeare-char --baseline 0ce3e60
    python bench/bench_decode.py --checkpoint checkpoints/shakespeare-char --streams 0 --class-size 30
    python bench/bench_decode.py --streams 0 --class-size 0 --parts 2000

1. **One stream** (`--streams`, default 500 tokens): characters per second
   through `gpt.sample.stream_text` (what `python -m gpt.sample` prints),
   one thread. With `--baseline REV`, the same through the `gpt` package of
   that git revision (extracted to a temporary folder and imported under
   another name), the two interleaved run by run, so both see the same load:
   the ratio is the figure to trust on a shared machine.
2. **A class at once** (`--class-size`, default 30, `--class-tokens` 200):
   every request submitted together to one `gpt.batching.BatchDecoder`;
   the time from submit to each request's last token (p50, p95), against the
   same requests made one after another alone (what one decode loop per
   request costs when they share one core).

3. **Where one stream's token goes** (`--parts N`): the compiled stream's
   token (`gpt.engine.generate` with the packaged step, and with torch.compile's
   graph) beside its pieces, each timed alone over N tokens, interleaved round
   by round: the step (padded to its 4 rows, the cache's bookkeeping), the
   model's matrix products alone (`torch.mm` with its own weights, 4 rows and
   1 row), the slide's rebuild per token (packaged, torch.compile's, eager),
   and sampling.

Medians of `--repeats`; thread CPU time beside wall time; `uptime`'s load
printed with every figure. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402


def load() -> str:
    return "load " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def baseline_package(rev: str) -> str:
    """The `gpt` package of git revision `rev`, importable as `gpt_<rev>` (its imports are relative)."""
    name = f"gpt_{rev}"
    folder = Path(tempfile.mkdtemp(prefix="gpt-baseline-"))
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "gpt"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=tar, check=True)
    (folder / "gpt").rename(folder / name)
    sys.path.insert(0, str(folder))
    return name


def compiled(model, how: str = "packaged"):
    """The model's compiled decode step (gpt.compiled_step), warmed here: the figures are after the compile.
    how: "packaged" (what a model of the shipped one's size gets) or "compiled" (torch.compile's graph, what a
    model too large to package gets)."""
    from gpt import compiled_step

    limit = compiled_step.PACKAGE_MAX_PARAMS
    compiled_step.PACKAGE_MAX_PARAMS = limit if how == "packaged" else 0
    try:
        step = compiled_step.CompiledStep(model)
        t = time.perf_counter()
        assert step.warm(), step.failed
    finally:
        compiled_step.PACKAGE_MAX_PARAMS = limit
    assert step.how == how, (step.how, how)
    print(f"(the decode step {how} in {time.perf_counter() - t:.1f} s{', from the cache' if step.loaded else ''})")
    return step


def stream_chars(pkg: str, checkpoint: str, tokens: int, compile: str | None = None):
    """A function that streams `tokens` new tokens through `pkg.sample.stream_text` and returns the characters
    (with this tree's step made as `compile` says: "packaged", "compiled", None for the plain step)."""
    ck = importlib.import_module(f"{pkg}.checkpoint").load_checkpoint(checkpoint, device="cpu")
    sample = importlib.import_module(f"{pkg}.sample")
    settings = importlib.import_module(f"{pkg}.engine").SamplingSettings(max_new_tokens=tokens, temperature=0.8, seed=1337)
    ids = sample.prompt_to_ids(ck.tokenizer, "", ck.model.config.block_size)[0]
    extra = {"step": compiled(ck.model, compile)} if compile else {}
    return lambda: sum(len(piece) for piece in sample.stream_text(ck.model, ck.tokenizer, ids, settings, **extra))


def timed(fn) -> tuple[float, float, object]:
    t, c = time.perf_counter(), time.thread_time()
    out = fn()
    return time.perf_counter() - t, time.thread_time() - c, out


def one_stream(args) -> None:
    paths = {"this tree": stream_chars("gpt", args.checkpoint, args.streams)}
    if args.compile:
        paths["this tree, packaged step"] = stream_chars("gpt", args.checkpoint, args.streams, compile="packaged")
        paths["this tree, torch.compile's graph"] = stream_chars("gpt", args.checkpoint, args.streams, compile="compiled")
    if args.baseline:
        paths[f"baseline {args.baseline}"] = stream_chars(baseline_package(args.baseline), args.checkpoint, args.streams)
    for fn in paths.values():
        fn()  # warm-up
    runs: dict[str, list] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, fn in paths.items():  # interleaved: both paths see the same moments of load
            runs[name].append(timed(fn))
    print(f"\n### One stream: {args.streams} tokens, temperature 0.8, one thread ({load()})\n")
    print("| path | chars/s (median wall) | best | chars/s of thread CPU (median) | runs |")
    print("|---|---:|---:|---:|---:|")
    med = {}
    for name, rs in runs.items():
        chars = rs[0][2]
        walls, cpus = [r[0] for r in rs], [r[1] for r in rs]
        med[name] = statistics.median(walls)
        print(f"| {name} | {chars / med[name]:,.0f} | {chars / min(walls):,.0f} | {chars / statistics.median(cpus):,.0f} "
              f"| {len(rs)} |")
    first = runs["this tree"]
    for name, rs in runs.items():
        if name != "this tree":
            ratios = [a[0] / b[0] for a, b in zip(first, rs)]
            print(f"\n{name} / this tree, run by run (speed): median {statistics.median(ratios):.2f}x "
                  f"(runs: {', '.join(f'{r:.2f}' for r in ratios)})")


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def a_class(args) -> None:
    from gpt.batching import BatchDecoder
    from gpt.checkpoint import load_checkpoint
    from gpt.engine import SamplingSettings, generate

    model = load_checkpoint(args.checkpoint, device="cpu").model.eval()
    requests = [([0], SamplingSettings(max_new_tokens=args.class_tokens, temperature=0.8, seed=i))
                for i in range(args.class_size)]

    steps = (compiled(model), compiled(model, "compiled")) if args.compile else (None, None)

    def together(step=None) -> list[float]:
        decoder = BatchDecoder(model, compiled=step)
        t0 = time.perf_counter()
        streams = [decoder.submit(ids, s) for ids, s in requests]
        done = []
        for stream in streams:  # the loop runs on its own thread; each stream's end is read as it comes
            for _ in stream:
                pass
            done.append(time.perf_counter() - t0)
        return done

    def one_by_one() -> list[float]:
        t0, done = time.perf_counter(), []
        for ids, s in requests:
            generate(model, ids, s)
            done.append(time.perf_counter() - t0)
        return done

    for step in steps:
        together(step)  # warm-up
    rows = []
    for _ in range(args.repeats):  # interleaved: each way sees the same moments of load
        rows.append((together(), one_by_one() if args.alone else None,
                     *(together(step) if step else None for step in steps)))
    print(f"\n### A class at once: {args.class_size} requests x {args.class_tokens} tokens, one thread ({load()})\n")
    print("| how | p50 submit -> last token, s | p95 | all done, s |")
    print("|---|---:|---:|---:|")
    for label, i in (("one decode loop, continuous batching", 0), ("one after another, alone", 1),
                     ("one decode loop, packaged step", 2), ("one decode loop, torch.compile's graph", 3)):
        if rows[0][i] is None:
            continue
        p50 = statistics.median(percentile(r[i], 50) for r in rows)
        p95 = statistics.median(percentile(r[i], 95) for r in rows)
        last = statistics.median(max(r[i]) for r in rows)
        print(f"| {label} | {p50:.2f} | {p95:.2f} | {last:.2f} |")


def token_parts(args) -> None:
    from gpt.checkpoint import load_checkpoint
    from gpt.decode_view import decode_view
    from gpt.engine import Row, SamplingSettings, generate, prefill, sample_rows
    from gpt.kv_cache import RowKVCache

    model = load_checkpoint(args.checkpoint, device="cpu").model.eval()
    step, graph, n, block = compiled(model), compiled(model, "compiled"), args.parts, model.config.block_size
    settings = SamplingSettings(max_new_tokens=n, temperature=0.8, seed=1337)
    view = decode_view(model)
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]  # (out, in) each
    keep = Row.open([0] * block, settings, block).keep  # what a slide keeps: one rebuild every block - keep tokens
    logits = torch.randn(1, model.config.vocab_size)

    def products(rows: int):
        xs = [(torch.randn(rows, w.size(1)), w.t(), torch.empty(rows, w.size(0))) for w in weights]
        return lambda: [torch.mm(x, w, out=out) for _ in range(n) for x, w, out in xs]

    def the_step(step):
        def run():
            cache, idx = RowKVCache(model), torch.zeros(1, 1, dtype=torch.long)
            for i in range(n):
                step(cache, idx, [i % (block - 1)])
        return run

    def rebuilds(step=None):
        cache = RowKVCache(model)
        return lambda: [prefill(view, cache, 0, Row.open([0] * keep, settings, block), step)
                        for _ in range(n // (block - keep))]

    def sampling():
        row = Row.open([0], settings, block)
        for _ in range(n):
            row.made = 0
            sample_rows(logits, [row])

    parts = {"a whole token (generate, the packaged step)": lambda: generate(model, [0], settings, step=step),
             "a whole token (generate, torch.compile's graph)": lambda: generate(model, [0], settings, step=graph),
             "the packaged step (1 row, the cache's bookkeeping)": the_step(step),
             "torch.compile's graph of the step (padded to 4 rows, the same)": the_step(graph),
             f"its {len(weights)} matrix products alone, 4 rows": products(4),
             f"its {len(weights)} matrix products alone, 1 row": products(1),
             f"the slide's rebuild ({keep} tokens every {block - keep}), per token: packaged": rebuilds(step),
             "the same rebuild, torch.compile's graph": rebuilds(graph),
             "the same rebuild, eager": rebuilds(),
             "sampling (temperature 0.8)": sampling}
    runs: dict[str, list[float]] = {name: [] for name in parts}
    with torch.inference_mode():
        for fn in parts.values():
            fn()  # warm-up
        for _ in range(args.repeats):
            for name, fn in parts.items():  # interleaved: every piece sees the same moments of load
                runs[name].append(timed(fn)[0] / n * 1e6)
    print(f"\n### Where one stream's token goes: {n} tokens, one thread ({load()})\n")
    print("| piece | us a token (median) | best |")
    print("|---|---:|---:|")
    for name, us in runs.items():
        print(f"| {name} | {statistics.median(us):.0f} | {min(us):.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "shakespeare-char"))
    ap.add_argument("--streams", type=int, default=500, help="tokens of the one-stream figure (0: skip it)")
    ap.add_argument("--baseline", default=None, help="a git revision to time beside this tree")
    ap.add_argument("--class-size", type=int, default=30, help="requests at once (0: skip)")
    ap.add_argument("--class-tokens", type=int, default=200)
    ap.add_argument("--alone", action="store_true", help="also time the class's requests one after another")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time the compiled decode step, interleaved")
    ap.add_argument("--parts", type=int, default=0, help="tokens of the one-stream breakdown (0: skip it)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.streams:
        one_stream(args)
    if args.class_size:
        a_class(args)
    if args.parts:
        token_parts(args)
    print("\ncommand: `" + " ".join(["python bench/bench_decode.py", *sys.argv[1:]]) + "`")


if __name__ == "__main__":
    main()
