"""`python -m gpt.lesson`: the lecture's notebook, step by step, in the terminal.

    python -m gpt.lesson --data shakespeare --tokenizer char
    python -m gpt.lesson --data my.txt --tokenizer bpe --step batches --seed 7 --block-size 16
    python -m gpt.lesson --step chat --chat-run runs/chat     # your chat model beside the run it came from
"""

from __future__ import annotations

import argparse
import os
import sys

from pathlib import Path

from .. import checkpoint as ckpt
from ..data import corpus_file
from ..errors import CheckpointError, GPTError
from . import STEP_NAMES, Settings, StudentRuns, make, run

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
    ap.add_argument("--chat-run", default=None, help="step chat: a chat model's run folder (its parent beside it)")
    return ap.parse_args(argv)


def student_runs(chat_run: str) -> StudentRuns:
    """A chat model's run folder and the run it was fine-tuned from, a folder beside it (as in a runs folder)."""
    chat = ckpt.load_checkpoint(chat_run)
    parent = Path(chat_run).parent / ckpt.safe_run_name(str(chat.meta.get("parent") or "?"))
    if not (parent / ckpt.WEIGHTS).exists():
        raise CheckpointError(f"--chat-run {Path(chat_run).name}: the run it was fine-tuned from "
                              f"({str(chat.meta.get('parent'))[:60]}) is not beside it.")
    base = ckpt.load_checkpoint(parent)
    return StudentRuns(parent.name, base.model, base.tokenizer, Path(chat_run).name, chat.model, chat.tokenizer)


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
        lesson.runs = student_runs(args.chat_run) if args.chat_run else None
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
