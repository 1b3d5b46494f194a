"""Training benchmarks: time to quality and throughput, each printed as a markdown table row.

    python bench/bench_train.py quality                 # the default preset (and its tokenizer) via the CLI, 3 runs
    python bench/bench_train.py quality --runs 5 -- --preset small --max-iters 2000 --dropout 0
    python bench/bench_train.py throughput              # nanoGPT's CPU shape: small preset, batch 12, float32
    python bench/bench_train.py throughput --dtype bfloat16 --threads 1

`quality` runs `python -m gpt.train` (the user's command, evaluation and
checkpoints included) and reads the final validation loss and training wall
time (`elapsed_s`: steps and evaluations, which `max_seconds` bounds) from the
run folder's metrics; the whole command's time (start-up, data, the last
evaluation) is beside it. `throughput` times the Trainer's own loop
in bursts of steps and reports the median burst (and the best), with the
process CPU time per step beside it: on a shared machine the wall clock is
inflated by other work, CPU time much less so.

Each row ends with the 1-minute load average before and after, so figures from
a busy machine can be told apart. Set GPT_DATA_DIR to the folder holding
tinyshakespeare.txt. Nothing here asserts a time: these are measurements, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load() -> float:
    return os.getloadavg()[0]


def cpu_note() -> str:
    return f"{os.cpu_count()} cores"


def quality(args: argparse.Namespace, extra: list[str]) -> None:
    cli = ["--data", "shakespeare", *extra]  # the preset's tokenizer unless extra names one
    losses, bpcs, walls, steps, cpus, loads, procs = [], [], [], [], [], [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "gpt.train", *cli, "--out", out]
            l0 = load()
            before, t0 = os.times(), time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            after = os.times()
            procs.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                sys.exit(f"run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
            rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line.strip()]
            last = rows[-1]
            losses.append(last["val_loss"])
            bpcs.append(last["val_bpc"])
            walls.append(last["elapsed_s"])
            steps.append(last["step"])
            cpus.append((after.children_user + after.children_system) - (before.children_user + before.children_system))
            loads.append((l0, load()))
            print(f"  run {i + 1}: val {last['val_loss']:.4f} ({last['val_bpc']:.4f} bpc) at step {last['step']} in {last['elapsed_s']:.1f}s of training "
                  f"({procs[-1]:.1f}s for the whole command, cpu {cpus[-1]:.0f}s, load {l0:.2f}->{loads[-1][1]:.2f})",
                  file=sys.stderr)
    med = statistics.median
    shown = "python -m gpt.train " + " ".join(shlex.quote(c) for c in cli)
    print("| figure | command | median | runs (val bpc) | load (1-min) |")
    print("|---|---|---|---|---|")
    print(f"| val bpc / val loss / training s / whole command s / steps | `{shown}` | {med(bpcs):.4f} / {med(losses):.4f} / "
          f"{med(walls):.1f} s / {med(procs):.1f} s / {med(steps):.0f} | {', '.join(f'{v:.3f}' for v in bpcs)} | "
          f"{min(min(x) for x in loads):.1f}-{max(max(x) for x in loads):.1f} |")


def throughput(args: argparse.Namespace) -> None:
    if args.threads:
        os.environ["GPT_NUM_THREADS"] = str(args.threads)
    import shutil

    import torch

    from gpt import checkpoint as ckpt
    from gpt.train import Trainer
    from gpt.train import TrainConfig, configs_from
    from gpt import corpus as corpora

    dataset = corpora.dataset(corpora.load("shakespeare"), "char")
    bursts, per_burst = args.repeats, args.steps
    n_steps = args.warmup + bursts * per_burst
    marks: list[tuple[float, float]] = []

    def on_step(p):
        marks.append((time.perf_counter(), time.process_time()))

    tmp = tempfile.TemporaryDirectory()
    if args.from_run:  # time steps late in a run: its weights and optimizer state, resumed
        out = Path(tmp.name) / "run"
        shutil.copytree(args.from_run, out)
        saved = ckpt.load_checkpoint(out)
        model_cfg = saved.model_config
        train_cfg = TrainConfig.from_dict({**saved.meta["train"], "max_iters": saved.step + n_steps, "max_seconds": None,
                                           "eval_interval": 10**9, "sample_tokens": 0, "dtype": args.dtype})
        trainer = Trainer(model_cfg, train_cfg, dataset, out, resume=True, on_step=on_step)
        what = f"from step {saved.step} of {args.from_run}"
    else:
        train_over = dict(batch_size=args.batch_size, max_iters=n_steps, eval_interval=10**9, eval_iters=1,
                          sample_tokens=0, dtype=args.dtype, optimizer=args.optimizer)
        model_over = dict(dropout=0.0, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                          block_size=args.block_size)
        if args.arch:
            from gpt.model import ARCHITECTURES

            model_over.update(ARCHITECTURES[args.arch])
        model_cfg, train_cfg = configs_from(args.preset, dataset.tokenizer.vocab_size, model_over, train_over)
        train_cfg.max_seconds = None
        trainer = Trainer(model_cfg, train_cfg, dataset, None, on_step=on_step)
        what = "from initialisation"
    if args.denormals == "keep":
        torch.set_flush_denormal(False)  # undo configure_cpu_threads, to measure what flushing buys
    l0 = load()
    trainer.run()
    l1 = load()
    tmp.cleanup()
    if trainer.state != "finished":
        sys.exit(f"training {trainer.state}: {trainer.error}")
    tok = train_cfg.batch_size * model_cfg.block_size
    walls, cpus = [], []
    for b in range(bursts):  # marks[i] is taken after the (i+1)-th step of this process
        a, z = marks[args.warmup + b * per_burst - 1], marks[args.warmup + (b + 1) * per_burst - 1]
        walls.append((z[0] - a[0]) / per_burst)
        cpus.append((z[1] - a[1]) / per_burst)
    med_wall = statistics.median(walls)
    threads = os.environ.get("GPT_NUM_THREADS", str(os.cpu_count()))
    shown = "python bench/bench_train.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print("| figure | command | median | best | CPU ms/step (median) | threads | load (1-min) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| train tok/s ({model_cfg.n_layer}x{model_cfg.n_head}x{model_cfg.n_embd}, block {model_cfg.block_size}, "
          f"batch {train_cfg.batch_size}, {trainer.dtype}, {what}) | `{shown}` | {tok / med_wall:,.0f} "
          f"({med_wall * 1e3:.1f} ms/step) | {tok / min(walls):,.0f} | {statistics.median(cpus) * 1e3:.1f} | {threads} | "
          f"{l0:.1f}-{l1:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality", help="val loss and wall time of full CLI runs (extra args after -- go to gpt.train)")
    q.add_argument("--runs", type=int, default=3)
    t = sub.add_parser("throughput", help="training tokens per second of the hot loop")
    t.add_argument("--preset", default="small")
    t.add_argument("--arch", choices=["classic", "modern"], default=None)
    t.add_argument("--batch-size", type=int, default=12)
    t.add_argument("--dtype", default="float32", help="float32 (nanoGPT's CPU run), bfloat16 or auto")
    t.add_argument("--optimizer", default="adamw")
    t.add_argument("--threads", type=int, default=None)
    for flag in ("--n-layer", "--n-head", "--n-embd", "--block-size"):
        t.add_argument(flag, type=int, default=None)
    t.add_argument("--steps", type=int, default=40, help="steps per timed burst")
    t.add_argument("--repeats", type=int, default=5, help="timed bursts")
    t.add_argument("--warmup", type=int, default=10)
    t.add_argument("--from-run", default=None, help="a run folder: time steps from its saved weights and optimizer state")
    t.add_argument("--denormals", choices=["flush", "keep"], default="flush", help="keep: measure without flush-to-zero")
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    args = ap.parse_args(argv)
    if args.what == "quality":
        quality(args, extra)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
