"""Training benchmarks: time to quality and throughput, each printed as a markdown table row.

    python bench/bench_train.py quality                 # the default preset (and its tokenizer) via the CLI, 3 runs
    python bench/bench_train.py quality --runs 5 -- --preset small --max-iters 2000 --dropout 0
    python bench/bench_train.py quality --runs 3 --vs "--min-lr-ratio 0"   # the recipe against a variant, interleaved
    python bench/bench_train.py throughput              # nanoGPT's CPU shape: small preset, batch 12, float32
    python bench/bench_train.py throughput --dtype bfloat16 --threads 1
    python bench/bench_train.py vs-nanogpt --nanogpt ~/nanoGPT --rounds 3   # nanoGPT's own loop beside ours, MFU

`quality` runs `python -m gpt.train` (the user's command, evaluation and
checkpoints included) and reads the final validation loss and training wall
time (`elapsed_s`: steps and evaluations, which `max_seconds` bounds) from the
run folder's metrics; the whole command's time (start-up, data, the last
evaluation) is beside it. `throughput` times the Trainer's own loop
in bursts of steps and reports the median burst (and the best), with the
process CPU time per step beside it: on a shared machine the wall clock is
inflated by other work, CPU time much less so.

`vs-nanogpt` runs nanoGPT's own `model.py` and its `train.py` loop (its CPU
command: float32, batch 12, context 64, 4x4x128, AdamW, clipping, the memmap
`get_batch`), from a checkout you give (`git clone
https://github.com/karpathy/nanoGPT`; nothing is downloaded here), and ours at
the same shape in float32 and in the dtype 'auto' picks, each in its own
process, interleaved round by round, so the ratio comes from one hour. It
also times a large matrix product per dtype (the best this CPU does on these
threads) and reports each loop's model FLOPs utilisation against it.

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


def _one_run(cli: list[str], label: str) -> dict:
    """One `python -m gpt.train` run in a fresh folder: its last evaluation, its times and the load."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "gpt.train", *cli, "--out", out]
        l0 = load()
        before, t0 = os.times(), time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        after = os.times()
        whole = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        last = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line.strip()][-1]
    cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    run = dict(loss=last["val_loss"], bpc=last["val_bpc"], wall=last["elapsed_s"], step=last["step"], cpu=cpu,
               whole=whole, loads=(l0, load()))
    print(f"  {label}: val {run['loss']:.4f} ({run['bpc']:.4f} bpc) at step {run['step']} in {run['wall']:.1f}s of "
          f"training ({whole:.1f}s for the whole command, cpu {cpu:.0f}s, load {l0:.2f}->{run['loads'][1]:.2f})",
          file=sys.stderr)
    return run


def quality(args: argparse.Namespace, extra: list[str]) -> None:
    """`--runs` runs of the recipe; with `--vs "FLAGS"`, each round runs the recipe and then the recipe with FLAGS
    (A B A B ...), so a machine whose speed drifts slows both alike, and prints the per-round differences."""
    cli = ["--data", "shakespeare", *extra]  # the preset's tokenizer unless extra names one
    variants = {"": cli} | ({args.vs: [*cli, *shlex.split(args.vs)]} if args.vs else {})
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for i in range(args.runs):
        for name, flags in variants.items():
            runs[name].append(_one_run(flags, f"run {i + 1}{' ' + name if name else ''}"))
    med = statistics.median
    print("| figure | command | median | runs (val bpc) | load (1-min) |")
    print("|---|---|---|---|---|")
    for name, flags in variants.items():
        got = runs[name]
        each = ", ".join(f"{r['bpc']:.3f}" for r in got)
        shown = "python -m gpt.train " + " ".join(shlex.quote(c) for c in flags)
        print(f"| val bpc / val loss / training s / whole command s / steps | `{shown}` | {med(r['bpc'] for r in got):.4f} / "
              f"{med(r['loss'] for r in got):.4f} / {med(r['wall'] for r in got):.1f} s / "
              f"{med(r['whole'] for r in got):.1f} s / {med(r['step'] for r in got):.0f} | "
              f"{each} | "
              f"{min(min(r['loads']) for r in got):.1f}-{max(max(r['loads']) for r in got):.1f} |")
    if args.vs:
        deltas = [b["bpc"] - a["bpc"] for a, b in zip(runs[""], runs[args.vs])]
        print(f"\n{args.vs} minus the recipe, per round: {', '.join(f'{d:+.4f}' for d in deltas)} bpc "
              f"(median {med(deltas):+.4f})")


