"""python -m gpt.convert: a run out to transformers or nanoGPT, or a model in as a run.

    python -m gpt.convert checkpoints/RUN --to hf --out /tmp/hf-model       # GPT-2, NanoChat, Qwen3 or Llama: whichever computes it
    python -m gpt.convert checkpoints/RUN --to nanogpt --out out-shakespeare-char
    python -m gpt.convert --from nanogpt out-shakespeare-char --out checkpoints/imported [--meta meta.pkl]
    python -m gpt.convert --from hf /tmp/hf-model --out checkpoints/from-hf  # a GPT-2, NanoChat, Qwen3 or Llama folder
    python -m gpt.convert --from gpt2 --out checkpoints/gpt2      # downloads GPT-2 124M (online only)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import GPTError
from . import download_gpt2, hf_to_run, nanogpt_to_run, run_to_hf, run_to_nanogpt


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m gpt.convert", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", nargs="?", help="a run folder (--to), or the model to import (--from)")
    way = ap.add_mutually_exclusive_group(required=True)
    way.add_argument("--to", choices=["hf", "nanogpt"], help="export the run SOURCE to this format")
    way.add_argument("--from", dest="src_format", choices=["nanogpt", "hf", "gpt2"], help="import SOURCE as a run")
    ap.add_argument("--out", required=True, help="the folder to write (a run folder for --from)")
    ap.add_argument("--meta", default=None, help="nanoGPT's meta.pkl, when it is not beside ckpt.pt")
    ap.add_argument("--dataset", default=None, help="--to nanogpt: the name sample.py looks for data/<name>/meta.pkl under")
    return ap.parse_args(argv)


def _convert(args: argparse.Namespace) -> str:
    out = Path(args.out)
    if args.src_format == "gpt2":
        src = download_gpt2(progress=lambda f, m: print(f"\r{m}", end="", file=sys.stderr))
        print(file=sys.stderr)
        return f"GPT-2 124M imported as the run {hf_to_run(src, out, corpus='GPT-2 (WebText)')}"
    if not args.source:
        raise GPTError("Give the SOURCE to convert (a run folder, or the model folder or file to import).")
    if args.to == "hf":
        return f"transformers folder written to {run_to_hf(args.source, out)}"
    if args.to == "nanogpt":
        path = run_to_nanogpt(args.source, out, dataset=args.dataset)
        meta = (f"; for nanoGPT's sample.py put meta.pkl at data/{args.dataset or Path(args.source).name}/meta.pkl"
                if (path / "meta.pkl").exists() else "")
        return f"nanoGPT checkpoint written to {path / 'ckpt.pt'}{meta}"
    if args.src_format == "nanogpt":
        return f"nanoGPT checkpoint imported as the run {nanogpt_to_run(args.source, out, meta_pkl=args.meta)}"
    return f"transformers folder imported as the run {hf_to_run(args.source, out)}"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        print(_convert(args))
    except GPTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
