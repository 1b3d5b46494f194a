"""From GPT to ChatGPT in five minutes: the shipped model fine-tuned on the built-in mix, then graded.

    python bench/bench_sft.py                      # 3 seeds, 300 s each, the shipped model, the mix
    python bench/bench_sft.py --seconds 120 --seeds 0 --parent runs/my-run --task mix:addition=5,count=2

Each seed is the fine-tune the page, the API and `python -m gpt.chat finetune`
start: the parent grown into a chat model as step 0 (`gpt.chat.finetune`), then
the one trainer with the `Finetune` objective and the finetune stage's settings
(`gpt.presets.LATER_STAGES`: AdamW 1e-3, batch 32), for at most --seconds of
training. Then, greedy, on the same held-out two-digit additions (--n, 200):
- the fine-tuned model's exact-match accuracy and the share of its answers that
  end with <|end|> (the goal: >= 90% and >= 95%);
- the parent's, as step 0 is (the parent with the new rows, untrained): near 0%,
  since it has never seen the chat format.
The table gives each seed, then the median; the load average is printed beside
every row (the machine is shared: a loaded one reaches fewer steps in the same
seconds, and the row says how many it reached). Beside the wall-clock seconds
(what --seconds limits) each row gives the CPU seconds the process used while
training (all its threads): on a loaded machine that is the work done, and
CPU seconds / threads is about what an idle machine with that many cores
would take for the same steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpt import checkpoint as ckpt  # noqa: E402
from gpt.chat import evaluate, task_from_name  # noqa: E402
from gpt.chat.finetune import finetune_configs, finetune_objective, write_step_zero  # noqa: E402
from gpt.chat.grow import grown_tokenizer  # noqa: E402
from gpt.device import configure_cpu_threads  # noqa: E402
from gpt.train import Trainer  # noqa: E402

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "shakespeare-char"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"


def fine_tune(parent_dir: Path, task: str, seconds: float, seed: int, out: Path, device: str) -> dict:
    """One fine-tune; returns the step reached, the seconds trained and the models' scores on addition."""
    data = task_from_name(task)
    parent = ckpt.load_checkpoint(parent_dir)
    chat, _ = grown_tokenizer(parent.tokenizer, data)
    model_cfg, train_cfg = finetune_configs(parent.model_config, chat.vocab_size,
                                            {"max_seconds": seconds, "seed": seed, "max_iters": ARGS.max_iters}, device)
    write_step_zero(out, parent, data, train_cfg, {"corpus": data.name, "parent": parent_dir.name, "task": data.name})
    before = ckpt.load_checkpoint(out, device=device)
    parent_score = evaluate(before.model, before.tokenizer, "addition", n=ARGS.n)
    cpu0 = time.process_time()
    trainer = Trainer(model_cfg, train_cfg, finetune_objective(data, before.tokenizer, model_cfg.block_size), out,
                      resume=True, on_eval=lambda r: print(
                          f"    step {r['step']:5d} {r['elapsed_s']:6.1f}s val loss {r['val_loss']:.3f} held-out "
                          f"({data.name}) {r['val_accuracy']:.0%} ended {r['val_ended']:.0%} | cpu "
                          f"{time.process_time() - cpu0:6.0f}s | {load()}", flush=True))
    trainer.run()
    cpu = time.process_time() - cpu0
    score = evaluate(trainer.model.eval(), trainer.tokenizer, "addition", n=ARGS.n)
    return {"step": trainer.step, "seconds": trainer.elapsed, "cpu": cpu, "accuracy": score.accuracy,
            "ended": score.ended,
            "parent_accuracy": parent_score.accuracy, "parent_ended": parent_score.ended, "load": load()}


def main() -> None:
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--parent", default=str(SHIPPED), help="the run folder to fine-tune (default: the shipped model)")
    ap.add_argument("--task", default="mix")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--max-iters", type=int, default=100_000, help="a step limit too (with --seconds 0: the only one)")
    ap.add_argument("--n", type=int, default=200, help="held-out additions graded")
    ap.add_argument("--device", default="cpu")
    ARGS = ap.parse_args()
    threads = configure_cpu_threads()
    print(f"{Path(ARGS.parent).name} fine-tuned on {ARGS.task}, {ARGS.seconds:g} s a seed, {threads} thread(s); "
          f"start: {load()}", flush=True)
    rows = []
    for seed in map(int, ARGS.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.time()
            row = fine_tune(Path(ARGS.parent), ARGS.task, ARGS.seconds, seed, Path(tmp) / "chat", ARGS.device)
            row["wall"] = time.time() - t0
        rows.append(row)
        print(f"  seed {seed}: {row}", flush=True)
    print("\n| seed | steps | trained (s) | CPU (s) | addition, held-out (greedy) | ended with <|end|> | "
          "parent (step 0) | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for seed, r in zip(ARGS.seeds.split(","), rows):
        print(f"| {seed} | {r['step']:,} | {r['seconds']:.0f} | {r['cpu']:.0f} | {r['accuracy']:.1%} | "
              f"{r['ended']:.1%} | {r['parent_accuracy']:.1%} (ended {r['parent_ended']:.0%}) | {r['load']} |")
    keys = ("step", "seconds", "cpu", "accuracy", "ended", "parent_accuracy")
    med = {k: statistics.median(r[k] for r in rows) for k in keys}
    print(f"| median | {med['step']:,.0f} | {med['seconds']:.0f} | {med['cpu']:.0f} | {med['accuracy']:.1%} | "
          f"{med['ended']:.1%} | {med['parent_accuracy']:.1%} | end: {load()} |")


if __name__ == "__main__":
    main()