def throughput(args: argparse.Namespace) -> None:
    if args.threads:
        os.environ["GPT_NUM_THREADS"] = str(args.threads)
    import shutil

    import torch

    from gpt import checkpoint as ckpt
    from gpt.train import Trainer
    from gpt.train import TrainConfig, configs_from
    from gpt import corpus as corpora
    from gpt.model import flops_per_token, parameter_breakdown

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
                          sample_tokens=0, dtype=args.dtype, optimizer=args.optimizer,
                          compile=args.compile)
        model_over = dict(dropout=0.0, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                          block_size=args.block_size)
        if args.arch:
            from gpt.model import ARCHITECTURES

            model_over.update(ARCHITECTURES[args.arch])
        model_cfg, train_cfg = configs_from(args.preset, dataset.tokenizer.vocab_size, model_over, train_over)
        train_cfg.max_seconds = None
        trainer = Trainer(model_cfg, train_cfg, dataset, None, on_step=on_step)
        what = "from initialisation"
    if args.newton_schulz != "auto" and len(trainer.optimizers) > 1:  # Muon's orthogonalisation, forced
        trainer.optimizers[1].ns_dtype = getattr(torch, args.newton_schulz)
    if args.denormals == "keep":
        torch.set_flush_denormal(False)  # undo configure_cpu_threads, to measure what flushing buys
    l0 = load()
    trainer.run()
    l1 = load()
    tmp.cleanup()
    if trainer.state != "finished":
        sys.exit(f"training {trainer.state}: {trainer.error}")
    tok = train_cfg.batch_size * model_cfg.block_size
    walls, cpus = bursts_of(marks, args.warmup, bursts, per_burst)
    med_wall = statistics.median(walls)
    if args.json:
        print(json.dumps({"tok_s": tok / med_wall, "dtype": str(trainer.dtype).replace("torch.", ""),
                          "flops_per_token": flops_per_token(model_cfg, parameter_breakdown(trainer.model)["total"])}))
        return
    threads = os.environ.get("GPT_NUM_THREADS", str(os.cpu_count()))
    shown = "python bench/bench_train.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print("| figure | command | median | best | CPU ms/step (median) | threads | load (1-min) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| train tok/s ({model_cfg.n_layer}x{model_cfg.n_head}x{model_cfg.n_embd}, block {model_cfg.block_size}, "
          f"batch {train_cfg.batch_size}, {trainer.dtype}, {what}) | `{shown}` | {tok / med_wall:,.0f} "
          f"({med_wall * 1e3:.1f} ms/step) | {tok / min(walls):,.0f} | {statistics.median(cpus) * 1e3:.1f} | {threads} | "
          f"{l0:.1f}-{l1:.1f} |")


def bursts_of(marks: list[tuple[float, float]], warmup: int, bursts: int, per_burst: int):
    """Seconds of wall and of CPU per step in each burst; marks[i] is taken after step i + 1."""
    walls, cpus = [], []
    for b in range(bursts):
        a, z = marks[warmup + b * per_burst - 1], marks[warmup + (b + 1) * per_burst - 1]
        walls.append((z[0] - a[0]) / per_burst)
        cpus.append((z[1] - a[1]) / per_burst)
    return walls, cpus


