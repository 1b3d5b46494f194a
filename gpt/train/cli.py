"""`python -m gpt.train`: train a small GPT from the command line, with a progress bar.

    python -m gpt.train --data shakespeare --tokenizer char --preset small --max-iters 2000 --out checkpoints/x

The loop itself is `gpt.train.Trainer`; this module turns flags into configs
(`gpt.train.configs_from`), prints, and exits with 0, 1 (a failed run)
or 2 (a setting refused, as one `error:` line).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import checkpoint as ckpt
from .. import distributed
from .. import corpus as corpora
from ..data import SYNTHETIC, Dataset
from ..device import configure_cpu_threads
from ..errors import ConfigError, DataError, GPTError
from ..limits import Limits
from ..presets import DEFAULT_PRESET, PRESETS, preset, preset_tokenizer
from .trainer import Trainer
from .config import TrainConfig, configs_from


def resume_source(data_flag: str | None, meta: dict) -> str:
    """The corpus a resumed run reads: the one named on the command line, else a built-in one.

    A checkpoint can come from anyone; if its `data_source` chose the file, a downloaded checkpoint
    could make this program read any file on the machine into a model (and its samples)."""
    if data_flag:
        return data_flag
    saved = meta.get("data_source")
    if saved == "shakespeare" or saved in SYNTHETIC:
        return saved
    name = str(meta.get("corpus") or "a text file")[:40]
    raise DataError(f"This run was trained on {name!r}, a text file: name it again with --data FILE to resume. "
                    "A checkpoint never chooses which file is read.")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m gpt.train", description="Train a small GPT from scratch.")
    ap.add_argument("--data", default=None, help="'shakespeare' (default), a synthetic task (addition, reverse, counting), "
                    "or a UTF-8 file; with --resume, a file corpus must be named again")
    ap.add_argument("--tokenizer", default=None, help="char, gpt2, bpe (also cl100k_base, o200k_base); default: the preset's")
    ap.add_argument("--vocab-size", type=int, default=None, help="vocabulary size for --tokenizer bpe (256..16384)")
    ap.add_argument("--preset", default=DEFAULT_PRESET, help=f"{', '.join(PRESETS)} (default {DEFAULT_PRESET})")
    ap.add_argument("--model", dest="model_type", choices=["gpt", "bigram"], default=None)
    ap.add_argument("--arch", choices=["classic", "modern"], default=None, help="classic = the lecture's GPT")
    for flag in ("--n-layer", "--n-head", "--n-embd", "--block-size", "--batch-size", "--max-iters", "--grad-accum",
                 "--eval-interval", "--eval-iters", "--seed", "--warmup-iters", "--sample-tokens"):
        ap.add_argument(flag, type=int, default=None)
    for flag in ("--dropout", "--lr", "--min-lr-ratio", "--max-seconds", "--muon-lr", "--weight-decay", "--muon-weight-decay",
                 "--beta1", "--beta2"):
        ap.add_argument(flag, type=float, default=None)
    ap.add_argument("--optimizer", choices=["adamw", "muon"], default=None)
    ap.add_argument("--no-mask", action="store_true", help="drop the causal mask (an encoder: it cheats)")
    ap.add_argument("--device", default=None, help="auto (default), cpu, cuda, mps")
    ap.add_argument("--dtype", default=None, help="auto, float32, bfloat16")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (GPU)")
    ap.add_argument("--out", default=None, help="run folder (default checkpoints/<data>-<tokenizer>)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    ap.add_argument("--init-from", default=None, metavar="MODEL",
                    help="fine-tune a transformers GPT-2 folder, a nanoGPT ckpt.pt or 'gpt2' (download) on --data")
    return ap.parse_args(argv)


def _train_overrides(args: argparse.Namespace) -> dict:
    over = {k: getattr(args, k) for k in ("batch_size", "grad_accum", "max_iters", "max_seconds", "lr", "min_lr_ratio",
                                          "eval_interval", "eval_iters", "seed", "warmup_iters", "optimizer", "muon_lr",
                                          "weight_decay", "muon_weight_decay", "beta1", "beta2", "device", "dtype",
                                          "sample_tokens")}
    if args.compile:
        over["compile"] = True
    return over


def _resumed(args: argparse.Namespace, out: Path):
    """--resume: the run's own model and settings (over the GPT_MAX_* limits: a checkpoint can come from anyone)."""
    saved = ckpt.load_checkpoint(out)
    args.data = resume_source(args.data, saved.meta)
    train_over = {k: getattr(args, k) for k in ("max_iters", "max_seconds") if getattr(args, k) is not None}
    train_cfg = TrainConfig.from_dict({**saved.meta.get("train", {}), **train_over})
    Limits.from_env().check_run(saved.model_config, train_cfg)
    corpus = corpora.load(args.data)
    return Dataset(corpus.text, saved.tokenizer, name=corpus.name), saved.model_config, train_cfg


def _initialised(args: argparse.Namespace, out: Path):
    """--init-from (nanoGPT's init_from): the imported model and its tokenizer, our training settings."""
    from ..convert import init_run

    args.data = args.data or "shakespeare"
    saved = init_run(args.init_from, out, dropout=args.dropout or 0.0)
    train_cfg = configs_from(args.preset, saved.model_config.vocab_size, {}, _train_overrides(args))[1]
    try:
        Limits.from_env().check_run(saved.model_config, train_cfg)  # GPT-2 124M: raise GPT_MAX_PARAMS to fine-tune it
    except GPTError:
        for written in (ckpt.WEIGHTS, ckpt.CONFIG, ckpt.STATUS):  # the import, so the same command can run again
            (out / written).unlink(missing_ok=True)
        raise
    corpus = corpora.load(args.data)
    return Dataset(corpus.text, saved.tokenizer, name=corpus.name), saved.model_config, train_cfg


