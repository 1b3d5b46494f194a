"""The reward stage in five minutes: an addition3 chat model that is often right, made more often right by RL.

    python bench/bench_rl.py                       # SFT parent, then 3 seeds x 300 s of RL, held-out n=500
    python bench/bench_rl.py --sft-parent runs/add3-sft --seconds 120 --seeds 0

1) The parent: the shipped model fine-tuned on `addition3` (`gpt.chat.finetune`,
   the finetune stage's settings: AdamW 1e-3, batch 32) until an evaluation
   (every --sft-every steps, 50 held-out questions) first reaches --sft-target
   held-out accuracy; SFT's accuracy jumps from a few percent to ~90% within a
   few dozen steps, so stopping at the first evaluation over 50% lands a parent
   between 50% and 95%, which RL can improve (it needs some right answers to
   reward) and has room to. --sft-parent reuses a parent made earlier.
2) For each seed, the RL run `python -m gpt.chat rl` starts (`gpt.chat.rl`: the
   parent's weights as step 0, the `Reinforce` objective, the RL stage's settings:
   16 questions x 8 answers, temperature 1, AdamW 1e-4) for at most --seconds of
   training, evaluations included.
3) Before and after, greedy, on the same --n held-out questions
   (`gpt.chat.evaluate`, as `python -m gpt.chat eval` measures): accuracy, and
   the share of the error RL removed, 1 - error after / error before (the goal:
   at least a third, median of the seeds).

Every evaluation row prints the mean reward of the steps since the last one
and the held-out accuracy on the objective's 100 fixed questions: the reward
curve. The load average is printed beside every figure: the machine is shared,
and a loaded one trains fewer steps in the same seconds (each row says how many).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpt import checkpoint as ckpt  # noqa: E402
from gpt.chat import evaluate, task_from_name  # noqa: E402
from gpt.chat import rl  # noqa: E402
from gpt.chat.finetune import finetune_configs, finetune_objective, write_step_zero  # noqa: E402
from gpt.chat.grow import grown_tokenizer  # noqa: E402
from gpt.device import configure_cpu_threads  # noqa: E402
from gpt.train import Trainer  # noqa: E402

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "shakespeare-char"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"


def make_parent(args, out: Path) -> None:
    """The shipped model fine-tuned on the task until an evaluation first reaches --sft-target."""
    data = task_from_name(args.task)
    parent = ckpt.load_checkpoint(args.parent)
    chat, _ = grown_tokenizer(parent.tokenizer, data)
    model_cfg, train_cfg = finetune_configs(parent.model_config, chat.vocab_size, {
        "max_seconds": args.sft_seconds, "seed": 0, "max_iters": 100_000, "eval_interval": args.sft_every},
        args.device)
    train_cfg.eval_interval = args.sft_every
    meta = {"corpus": data.name, "data_source": "task", "parent": Path(args.parent).name, "task": data.name}
    if not (out / ckpt.WEIGHTS).exists():  # else: resume the fine-tune kept there by an earlier --keep
        write_step_zero(out, parent, data, train_cfg, meta)
    start = ckpt.load_checkpoint(out, device=args.device)
    trainer = Trainer(model_cfg, train_cfg, finetune_objective(data, start.tokenizer, model_cfg.block_size), out,
                      resume=True, meta=meta)

    def on_eval(r):
        print(f"  SFT step {r['step']:4d} {r['elapsed_s']:6.1f}s val loss {r['val_loss']:.3f} held-out "
              f"{r['val_accuracy']:.0%} ended {r['val_ended']:.0%} | {load()}", flush=True)
        if r["val_accuracy"] >= args.sft_target:
            trainer.request_stop()

    trainer.add_callback("on_eval", on_eval)
    state = trainer.run()
    if state == "failed":
        raise SystemExit(f"the fine-tune failed: {trainer.error}")


def reward(args, parent: Path, seed: int, out: Path) -> dict:
    """One RL run from `parent`; returns its steps, seconds, reward curve and held-out accuracy after."""
    data = task_from_name(args.task)
    saved = ckpt.load_checkpoint(parent)
    settings = rl.RLConfig.for_stage(args.samples, args.temperature)
    wall = args.clock == "wall"
    model_cfg, train_cfg = rl.rl_configs(saved.model_config, {
        "max_seconds": args.seconds if wall else 0, "seed": seed, "max_iters": args.max_iters, "lr": args.lr,
        "batch_size": args.batch_size}, args.device)
    rl.write_step_zero(out, parent, data, parent.name, train_cfg.to_dict(), meta={"task": data.name})
    start = ckpt.load_checkpoint(out, device=args.device)
    curve = []

    def on_eval(r):
        curve.append((r["step"], r["elapsed_s"], r.get("reward"), r["val_accuracy"]))
        mean = "   -  " if r.get("reward") is None else f"{r['reward']:.3f}"
        print(f"    step {r['step']:4d} {r['elapsed_s']:6.1f}s mean reward {mean} held-out (100) "
              f"{r['val_accuracy']:.0%} | {load()}", flush=True)

    trainer = Trainer(model_cfg, train_cfg, rl.rl_objective(data, start.tokenizer, model_cfg.block_size, settings),
                      out, resume=True, on_eval=on_eval)
    cpu0 = time.process_time()
    if not wall:  # this process's CPU seconds (one thread: one core's), whatever the other processes take
        trainer.add_callback("on_step", lambda p: trainer.request_stop()
                             if time.process_time() - cpu0 >= args.seconds else None)
    if trainer.run() == "failed":
        raise SystemExit(f"the RL run failed: {trainer.error}")
    cpu = time.process_time() - cpu0
    after = evaluate(trainer.model.eval(), trainer.tokenizer, data, n=args.n)
    return {"step": trainer.step, "seconds": trainer.elapsed, "cpu": cpu, "accuracy": after.accuracy,
            "ended": after.ended, "curve": curve, "load": load()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parent", default=str(SHIPPED), help="the run to fine-tune first (default: the shipped model)")
    ap.add_argument("--sft-parent", default=None, help="a chat run to reward instead of fine-tuning one here")
    ap.add_argument("--keep", default=None, help="keep the fine-tuned parent in this folder (resumed if there)")
    ap.add_argument("--task", default="addition3")
    ap.add_argument("--sft-target", type=float, default=0.5)
    ap.add_argument("--sft-every", type=int, default=10)
    ap.add_argument("--sft-seconds", type=float, default=0, help="the fine-tune's time limit (0: none)")
    ap.add_argument("--seconds", type=float, default=300, help="RL seconds a seed, evaluations included")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: --seconds of training time (the run's own time limit, the learning rate decaying "
                    "over it); cpu: until this process has used --seconds of CPU time (a machine shared with "
                    "other work; the learning rate then stays at its peak)")
    ap.add_argument("--max-iters", type=int, default=100_000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n", type=int, default=500, help="held-out questions graded before and after")
    ap.add_argument("--samples", type=int, default=None, help="answers per question (default: the RL stage's 8)")
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None, help="questions a step (default: the RL stage's 16)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    threads = configure_cpu_threads()
    print(f"RL on {args.task}, {args.seconds:g} s ({args.clock} clock) a seed, {threads} thread(s); start: {load()}",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(args.sft_parent or args.keep or Path(tmp) / f"{args.task}-sft")
        if not args.sft_parent:
            t0 = time.time()
            make_parent(args, parent)
            print(f"  parent fine-tuned in {time.time() - t0:.0f} s wall | {load()}", flush=True)
        saved = ckpt.load_checkpoint(parent, device=args.device)
        before = evaluate(saved.model.eval(), saved.tokenizer, args.task, n=args.n)
        print(f"parent {parent.name} at step {saved.step}: held-out accuracy {before.accuracy:.1%} "
              f"(n={before.n}), ended {before.ended:.1%} | {load()}", flush=True)
        if not 0.5 <= before.accuracy <= 0.95:
            print("note: the parent is outside the 50%-95% band the benchmark asks for", flush=True)
        rows = []
        for seed in map(int, args.seeds.split(",")):
            out = Path(tmp) / f"rl-{seed}"
            print(f"  seed {seed}:", flush=True)
            row = reward(args, parent, seed, out)
            row["cut"] = 1 - (1 - row["accuracy"]) / (1 - before.accuracy) if before.accuracy < 1 else 0.0
            rows.append(row)
            shutil.rmtree(out, ignore_errors=True)
            print(f"  seed {seed}: step {row['step']}, {row['seconds']:.0f} s wall, {row['cpu']:.0f} s CPU, held-out "
                  f"{before.accuracy:.1%} -> {row['accuracy']:.1%}, error cut by {row['cut']:.0%} | {row['load']}",
                  flush=True)
    print(f"\nparent: {before.accuracy:.1%} held-out ({before.n} questions of {args.task}, greedy)")
    print("\n| seed | RL steps | trained (s wall) | CPU (s) | held-out before | after | error cut | "
          "reward first -> last eval | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for seed, r in zip(args.seeds.split(","), rows):
        rewards = [c[2] for c in r["curve"] if c[2] is not None]
        span = f"{rewards[0]:.2f} -> {rewards[-1]:.2f}" if rewards else "-"
        print(f"| {seed} | {r['step']:,} | {r['seconds']:.0f} | {r['cpu']:.0f} | {before.accuracy:.1%} | "
              f"{r['accuracy']:.1%} | {r['cut']:.0%} | {span} | {r['load']} |")
    med = {k: statistics.median(r[k] for r in rows) for k in ("step", "seconds", "cpu", "accuracy", "cut")}
    print(f"| median | {med['step']:,.0f} | {med['seconds']:.0f} | {med['cpu']:.0f} | {before.accuracy:.1%} | "
          f"{med['accuracy']:.1%} | {med['cut']:.0%} | | end: {load()} |")


if __name__ == "__main__":
    main()
