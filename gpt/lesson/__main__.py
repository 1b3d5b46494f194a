"""`python -m gpt.lesson`: the lecture's notebook, step by step, in the terminal.

    python -m gpt.lesson --data shakespeare --tokenizer char
    python -m gpt.lesson --data my.txt --tokenizer bpe --step batches --seed 7 --block-size 16
"""

from __future__ import annotations

import argparse
import os
import sys

from ..data import corpus_file
from ..errors import GPTError
from . import STEP_NAMES, Settings, make, run

RULE = "=" * 78


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m gpt.lesson", description="The lecture's steps on your own text.")
    ap.add_argument("--data", default="shakespeare", help="shakespeare, addition, reverse, counting, or a UTF-8 file")
    ap.add_argument("--tokenizer", default="char", choices=["char", "gpt2", "bpe"])
    ap.add_argument("--vocab-size", type=int, default=None, help="for --tokenizer bpe (default 2048)")
    ap.add_argument("--step", default=None, help=f"one step only: {', '.join(STEP_NAMES)}")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--block-size", type=int, default=8)
    ap.add_argument("--bigram-steps", type=int, default=3000)
    ap.add_argument("--no-code", action="store_true", help="print the outputs only")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("GPT_NUM_THREADS", "1")
    try:
        settings = Settings(seed=args.seed, block_size=args.block_size, batch_size=args.batch_size,
                            bigram_steps=args.bigram_steps)
        names = [args.step] if args.step else list(STEP_NAMES)
        if args.step is not None and args.step not in STEP_NAMES:
            raise GPTError(f"--step must be one of {', '.join(STEP_NAMES)}, got {args.step!r}.")
        upload = corpus_file(args.data)  # a built-in name, or a file that is there: else a sentence saying which
        lesson = make("upload" if upload else args.data, args.tokenizer, upload_path=upload and str(upload),
                      vocab_size=args.vocab_size, settings=settings)
        for name in names:
            step = run(lesson, name)
            print(f"{RULE}\n{step.title}\n{RULE}\n{step.why}\n")
            if not args.no_code:
                print(f"--- code (from the package) ---\n{step.code}\n")
            print(f"--- output ---\n{step.output}\n\n--- the lecture ---\n{step.lecture}\n", flush=True)
    except GPTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
