"""A conversation task built from Tiny Shakespeare: who speaks a line, and what comes next.

The corpus is a play script: a speaker's name and a colon on one line, the
speech under it, a blank line between speeches. From it come two questions:

    Who speaks this line?\\nBefore we proceed any further, hear me speak.   -> First Citizen
    What comes after this line?\\nBefore we proceed any further, hear me speak.
        -> (the next line of the same speech)

The split key is the SPEECH: every line of a held-out speech is held out, so
no held-out line is ever seen in train, as a question or as an answer. Lines
that occur more than once in the corpus are left out, as questions and as
answers (they have no single speaker or successor, and could cross the
split), and so are lines under 20 or over 100 characters.

The corpus is read the way every other part of the project reads it
(`gpt.corpus.load`, which honours GPT_DATA_DIR and downloads once).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Iterator

from ..errors import DataError
from .conversation import Example
from .task import Task, check_split, conversation, is_held_out

WHO = "Who speaks this line?\n"
NEXT = "What comes after this line?\n"
LINE_CHARS = (20, 100)


def speeches(text: str) -> list[tuple[str, list[str]]]:
    """(speaker, lines) for every speech of a play script, in order."""
    out = []
    for block in text.split("\n\n"):
        lines = [line for line in block.strip("\n").split("\n")]
        if len(lines) >= 2 and lines[0].endswith(":") and 0 < len(lines[0]) <= 40:
            out.append((lines[0][:-1], lines[1:]))
    return out


class Shakespeare(Task):
    name = "shakespeare"
    description = "Who speaks this line? / What comes after this line? (Tiny Shakespeare)"

    def __init__(self, text: str | None = None):
        if text is None:
            from .. import corpus

            text = corpus.load("shakespeare").text
        all_speeches = speeches(text)
        seen = Counter(line for _, lines in all_speeches for line in lines)
        lo, hi = LINE_CHARS
        self._by_split: dict[str, list[tuple[str, str, list[str], list[bool]]]] = {"train": [], "val": []}
        for k, (speaker, lines) in enumerate(all_speeches):
            usable = [seen[line] == 1 and lo <= len(line) <= hi for line in lines]
            if any(usable):
                key = f"speech {k}"
                self._by_split["val" if is_held_out(key) else "train"].append((key, speaker, lines, usable))
        if not self._by_split["train"] or not self._by_split["val"]:
            raise DataError("The corpus has too few speeches (a name and a colon, then lines) for the shakespeare task.")

    def example(self, rng: random.Random, split: str) -> Example:
        key, speaker, lines, usable = rng.choice(self._by_split[check_split(split)])
        followed = [i for i in range(len(lines) - 1) if usable[i] and usable[i + 1]]
        if followed and rng.random() < 0.5:  # half the questions ask for the next line, where a speech has one
            i = rng.choice(followed)
            return Example(conversation(NEXT + lines[i], lines[i + 1]), key, self.name)
        i = rng.choice([i for i, ok in enumerate(usable) if ok])
        return Example(conversation(WHO + lines[i], speaker), key, self.name)

    def coverage(self) -> Iterator[str]:
        for split in ("train", "val"):
            for _, speaker, lines, usable in self._by_split[split]:
                yield speaker
                for i, ok in enumerate(usable):
                    if ok:
                        yield WHO + lines[i]
                        yield NEXT + lines[i]
                        if i + 1 < len(lines) and usable[i + 1]:
                            yield lines[i + 1]
