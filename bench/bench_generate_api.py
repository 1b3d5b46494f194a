"""Streaming speed through the app's Generate endpoint, as an API client sees it.

    python bench/bench_generate_api.py                 # the `small` shape, 1,000 new characters, 5 requests
    python bench/bench_generate_api.py --preset fast --tokens 500

Launches `python app.py` (127.0.0.1, a free port, a temporary checkpoints
folder) as a user would, with the app's own thread setting (one training
thread on two cores, so the sampling thread has a core), builds a character
model of the preset's shape there (one training step: speed does not depend
on what the weights are), and asks `/generate` for `--tokens` new characters
through `gradio_client`, one request at a time. For each request it times

- **streamed characters per second**: characters that arrived after the first
  streamed update, over the time between that update and the last one (the
  rate a reader watches);
- **whole request**: from submit to the full text, connection and queue included.

Medians over the requests, the best beside them, and the 1-minute load.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load_test import COMPILED_LINE, free_port, start_app, stop_app, wait_for_log, wait_http  # noqa: E402

RUN = "bench-generate"


def build_run(folder: Path, preset: str) -> str:
    """A character model of the preset's shape, trained one step, saved where the app finds it."""
    from gpt import corpus as corpora
    from gpt.train import Trainer
    from gpt.train import configs_from

    ds = corpora.dataset(corpora.load("shakespeare"), "char")
    model_cfg, train_cfg = configs_from(preset, ds.tokenizer.vocab_size, {}, dict(
        max_iters=1, eval_interval=1, eval_iters=1, sample_tokens=0, device="cpu"))
    Trainer(model_cfg, train_cfg, ds, folder / RUN, meta={"corpus": "shakespeare", "data_source": "shakespeare"}).run()
    c = model_cfg
    return f"{preset} ({c.n_layer}x{c.n_head}x{c.n_embd}, block {c.block_size})"


def one_request(client, tokens: int, seed: int) -> dict:
    t0 = time.perf_counter()
    job = client.submit(run=RUN, prompt="", max_new_tokens=tokens, temperature=0.8, top_k=0, top_p=1.0, seed=seed,
                        api_name="/generate")
    first_t = first_len = None
    last_t, text = t0, ""
    for text in job:
        now = time.perf_counter()
        if first_t is None and text:
            first_t, first_len = now, len(text)
        last_t = now
    text = job.outputs()[-1] if job.outputs() else text
    done = time.perf_counter()
    streamed = (len(text) - first_len) / (last_t - first_t) if first_t and last_t > first_t else float("nan")
    return {"chars": len(text), "streamed_cps": streamed, "whole_s": done - t0, "first_s": (first_t or done) - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--checkpoint", default=None, help="serve this trained run (e.g. checkpoints/shakespeare-char) "
                    "instead of a fresh model of --preset's shape")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if "GPT_DATA_DIR" not in os.environ and (ROOT.parent / "shared" / "data" / "tinyshakespeare.txt").exists():
        os.environ["GPT_DATA_DIR"] = str(ROOT.parent / "shared" / "data")
    from gradio_client import Client

    tmp = Path(tempfile.mkdtemp(prefix="gpt-bench-generate-"))
    if args.checkpoint:
        import shutil

        shutil.copytree(args.checkpoint, tmp / RUN)
        shape = Path(args.checkpoint).name
    else:
        shape = build_run(tmp, args.preset)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_app(tmp, port)
    rows, l0 = [], os.getloadavg()[0]
    try:
        wait_http(url, 120)
        client = Client(url, verbose=False)
        one_request(client, 50, 0)  # warm-up: the model is loaded on the first request
        compiled = None  # ...and its decode step compiled in the decode process, in the background
        if all(os.environ.get(v, "1") != "0" for v in ("GPT_DECODE_PROCESS", "GPT_COMPILE_DECODE")):
            compiled = wait_for_log(tmp / "app.log", COMPILED_LINE, 300)
        print(f"  decode step: {'compiled after %.1f s' % compiled if compiled is not None else 'not compiled'}",
              file=sys.stderr)
        for i in range(args.requests):
            rows.append(one_request(client, args.tokens, i + 1))
            r = rows[-1]
            print(f"  request {i + 1}: {r['chars']} chars, streamed {r['streamed_cps']:,.0f} chars/s, first text "
                  f"{r['first_s']:.2f} s, whole {r['whole_s']:.2f} s", file=sys.stderr)
    finally:
        stop_app(proc, tmp)
    med = statistics.median
    cps = [r["streamed_cps"] for r in rows]
    whole = [r["chars"] / r["whole_s"] for r in rows]
    print("| model | figure | median | best | requests | load (1-min) |")
    print("|---|---|---|---|---|---|")
    span = f"{l0:.1f}-{os.getloadavg()[0]:.1f}"
    print(f"| {shape} | `/generate` streamed chars/s | {med(cps):,.0f} | {max(cps):,.0f} | {len(rows)} | {span} |")
    print(f"| {shape} | `/generate` chars over the whole request (submit to last text) | {med(whole):,.0f} | "
          f"{max(whole):,.0f} | {len(rows)} | {span} |")
    print("\ncommand: `" + " ".join(["python bench/bench_generate_api.py", *sys.argv[1:]]) + "`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
