"""The teaching views' own work, while a run trains in the same process.

    python bench/bench_views.py                     # shipped model, training thread on, 5 repeats
    python bench/bench_views.py --no-training       # the same on an idle process

What the app does for one click, minus the browser and Gradio: the attention
view (maps for the prompt, one head's heatmap and the all-heads grid, each
rendered to PNG once, as `gpt.ui.views.export` does), a head change (the
heatmap alone) and a next-token redraw (the bar chart). Beside it a `fast`
run trains on one thread (`GPT_NUM_THREADS` = cores - 1, as the app sets it),
so the GIL and the cores are shared as they are in `python app.py`.

Prints the median and the worst of the repeats per view, the CPU time of
the view's own thread (what the view costs, whatever else the machine runs:
on a shared machine the wall time is mostly waiting), and the 1-minute load. Nothing here asserts a time.
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


def start_training():
    from gpt import corpus as corpora
    from gpt.train import Trainer
    from gpt.train import configs_from

    dataset = corpora.dataset(corpora.load("shakespeare"), "char")
    model_cfg, train_cfg = configs_from("fast", dataset.tokenizer.vocab_size, {},
                                        dict(max_iters=10**6, max_seconds=None, eval_interval=10**9))
    train_cfg.max_seconds = None
    trainer = Trainer(model_cfg, train_cfg, dataset, None)
    trainer.start()
    return trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "shakespeare-char"))
    ap.add_argument("--prompt", default="First Citizen:")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-training", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("GPT_NUM_THREADS", str(max(1, (os.cpu_count() or 1) - 1)))
    import torch

    from gpt import checkpoint as ckpt
    from gpt import insight, plots

    torch.set_num_threads(1)
    saved = ckpt.load_checkpoint(args.checkpoint)
    model, tok = saved.model.eval(), saved.tokenizer
    trainer = None if args.no_training else start_training()
    if trainer is not None:
        while trainer.step < 5:
            time.sleep(0.1)

    def attention():
        maps = insight.attention_maps(model, tok, args.prompt)
        plots.figure_png(plots.attention_figure(maps, 0, 0))
        plots.figure_png(plots.attention_grid_figure(maps))
        insight.strongest_links(maps, 0, 0)

    def head():
        maps = insight.attention_maps(model, tok, args.prompt)
        plots.figure_png(plots.attention_figure(maps, 1, 2))

    def next_token():
        view = insight.next_token_view(model, tok, args.prompt, 0.8, 10, 0.9)
        plots.figure_png(plots.next_token_figure(view))

    views = {"attention view (maps + heatmap + grid)": attention, "attention head change": head,
             "next-token redraw": next_token}
    l0 = os.getloadavg()[0]
    times = {name: [] for name in views}
    cpu = {name: [] for name in views}
    for _ in range(args.repeats + 1):  # the first round warms matplotlib's caches
        for name, fn in views.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.thread_time() - c0)
    l1 = os.getloadavg()[0]
    steps = trainer.step if trainer else 0
    if trainer is not None:
        trainer.request_stop()
        trainer.join(10)
    print("| view | median s | worst s | CPU s of the view's thread (median) | training thread | load |")
    print("|---|---|---|---|---|---|")
    for name, ts in times.items():
        ts = ts[1:]
        print(f"| {name} | {statistics.median(ts):.2f} | {max(ts):.2f} | {statistics.median(cpu[name][1:]):.2f} | "
              f"{'off' if trainer is None else f'on ({steps} steps meanwhile)'} | {l0:.1f}-{l1:.1f} |")


if __name__ == "__main__":
    main()
