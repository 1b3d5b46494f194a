"""Text in, text out: prompts, streaming decode, and the sampling CLI.

`gpt.engine` works on ids; this module puts a tokenizer around it:
- `prompt_to_ids` turns a prompt into ids, with a start token for an empty
  prompt and the prompt cropped to the model's context;
- `stream_text` yields text as tokens arrive, holding back a byte-level
  BPE piece until its UTF-8 character is complete (no stray U+FFFD).

Run it: `python -m gpt.sample --checkpoint checkpoints/shakespeare-char --prompt "ROMEO:"`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Iterator

import torch

from .engine import SamplingSettings, generate_stream
from .errors import GPTError
from .tokenizer import Tokenizer


def start_token(tokenizer: Tokenizer) -> int:
    """The token an empty prompt starts from: a newline where the vocabulary has one."""
    for candidate in ("\n", " "):
        try:
            ids = tokenizer.encode(candidate)
        except GPTError:
            continue
        if len(ids) == 1:
            return ids[0]
    return 0


def prompt_to_ids(tokenizer: Tokenizer, prompt: str, block_size: int) -> tuple[list[int], list[str]]:
    """Encode a prompt; returns (ids, notes) where notes explain what the sampler does with it.

    An empty prompt becomes a start token. A prompt longer than the context is
    returned whole: the engine's window keeps its last block_size tokens
    (`gpt.engine.Row.open`, the one place that fits a context), and a note says so.
    """
    notes = []
    if prompt is None or prompt == "":
        notes.append("The prompt is empty, so the sample starts from a newline (a start token).")
        return [start_token(tokenizer)], notes
    ids = tokenizer.encode(prompt)  # raises TokenizerError naming unknown characters
    if not ids:
        return [start_token(tokenizer)], notes
    if len(ids) > block_size:
        notes.append(f"The prompt is {len(ids)} tokens, longer than the model's context of {block_size}; "
                     f"only its last {block_size} tokens are used.")
    return ids, notes


class StreamDecoder:
    """Feed ids one at a time; get back only the text that is complete.

    A byte-level token can end inside a multi-byte UTF-8 character, which
    decodes to U+FFFD until the next token brings the rest. We keep the ids
    since the last clean break, decode them together, and hold back a trailing
    run of U+FFFD. Works with any tokenizer, since it only calls `decode`.
    """

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self._pending: list[int] = []  # ids since the last point where the text was whole
        self._sent = 0  # characters of decode(_pending) already returned

    def push(self, token_id: int) -> str:
        self._pending.append(int(token_id))
        text = self.tokenizer.decode(self._pending)
        whole = text.rstrip("\ufffd")
        out = whole[self._sent:]
        if len(whole) == len(text):
            self._pending, self._sent = [], 0
        else:
            self._sent = len(whole)
        return out

    __call__ = push

    def flush(self) -> str:
        """The held-back rest (a genuinely broken or fallback character stays U+FFFD)."""
        out = self.tokenizer.decode(self._pending)[self._sent:] if self._pending else ""
        self._pending, self._sent = [], 0
        return out


def stream_text(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    ids: list[int],
    settings: SamplingSettings,
    *,
    use_cache: bool = True,
    should_stop: Callable[[], bool] | None = None,
    step=None,
) -> Iterator[str]:
    """Yield pieces of generated text as they are made after the prompt `ids` (from `prompt_to_ids`;
    the prompt is not repeated). `step`: a `gpt.compiled_step.CompiledStep` of the model, once ready."""
    decoder = StreamDecoder(tokenizer)
    for token in generate_stream(model, ids, settings, use_cache=use_cache, should_stop=should_stop, step=step):
        piece = decoder.push(token)
        if piece:
            yield piece
    tail = decoder.flush()
    if tail:
        yield tail


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import load_checkpoint
    from .device import configure_cpu_threads, detect_device

    ap = argparse.ArgumentParser(prog="python -m gpt.sample", description="Sample text from a trained checkpoint.")
    ap.add_argument("--checkpoint", required=True, help="a run folder or a model.safetensors file")
    ap.add_argument("--prompt", default="")
    ap.add_argument("--max-new-tokens", type=int, default=500)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=None, help="keep the k likeliest tokens (0 or omitted: off, as in the app)")
    ap.add_argument("--top-p", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-kv-cache", action="store_true", help="recompute the whole context every token (slow; for comparison)")
    ap.add_argument("--compile", action="store_true",
                    help="compile the decode step first (CPU; seconds to a minute, then 3-5x the characters a second)")
    args = ap.parse_args(argv)
    try:
        device = detect_device(args.device)
        if device == "cpu":
            configure_cpu_threads()
        ck = load_checkpoint(args.checkpoint, device=device)
        # the page's and the API's convention: top-k 0 is off, a negative seed is random
        settings = SamplingSettings.from_values(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed)
        notes = settings.validate(ck.tokenizer.vocab_size)
        ids, prompt_notes = prompt_to_ids(ck.tokenizer, args.prompt, ck.model_config.block_size)
        for note in notes + prompt_notes:
            print(f"note: {note}", file=sys.stderr)
        step = None
        if args.compile and device == "cpu" and not args.no_kv_cache:
            from .compiled_step import CompiledStep

            print("note: compiling the decode step (seconds to a minute)...", file=sys.stderr)
            step = CompiledStep(ck.model, threads=None)
            step.warm()  # where it cannot compile it says so, and the eager step serves
        sys.stdout.write(args.prompt)
        for piece in stream_text(ck.model, ck.tokenizer, ids, settings, use_cache=not args.no_kv_cache, step=step):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()
    except GPTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `| head` closed the pipe: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as err:
        print(f"error: {err.strerror or err}.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
