"""What a conversation task is: examples drawn without end, a held-out split by question, an exact grader.

The built-in tasks are `gpt.chat.tasks` (and `gpt.chat.shakespeare`); a user's
file is `gpt.chat.files.ConversationFile`. Each is a `Task`.
"""

from __future__ import annotations

import hashlib
import random
from typing import Iterable

from ..errors import DataError
from .conversation import Example

HELD_OUT_IN = 10  # one key in ten is held out
SPLITS = ("train", "val")
MAX_DRAWS = 10_000  # rejection sampling for a split: val keys are 10%, so ~10 draws on average


def is_held_out(key: str) -> bool:
    """Whether `key` belongs to the held-out split: a hash, the same on every machine and every run."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % HELD_OUT_IN == 0


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"split must be 'train' or 'val', got {split!r}.")
    return split


def conversation(question: str, answer: str) -> tuple[dict, dict]:
    return ({"role": "user", "content": question}, {"role": "assistant", "content": answer})


class Task:
    """A source of conversations. Subclasses set `name` and implement `make` (or `example`) and `coverage`."""

    name = "task"
    description = ""

    def make(self, rng: random.Random) -> Example:  # pragma: no cover - interface
        """One example of either split."""
        raise NotImplementedError

    def example(self, rng: random.Random, split: str) -> Example:
        """One example of `split`, drawn until its key is on that side."""
        want = check_split(split) == "val"
        for _ in range(MAX_DRAWS):
            ex = self.make(rng)
            if is_held_out(ex.key) == want:
                return ex
        raise DataError(f"The task {self.name} found no {split} example in {MAX_DRAWS:,} draws.")  # pragma: no cover

    def examples(self, split: str) -> list[Example] | None:
        """Every example of `split` when the task is a fixed list (a file); None when it draws without end."""
        return None

    def grade(self, example: Example, answer: str) -> bool:
        """Exact match on the whole answer (surrounding whitespace aside)."""
        return answer.strip() == example.answer.strip()

    def coverage(self) -> Iterable[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<task {self.name}>"