def nanogpt_throughput(args: argparse.Namespace) -> None:
    """nanoGPT's train.py loop for its CPU command, on its own model.py, timed like `throughput`; prints JSON."""
    import importlib.util
    import math

    import numpy as np
    import torch

    from gpt import corpus as corpora

    torch.set_num_threads(args.threads or os.cpu_count())
    spec = importlib.util.spec_from_file_location("nanogpt_model", Path(args.nanogpt) / "model.py")
    model_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_py)
    text = corpora.load("shakespeare").text
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data_dir = tempfile.mkdtemp()
    n = int(0.9 * len(text))  # data/shakespeare_char/prepare.py: the first 90% trains
    np.array([stoi[c] for c in text[:n]], dtype=np.uint16).tofile(os.path.join(data_dir, "train.bin"))
    batch_size, block_size, lr, warmup_iters, lr_decay_iters, min_lr = 12, 64, 1e-3, 100, 2000, 1e-4
    cfg = model_py.GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=block_size, bias=False, vocab_size=len(chars),
                             dropout=0.0)
    model = model_py.GPT(cfg)
    optimizer = model.configure_optimizers(0.1, lr, (0.9, 0.99), "cpu")

    def get_batch():  # train.py's, for the CPU
        data = np.memmap(os.path.join(data_dir, "train.bin"), dtype=np.uint16, mode="r")
        ix = torch.randint(len(data) - block_size, (batch_size,))
        x = torch.stack([torch.from_numpy((data[i:i + block_size]).astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy((data[i + 1:i + 1 + block_size]).astype(np.int64)) for i in ix])
        return x, y

    def get_lr(it):  # train.py's
        if it < warmup_iters:
            return lr * (it + 1) / (warmup_iters + 1)
        ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * min(ratio, 1.0))) * (lr - min_lr)

    marks = []
    X, Y = get_batch()
    for it in range(args.warmup + args.repeats * args.steps):
        for group in optimizer.param_groups:
            group["lr"] = get_lr(it)
        logits, loss = model(X, Y)
        X, Y = get_batch()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # log_interval=1 in the CPU command
        marks.append((time.perf_counter(), time.process_time()))
    walls, _ = bursts_of(marks, args.warmup, args.repeats, args.steps)
    n_params = sum(p.numel() for p in model.parameters())  # tied head counted once, position table included
    print(json.dumps({"tok_s": batch_size * block_size / statistics.median(walls), "dtype": "float32",
                      "flops_per_token": 6 * n_params + 12 * 4 * 128 * block_size}))


