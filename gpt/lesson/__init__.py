"""The lecture, step by step, on any text: "Let's build GPT: from scratch, in code, spelled out".

Each step of Karpathy's notebook (gpt-dev.ipynb) is a function that runs for
real on the chosen corpus and tokenizer and returns a `Step`: why it matters,
the code that ran (read with `inspect` from this package, so the page and the
terminal never show a copy that could drift from what executed), what it
printed, and where the lecture's own numbers hold (Tiny Shakespeare with the
character tokenizer only).

With seed 1337, batch 4 and block 8 on Tiny Shakespeare + characters, the
steps print what the lecture's notebook prints: `encode("hii there")`, the
first block's context/target table, `xb` and `yb`, the bigram's initial loss
4.8786 and its 100 untrained characters.

`python -m gpt.lesson --data shakespeare --tokenizer char` prints them all;
the Lesson tab (gpt/ui/lesson_tab.py) shows the same `Step`s. The lecture's own
pieces live here, small enough to read: `heads.Head` (one head of
self-attention), `bigram.train_bigram` (its training loop) and
`bigram.generate` (its simple sampler, the whole context every token).
The last step, `chat.step_chat`, goes past the lecture: the student's run
made a chat model (the chat tokens, the mask, its answers beside its parent's).
"""

from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from . import bigram, chat, heads, text
from .base import Lesson, Settings, Step, StudentRuns, make, source

__all__ = ["Lesson", "Settings", "Step", "StudentRuns", "STEP_NAMES", "make", "run", "source", "steps"]


def steps() -> list[tuple[str, str, Callable[[Lesson], Step]]]:
    """(name, title, function) in the lecture's order."""

    return [
        ("data", "1. Read the data", text.step_data),
        ("tokenize", "2. Tokenize", text.step_tokenize),
        ("tensor", "3. The whole text as a tensor", text.step_tensor),
        ("split", "4. Train/validation split", text.step_split),
        ("batches", "5. Chunks and batches", text.step_batches),
        ("bigram", "6. The bigram model", bigram.step_bigram),
        ("trick", "7. The mathematical trick of self-attention", heads.step_trick),
        ("head", "8. One head of self-attention", heads.step_head),
        ("ladder", "9. The ablation ladder", heads.step_ladder),
        ("chat", "10. From GPT to ChatGPT", chat.step_chat),
    ]


STEP_NAMES = ("data", "tokenize", "tensor", "split", "batches", "bigram", "trick", "head", "ladder", "chat")


def run(lesson: Lesson, name: str) -> Step:
    """Run one step by name, with a sentence naming the choices if the name is unknown."""
    for step_name, title, fn in steps():
        if step_name == name:
            step = fn(lesson)
            step.name, step.title = step_name, title
            return step
    raise ConfigError(f"step must be one of {', '.join(STEP_NAMES)}, got {name!r}.")
