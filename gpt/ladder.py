"""The lecture's ablation ladder: one change at a time, each paid for in validation loss.

Karpathy's "Let's build GPT" grows a bigram table into a Transformer in six
steps and prints the validation loss after each. Every rung here is a
configuration of the same `gpt.model` code (its `ffn`, `residual`,
`attn_proj`, `layernorm` switches), not a copy of the lecture's classes, and
trains with the lecture's settings: batch 32, context 8, width 32, AdamW at a
constant learning rate (bigram.py: 3,000 steps at 1e-2; v2.py: 5,000 at 1e-3),
evaluated as they are, on 200 batches of each split every 300 or 500 steps.

Rungs 1-6 start from PyTorch's default initialisation, as the video's code
does (`init='torch'`: embeddings N(0, 1)). GPT-2's N(0, 0.02) (`--init gpt2`,
this package's default elsewhere) starts the embeddings 50x smaller, and at a
constant 1e-3 for 5,000 steps the rungs without LayerNorm never catch up
(rung 5: 2.25 against 2.08; docs/benchmarks.md). Attention divides by
sqrt(head_size), as later versions of the lecture's code do; `--attn-scale embd`
is the video's sqrt(n_embd) (`C**-0.5`), which at 4 heads of 8 is half as
sharp. The LM head has no bias (the video's has one number per token).

Rung 7 is the lecture's scaled-up model (10.8M parameters, context 256): hours
on a 2-core CPU, so on a CPU the ladder's last rung is the `fast` preset.

Run it: `python -m gpt.ladder --out runs/ladder --rungs 1-6`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .device import detect_device, device_type
from .errors import ConfigError, GPTError
from .model import GPTConfig, parameter_breakdown
from .presets import preset
from .train import Trainer
from .train import TrainConfig

TARGET_MARGIN = 0.07  # the bar: each rung within this of the lecture's figure

# the lecture's optimiser: torch.optim.AdamW's defaults at a constant rate, no clipping, no warm-up
LECTURE_OPTIMIZER = dict(warmup_iters=0, min_lr_ratio=1.0, weight_decay=0.01, beta1=0.9, beta2=0.999, grad_clip=0.0,
                         optimizer="adamw", dtype="float32", eval_iters=200, sample_tokens=120)
BIGRAM_TRAIN = dict(LECTURE_OPTIMIZER, batch_size=32, lr=1e-2, max_iters=3000, eval_interval=300)
ATTENTION_TRAIN = dict(LECTURE_OPTIMIZER, batch_size=32, lr=1e-3, max_iters=5000, eval_interval=500)
SMALL = dict(block_size=8, n_embd=32, dropout=0.0, pos_emb="learned", qk_norm=False, tie_weights=False,
             activation="relu", bias=True, init="torch")
ONE_LAYER = dict(SMALL, n_layer=1, residual=False, attn_proj=False, layernorm=False)


@dataclass(frozen=True)
class Rung:
    number: int
    change: str
    lecture_val_loss: float
    model: dict
    train: dict


RUNGS: dict[int, Rung] = {r.number: r for r in (
    Rung(1, "bigram (a vocab x vocab table)", 2.5, dict(model_type="bigram", block_size=8), BIGRAM_TRAIN),
    Rung(2, "token + position embeddings and an LM head, one self-attention head (head_size 32)", 2.4,
         dict(ONE_LAYER, n_head=1, ffn="none"), ATTENTION_TRAIN),
    Rung(3, "four heads of 8 (multi-head)", 2.28, dict(ONE_LAYER, n_head=4, ffn="none"), ATTENTION_TRAIN),
    Rung(4, "+ feed-forward (Linear + ReLU)", 2.24, dict(ONE_LAYER, n_head=4, ffn="linear"), ATTENTION_TRAIN),
    Rung(5, "three blocks with residual connections and projections, 4x feed-forward", 2.08,
         dict(SMALL, n_layer=3, n_head=4, ffn="mlp", residual=True, attn_proj=True, layernorm=False), ATTENTION_TRAIN),
    Rung(6, "+ LayerNorm (pre-norm, and a final one)", 2.06,
         dict(SMALL, n_layer=3, n_head=4, ffn="mlp", residual=True, attn_proj=True, layernorm=True), ATTENTION_TRAIN),
    Rung(7, "scaled up: 6 layers, 6 heads, 384 wide, context 256, dropout 0.2, lr 3e-4, batch 64", 1.48,
         dict(SMALL, n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, ffn="mlp", residual=True,
              attn_proj=True, layernorm=True, init="gpt2"),
         dict(LECTURE_OPTIMIZER, batch_size=64, lr=3e-4, max_iters=5000, eval_interval=500, dtype="auto")),
)}
CPU_RUNG_7 = Rung(7, "the `fast` preset (rung 7 takes hours on a CPU): 4 layers, 128 wide, context 64, rotary, "
                     "QK-norm, ReLU^2, Muon, about two minutes", 1.48, preset("fast")["model"], preset("fast")["train"])
SWITCHES = ("attn_scale", "init")  # what a student may change on every rung to see its effect


def rung(number: int, device: str = "cpu") -> Rung:
    """Rung `number` (1-7); on a CPU rung 7 is the `fast` preset."""
    if number not in RUNGS:
        raise ConfigError(f"rung must be a whole number from 1 to {max(RUNGS)}, got {number!r}.")
    on_cpu = device_type(detect_device(device) if device == "auto" else device) == "cpu"
    return CPU_RUNG_7 if number == 7 and on_cpu else RUNGS[number]


def configs(number: int, vocab_size: int, device: str = "cpu", seed: int | None = None,
            **switches) -> tuple[GPTConfig, TrainConfig]:
    """The model and training configs of one rung, for a tokenizer of `vocab_size` ids.

    switches: attn_scale ('head' or the video's 'embd') and init ('torch' or 'gpt2') for the GPT rungs.
    """
    r = rung(number, device)
    model = dict(r.model, vocab_size=vocab_size)
    unknown = set(switches) - set(SWITCHES)
    if unknown:
        raise ConfigError(f"A ladder rung takes only {', '.join(SWITCHES)} as switches, not {', '.join(sorted(unknown))}.")
    if model.get("model_type", "gpt") == "gpt" and r is not CPU_RUNG_7:
        model.update({k: v for k, v in switches.items() if v is not None})
    train = {**TrainConfig().to_dict(), **r.train, "device": device}
    if seed is not None:
        train["seed"] = seed
    return GPTConfig(**model), TrainConfig.from_dict(train)


def parse_rungs(text: str) -> list[int]:
    """'1-6', '1,3,5' or '7' -> rung numbers, with a sentence naming --rungs if they do not parse."""
    out: list[int] = []
    try:
        for part in str(text).split(","):
            lo, _, hi = part.strip().partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ConfigError(f"--rungs must look like 1-6 or 1,3,5, got {text!r}.") from None
    bad = [n for n in out if n not in RUNGS]
    if bad or not out:
        raise ConfigError(f"--rungs must name rungs from 1 to {max(RUNGS)}, got {text!r}.")
    return out


def train_rung(number: int, dataset, device: str = "cpu", out_dir: str | Path | None = None, seed: int | None = None,
               on_step: Callable[[dict], None] | None = None, **switches) -> dict:
    """Train one rung on `dataset` and return its ladder row (final val loss, parameters, seconds)."""
    model_cfg, train_cfg = configs(number, dataset.tokenizer.vocab_size, device, seed, **switches)
    trainer = Trainer(model_cfg, train_cfg, dataset, out_dir, on_step=on_step,
                      meta={"corpus": dataset.name, "rung": number})
    t0 = time.perf_counter()
    state = trainer.run()
    seconds = time.perf_counter() - t0
    if state == "failed":
        raise GPTError(f"Rung {number} failed: {trainer.error}")
    last = trainer.metrics[-1]
    r = rung(number, device)
    return dict(rung=number, change=r.change, val_loss=round(last["val_loss"], 4),
                train_loss=round(last["train_loss"], 4), lecture_val_loss=r.lecture_val_loss,
                params=parameter_breakdown(trainer.model)["total"], steps=trainer.step, seconds=round(seconds, 1),
                attn_scale=model_cfg.attn_scale, init=model_cfg.init, sample=last.get("sample", ""))


def markdown(rows: list[dict]) -> str:
    """The ladder as a table: what each rung changed and what it bought."""
    lines = ["| rung | change | val loss | lecture | params | steps | seconds |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['rung']} | {r['change']} | {r['val_loss']:.3f} | ~{r['lecture_val_loss']:g} | "
                     f"{r['params']:,} | {r['steps']:,} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def write(out: Path, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ladder.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (out / "ladder.md").write_text(markdown(rows), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from . import corpus as corpora

    ap = argparse.ArgumentParser(prog="python -m gpt.ladder", description="Train the lecture's ablation ladder.")
    ap.add_argument("--out", default="runs/ladder", help="folder for ladder.md, ladder.json and one run per rung")
    ap.add_argument("--rungs", default="1-6", help="e.g. 1-6 (default), 1,3,5 or 7")
    ap.add_argument("--data", default="shakespeare")
    ap.add_argument("--tokenizer", default="char")
    ap.add_argument("--vocab-size", type=int, default=None, help="for --tokenizer bpe")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--attn-scale", choices=["head", "embd"], default=None,
                    help="head: 1/sqrt(head_size) (default); embd: the video's 1/sqrt(n_embd)")
    ap.add_argument("--init", choices=["torch", "gpt2"], default=None,
                    help="torch: PyTorch's defaults, as the video (default for rungs 1-6); gpt2: N(0, 0.02)")
    args = ap.parse_args(argv)
    # models this small run ~100x slower on two threads of a busy 2-core CPU than on one (spinning OpenMP)
    os.environ.setdefault("GPT_NUM_THREADS", "1")
    try:
        numbers = parse_rungs(args.rungs)
        device = device_type(detect_device(args.device))
        dataset = corpora.dataset(corpora.load(args.data), args.tokenizer, args.vocab_size)
        out = Path(args.out)
        total = sum(configs(n, dataset.tokenizer.vocab_size, device)[1].max_iters for n in numbers)
        bar = tqdm(total=total, unit="step", dynamic_ncols=True)
        rows: list[dict] = []
        for n in numbers:
            done = bar.n
            bar.set_description(f"rung {n}")

            def on_step(p, done=done):
                if p["step"] % 250 == 0:
                    bar.n = done + p["step"]
                    bar.refresh()

            row = train_rung(n, dataset, device, out / f"rung{n}", args.seed, on_step,
                             attn_scale=args.attn_scale, init=args.init)
            bar.n = done + configs(n, dataset.tokenizer.vocab_size, device)[1].max_iters
            rows.append(row)
            write(out, rows)
            tqdm.write(f"rung {n}: val {row['val_loss']:.4f} (lecture ~{row['lecture_val_loss']:g}), "
                       f"{row['params']:,} params, {row['seconds']:.0f}s")
        bar.close()
    except GPTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(markdown(rows), end="")
    print(f"wrote {out / 'ladder.md'} and {out / 'ladder.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