def matmul_peak(dtype_name: str, threads: int, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` (size x size) @ (size x size) products: what this CPU reaches on
    `threads` threads in `dtype_name`, the denominator of the MFU figures (nominal peaks are not on a VM's
    /proc/cpuinfo)."""
    import torch

    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / best


def newton_schulz(args: argparse.Namespace) -> None:
    """Muon's orthogonalisation of one matrix (five iterations) in bf16 and in float32, interleaved, median of
    `repeats`: where the CPU has no bf16 instructions, bf16 is emulated (gpt.optim.Muon)."""
    import torch
    from torch.optim import _muon

    from gpt.optim import orthogonalise

    torch.set_num_threads(args.threads or os.cpu_count())
    coefficients = (_muon.DEFAULT_A, _muon.DEFAULT_B, _muon.DEFAULT_C)
    print(f"CPU flags: {cpu_flags()}; threads {torch.get_num_threads()}; load {load():.1f}")
    print("| matrix | bf16 ms | float32 ms | bf16 / float32 |")
    print("|---|---:|---:|---:|")
    for rows, cols in [(192, 192), (192, 576), (192, 768), (128, 512)]:
        g = torch.randn(rows, cols)
        times: dict[torch.dtype, list[float]] = {torch.bfloat16: [], torch.float32: []}
        for _ in range(args.repeats):
            for dtype, seen in times.items():
                seen.append(_timed(lambda: orthogonalise(g, coefficients, 5, _muon.EPS, dtype)))
        bf16, f32 = (statistics.median(times[d]) * 1e3 for d in (torch.bfloat16, torch.float32))
        print(f"| {rows} x {cols} | {bf16:.1f} | {f32:.1f} | {bf16 / f32:.1f}x |")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def vs_nanogpt(args: argparse.Namespace) -> None:
    if not (Path(args.nanogpt) / "model.py").exists():
        sys.exit(f"--nanogpt {args.nanogpt}: no model.py there; give a checkout of https://github.com/karpathy/nanoGPT.")
    threads = args.threads or os.cpu_count()
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--threads", str(threads), "--json", "--steps", str(args.steps), "--repeats", str(args.repeats)]
    loops = {"nanoGPT (its model.py and loop, float32)": [*me, "nanogpt", "--nanogpt", args.nanogpt, *common],
             "ours, float32": [*me, "throughput", "--dtype", "float32", *common],
             "ours, dtype auto": [*me, "throughput", "--dtype", "auto", *common]}
    got: dict[str, list[dict]] = {k: [] for k in loops}
    l0 = load()
    for r in range(args.rounds):
        for name, cmd in loops.items():
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{name} failed:\n{proc.stderr[-2000:]}")
            got[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  round {r + 1}: {name}: {got[name][-1]['tok_s']:,.0f} tok/s", file=sys.stderr)
    l1 = load()
    peaks = {d: matmul_peak(d, threads) for d in ("float32", "bfloat16")}
    base = [g["tok_s"] for g in got[next(iter(loops))]]
    print(f"| loop ({threads} threads) | tok/s, median of {args.rounds} | rounds | ratio to nanoGPT (median of the "
          "per-round ratios) | dtype | model TFLOP/s | MFU vs the best matmul in that dtype |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in got.items():
        toks = [g["tok_s"] for g in rows]
        ratio = statistics.median(t / b for t, b in zip(toks, base))
        flops = statistics.median(toks) * rows[0]["flops_per_token"]
        peak = peaks.get(rows[0]["dtype"], peaks["float32"])
        print(f"| {name} | {statistics.median(toks):,.0f} | {', '.join(f'{t:,.0f}' for t in toks)} | {ratio:.2f}x | "
              f"{rows[0]['dtype']} | {flops / 1e12:.3f} | {100 * flops / peak:.1f}% |")
    print(f"\nbest matmul (2048^3) on {threads} threads: float32 {peaks['float32'] / 1e9:,.0f} GFLOP/s, "
          f"bfloat16 {peaks['bfloat16'] / 1e9:,.0f} GFLOP/s; load {l0:.1f}-{l1:.1f}; {cpu_flags()}")


def cpu_flags() -> str:
    """What decides bf16 here: the CPU's vector extensions as /proc/cpuinfo lists them."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "CPU flags unknown"
    wanted = [f for f in flags if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")]
    return "CPU: " + (", ".join(wanted) or "no AVX2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality", help="val loss and wall time of full CLI runs (extra args after -- go to gpt.train)")
    q.add_argument("--runs", type=int, default=3)
    q.add_argument("--vs", default=None, help='flags of a variant, e.g. "--min-lr-ratio 0": A B A B, each round')
    t = sub.add_parser("throughput", help="training tokens per second of the hot loop")
    t.add_argument("--preset", default="small")
    t.add_argument("--arch", choices=["classic", "modern"], default=None)
    t.add_argument("--batch-size", type=int, default=12)
    t.add_argument("--dtype", default="float32", help="float32 (nanoGPT's CPU run), bfloat16 or auto")
    t.add_argument("--optimizer", default="adamw")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (its compile time falls in the warm-up)")
    t.add_argument("--threads", type=int, default=None)
    for flag in ("--n-layer", "--n-head", "--n-embd", "--block-size"):
        t.add_argument(flag, type=int, default=None)
    t.add_argument("--steps", type=int, default=40, help="steps per timed burst")
    t.add_argument("--repeats", type=int, default=5, help="timed bursts")
    t.add_argument("--warmup", type=int, default=10)
    t.add_argument("--from-run", default=None, help="a run folder: time steps from its saved weights and optimizer state")
    t.add_argument("--denormals", choices=["flush", "keep"], default="flush", help="keep: measure without flush-to-zero")
    t.add_argument("--json", action="store_true", help="print one JSON line (tok/s, dtype, FLOPs per token) instead")
    t.add_argument("--newton-schulz", choices=["auto", "bfloat16", "float32"], default="auto",
                   help="the dtype of Muon's orthogonalisation (auto: bf16 where the CPU has it, else float32)")
    ng = sub.add_parser("nanogpt", help="nanoGPT's own loop at its CPU command's shape (needs --nanogpt)")
    v = sub.add_parser("vs-nanogpt", help="nanoGPT's loop and ours, interleaved, with MFU (needs --nanogpt)")
    for p in (ng, v):
        p.add_argument("--nanogpt", required=True, help="a checkout of github.com/karpathy/nanoGPT")
        p.add_argument("--threads", type=int, default=None)
        p.add_argument("--steps", type=int, default=40)
        p.add_argument("--repeats", type=int, default=5)
    ng.add_argument("--warmup", type=int, default=10)
    ng.add_argument("--json", action="store_true")
    v.add_argument("--rounds", type=int, default=3)
    ns = sub.add_parser("newton-schulz", help="Muon's orthogonalisation of one matrix in bf16 and float32")
    ns.add_argument("--threads", type=int, default=None)
    ns.add_argument("--repeats", type=int, default=5)
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    args = ap.parse_args(argv)
    {"quality": lambda: quality(args, extra), "throughput": lambda: throughput(args),
     "nanogpt": lambda: nanogpt_throughput(args), "vs-nanogpt": lambda: vs_nanogpt(args),
     "newton-schulz": lambda: newton_schulz(args)}[args.what]()


if __name__ == "__main__":
    main()
