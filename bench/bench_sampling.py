"""Sampling speed: KV cache against none, and streaming characters per second.

    python bench/bench_sampling.py                    # medium (6x6x384, block 256) and small, 500 new tokens
    python bench/bench_sampling.py --threads 1
    python bench/bench_sampling.py --checkpoint checkpoints/shakespeare-char

Speed does not depend on what the weights are, so by default each preset's
model is built with fresh weights and a 65-character vocabulary (Tiny
Shakespeare's); `--checkpoint` times a trained model instead. Every figure is
the median of `--repeats` runs (the best run beside it), with the process CPU
time, and the 1-minute load average so figures from a busy machine show.
Rows print as a markdown table.
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

import torch  # noqa: E402

from gpt.device import configure_cpu_threads  # noqa: E402
from gpt.engine import SamplingSettings, generate  # noqa: E402
from gpt.model import GPTConfig, MODEL_PRESETS, build_model  # noqa: E402


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """(median wall s, best wall s, median CPU s) over repeats, after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def model_for(preset: str, checkpoint: str | None):
    if checkpoint:
        from gpt.checkpoint import load_checkpoint

        ck = load_checkpoint(checkpoint, device="cpu")
        return ck.model.eval(), ck.tokenizer
    torch.manual_seed(0)
    return build_model(GPTConfig(vocab_size=65, **MODEL_PRESETS[preset])).eval(), None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="medium,small")
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--checkpoint", default=None, help="time this trained model instead of fresh weights")
    ap.add_argument("--compile", action="store_true", help="also time the compiled decode step (gpt.compiled_step)")
    args = ap.parse_args()
    threads = configure_cpu_threads(args.threads)
    settings = SamplingSettings(max_new_tokens=args.tokens, temperature=0.8, seed=1337)
    l0 = os.getloadavg()[0]
    cmd = "python bench/bench_sampling.py" + (f" --threads {args.threads}" if args.threads else "") + (
        " --compile" if args.compile else "")
    print(f"| model | mode | new tokens/s (median) | best | CPU ms/token | speed-up vs no cache | threads | load |")
    print("|---|---|---|---|---|---|---|---|")
    for preset in ([args.checkpoint] if args.checkpoint else args.presets.split(",")):
        model, tokenizer = model_for(preset, args.checkpoint)
        c = model.config
        name = f"{preset} ({c.n_layer}x{c.n_head}x{c.n_embd}, block {c.block_size})"
        prompt = [0]
        modes = {
            "no cache (nanoGPT)": dict(use_cache=False),
            "KV cache, slide": dict(use_cache=True, window="slide"),
            "KV cache, crop": dict(use_cache=True, window="crop"),
        }
        steps = {"": None}
        if args.compile:
            from gpt.compiled_step import CompiledStep

            step = CompiledStep(model, threads=None)
            t = time.perf_counter()
            assert step.warm(), step.failed
            print(f"| {name} | compiling the step (once) | {time.perf_counter() - t:.1f} s | | | | {threads} | |")
            modes["KV cache, slide, compiled step"] = dict(use_cache=True, window="slide", step=step)
            steps[", compiled step"] = step
        base = None
        for mode, kw in modes.items():
            wall, best, cpu = timed(lambda: generate(model, prompt, settings, **kw), args.repeats)
            base = base or wall
            print(f"| {name} | {mode} | {args.tokens / wall:,.0f} | {args.tokens / best:,.0f} | "
                  f"{cpu / args.tokens * 1e3:.2f} | {base / wall:.1f}x | {threads} | {l0:.1f}-{os.getloadavg()[0]:.1f} |")
        if tokenizer is not None or c.vocab_size == 65:
            # streaming text through the char tokenizer: characters per second as a reader sees them
            from gpt.sample import prompt_to_ids, stream_text
            from gpt.tokenizers import build_tokenizer

            tok = tokenizer or build_tokenizer("char", "\n" + "".join(chr(32 + i) for i in range(64)))  # 65 characters
            for label, step in steps.items() if tok.vocab_size == c.vocab_size else ():
                n_chars = []

                def stream():
                    ids = prompt_to_ids(tok, "", model.config.block_size)[0]
                    n_chars.append(sum(len(piece) for piece in stream_text(model, tok, ids, settings, step=step)))

                wall, best, cpu = timed(stream, args.repeats)
                chars = n_chars[-1]
                print(f"| {name} | streamed text (`gpt.sample`{label}), chars/s | {chars / wall:,.0f} | {chars / best:,.0f} | "
                      f"{cpu / chars * 1e3:.2f} | - | {threads} | {l0:.1f}-{os.getloadavg()[0]:.1f} |")
    print(f"\ncommand: `{cmd}`")


if __name__ == "__main__":
    main()