def _new(args: argparse.Namespace):
    """A new run: the preset merged with the flags, held to every limit first (by arithmetic, with the
    vocabulary estimated: a refusal comes before any BPE is trained), then the corpus encoded with a new
    tokenizer and the limits checked again with the real vocabulary."""
    from ..model import ARCHITECTURES

    args.data = args.data or "shakespeare"
    model_over = {k: getattr(args, k) for k in ("n_layer", "n_head", "n_embd", "block_size", "dropout", "model_type")}
    if args.arch:
        model_over.update(ARCHITECTURES[args.arch])
    if args.no_mask:
        model_over["causal"] = False
    limits = Limits.from_env()
    configure_cpu_threads()  # before a preset measures this machine's speed to fit its shape (the run's threads)
    guess = args.vocab_size or (256 if args.tokenizer == "char" else 2048)  # exact once the tokenizer is built
    limits.check_run(*configs_from(args.preset, guess, model_over, _train_overrides(args)))
    dataset = corpora.dataset(corpora.load(args.data), args.tokenizer, args.vocab_size,
                              progress=lambda f, m: print(f"[tokenizer] {m}", file=sys.stderr))
    model_cfg, train_cfg = configs_from(args.preset, dataset.tokenizer.vocab_size, model_over, _train_overrides(args))
    limits.check_run(model_cfg, train_cfg)
    shapes = preset(args.preset)["shapes"]
    if shapes and train_cfg.max_seconds and not any(getattr(args, k) for k in ("n_layer", "n_head", "n_embd")):
        among = ", ".join(f"{s['n_layer']} x {s['n_embd']}" for s in shapes)
        print(f"[preset] {args.preset} takes {model_cfg.n_layer} layers x {model_cfg.n_embd} wide here: the largest "
              f"of {among} this machine trains on enough text in {train_cfg.max_seconds:g} s (--n-layer, --n-head "
              "and --n-embd choose another)", file=sys.stderr)
    return dataset, model_cfg, train_cfg


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    args = _parse_args(argv)
    args.tokenizer, args.vocab_size = preset_tokenizer(args.preset, args.tokenizer, args.vocab_size)
    quiet = int(os.environ.get("RANK", "0")) != 0  # under torchrun only rank 0 talks
    say = (lambda *a, **k: None) if quiet else print
    try:
        out = Path(args.out or f"checkpoints/{Path(args.data or 'shakespeare').stem}-{args.tokenizer}")
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file, not a folder; give a run folder.")
        if args.resume:
            dataset, model_cfg, train_cfg = _resumed(args, out)
        elif args.init_from:
            dataset, model_cfg, train_cfg = _initialised(args, out)
        else:
            dataset, model_cfg, train_cfg = _new(args)
        info = dataset.info()
        say(f"corpus {dataset.name}: {info.n_chars:,} chars, {info.n_tokens:,} tokens "
              f"({info.n_train:,} train / {info.n_val:,} val), vocab {info.vocab_size:,} [{dataset.tokenizer.name}]")
        bar = None  # made once the trainer exists, so an error before it is a clean line

        def on_step(p):
            bar.n = p["step"]
            bar.set_postfix(loss=f"{p['loss']:.3f}" if p["loss"] is not None else "-", tok_s=f"{p['tokens_per_sec']:.0f}",
                            refresh=False)
            bar.refresh() if p["step"] % 10 == 0 else None

        def on_eval(r):
            tqdm.write(f"step {r['step']:5d} | train {r['train_loss']:.4f} | val {r['val_loss']:.4f} | "
                       f"val bpc {r['val_bpc']:.3f} | val ppl {r['val_ppl']:.2f} | lr {r['lr']:.2e} | {r['tokens_per_sec']:,.0f} tok/s | {r['elapsed_s']:.1f}s")

        out.mkdir(parents=True, exist_ok=True)  # an unusable --out is a sentence now, not a failed run later
        trainer = Trainer(model_cfg, train_cfg, dataset, out, resume=args.resume or bool(args.init_from),
                          on_eval=on_eval, on_step=on_step,
                          meta={"corpus": dataset.name, "data_source": args.data})
        bar = tqdm(total=train_cfg.max_iters, initial=trainer.step, unit="step", dynamic_ncols=True, disable=quiet)
        say(f"model: {trainer.n_params:,} parameters (all included), device {trainer.device}, "
            f"{trainer.dist.world_size} process(es), run folder {out}")
        state = trainer.run()
        bar.close()
        distributed.cleanup()
    except GPTError as err:  # the sentence, then the developer's details (a URL, a cache path) when there are any
        print(f"error: {err}" + (f"\n{err.details}" if err.details else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # the run folder cannot be made or written (read-only, a path through a file, ...)
        print(f"error: cannot use the run folder {args.out or 'checkpoints/'}: {err.strerror or err}.", file=sys.stderr)
        return 2
    if state == "failed":
        print(f"error: {trainer.error}", file=sys.stderr)
        return 1
    if quiet:
        return 0
    best = min(r["val_loss"] for r in trainer.metrics)
    print(f"done: step {trainer.step}, best val loss {best:.4f}, {trainer.elapsed:.1f}s; checkpoint in {out}")
    return 0
