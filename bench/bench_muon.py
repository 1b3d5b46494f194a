"""Our Muon (Newton-Schulz batched over matrices of one shape) against PyTorch's `torch.optim.Muon`, per training step.

    python bench/bench_muon.py                  # the default recipe's model, 5 rounds of 40 steps each
    python bench/bench_muon.py --rounds 7 --steps 60
    python bench/bench_muon.py --optimizer-only --rounds 9 --steps 40   # the Muon step alone, thread CPU time, 1 thread

Both optimizers give the same update (tests/test_perf_paths.py checks it); the
question is only time. Each round times `--steps` whole training steps
(forward, backward, clip, AdamW + Muon) with each optimizer in turn, in the
same process, so a busy machine slows both alike; the figure is the median
of the per-round ratios, printed with the load average beside it.

`--optimizer-only` times the Muon step alone (the only code that differs) on
fixed gradients, in this thread's CPU time on one thread: a machine busy with
other work changes wall time by a factor but CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from gpt.data import Dataset, addition_corpus
from gpt.device import configure_cpu_threads
from gpt.model import build_model
from gpt.optim import build_optimizers
from gpt.presets import DEFAULT_PRESET
from gpt.tokenizer import CharTokenizer
from gpt.train import configs_from


def step_time(model, optimizers, data: Dataset, batch: int, block: int, steps: int) -> float:
    """Seconds per training step, averaged over `steps` after two warm-up steps."""
    gen = torch.Generator().manual_seed(0)
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        x, y = data.get_batch("train", batch, block, "cpu", gen)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for opt in optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
    return (time.perf_counter() - t0) / steps


def muon_step_cpu_time(model, kind: str, lr: float, steps: int) -> float:
    """Thread CPU seconds per Muon step on fixed random gradients (the matrices inside the blocks only)."""
    from gpt.optim import Muon

    params = [p for n, p in model.named_parameters() if p.dim() == 2 and ".h." in n]
    gen = torch.Generator().manual_seed(0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    opt = (Muon if kind == "ours" else torch.optim.Muon)(params, lr=lr, momentum=0.9)
    for i in range(steps + 2):
        if i == 2:
            t0 = time.thread_time()
        opt.step()
    return (time.thread_time() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--optimizer-only", action="store_true", help="time the Muon step alone, in thread CPU time")
    args = ap.parse_args()
    configure_cpu_threads()
    if args.optimizer_only:
        torch.set_num_threads(1)  # thread CPU time counts this thread only
    text = addition_corpus(n=20000) * 4
    data = Dataset(text, CharTokenizer.from_text(text))
    model_cfg, train_cfg = configs_from(DEFAULT_PRESET, 512, {}, {})  # the default's shape on its 512-token BPE
    model_cfg.vocab_size = data.tokenizer.vocab_size
    ratios, ours_s, torch_s = [], [], []
    for _ in range(args.rounds):
        times = {}
        for kind in ("ours", "torch"):
            torch.manual_seed(1)
            model = build_model(model_cfg)
            if args.optimizer_only:
                times[kind] = muon_step_cpu_time(model, kind, train_cfg.muon_lr, args.steps)
                continue
            optimizers = build_optimizers(model, "muon", train_cfg.lr, train_cfg.weight_decay, (0.9, 0.99), "cpu",
                                          muon_lr=train_cfg.muon_lr, muon_impl=kind)
            times[kind] = step_time(model, optimizers, data, train_cfg.batch_size, model_cfg.block_size, args.steps)
        ours_s.append(times["ours"])
        torch_s.append(times["torch"])
        ratios.append(times["torch"] / times["ours"])
    print(f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"ours:  {statistics.median(ours_s) * 1e3:.1f} ms/step (median of {args.rounds})")
    print(f"torch: {statistics.median(torch_s) * 1e3:.1f} ms/step")
    print(f"torch.optim.Muon / ours: {statistics.median(ratios):.3f} (median; rounds {', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
