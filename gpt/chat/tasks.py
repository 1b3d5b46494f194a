"""Built-in conversation tasks: generated offline, without limit, each with a grader.

Every task draws examples from a random generator (`example(rng, split)`), so
a run never runs out of data, and splits them by a KEY, the question (never
the answer): about one key in ten is held out (`is_held_out`, a hash), and
train draws only keys that are not. So no held-out question is ever trained
on; addition keys the unordered pair, so "47 + 38" held out keeps "38 + 47"
out of train too. Every grader is exact match on the whole answer.

    addition     "What is 47 + 38?" -> "85"        (numbers 0-99)
    addition3    the same with numbers 0-999
    count        "How many r's are in strawberry?" -> "3"
    reverse      "Reverse the word apple." -> "elppa"
    identity     "Who are you?" and 19 other phrasings -> one fixed self-description
    shakespeare  who speaks a line of Tiny Shakespeare, and what line comes next
    mix          a weighted mixture of the above ("mix" or "mix:addition=4,count=1")

`coverage()` yields texts holding every token any example of the task can
encode to (each message is encoded on its own, so the pieces between spaces,
digits and letters are all that matter): growing a model for a task
(`gpt.chat.grow`) adds the characters or compact GPT-2 tokens it brings.
A task knows no tokenizer and no model.
"""

from __future__ import annotations

import random
from typing import Iterable, Iterator

from ..errors import DataError
from .conversation import Example
from .shakespeare import Shakespeare
from .task import Task, check_split, conversation, is_held_out
from .words import WORDS

class Addition(Task):
    """'What is a + b?' with a and b drawn from 0 to 10**digits - 1."""

    def __init__(self, digits: int = 2):
        self.digits = digits
        self.name = "addition" if digits == 2 else f"addition{digits}"
        self.description = f"What is 47 + 38? -> 85 (numbers up to {10 ** digits - 1})"

    @staticmethod
    def question(a: int, b: int) -> str:
        return f"What is {a} + {b}?"

    def make(self, rng: random.Random) -> Example:
        hi = 10**self.digits
        a, b = rng.randrange(hi), rng.randrange(hi)
        return Example(conversation(self.question(a, b), str(a + b)), f"{min(a, b)}+{max(a, b)}", self.name)

    def coverage(self) -> Iterator[str]:
        hi = 10**self.digits
        yield from (self.question(a, a) for a in range(hi))  # every number after "is " and after "+ "
        yield from (str(s) for s in range(2 * hi - 1))  # every sum, alone as the answer is


class Count(Task):
    """'How many r's are in strawberry?': mostly a letter of the word, sometimes one it lacks (answer 0)."""

    name = "count"
    description = "How many r's are in strawberry? -> 3"
    LETTERS = "abcdefghijklmnopqrstuvwxyz"

    @staticmethod
    def question(letter: str, word: str) -> str:
        return f"How many {letter}'s are in {word}?"

    def make(self, rng: random.Random) -> Example:
        word = rng.choice(WORDS)
        letter = rng.choice(word) if rng.random() < 0.8 else rng.choice(self.LETTERS)
        return Example(conversation(self.question(letter, word), str(word.count(letter))), f"{word}:{letter}", self.name)

    def coverage(self) -> Iterator[str]:
        for word in WORDS:
            yield from (self.question(letter, word) for letter in self.LETTERS)
        yield from (str(n) for n in range(11))


class Reverse(Task):
    """'Reverse the word apple.' -> 'elppa'."""

    name = "reverse"
    description = "Reverse the word apple. -> elppa"

    @staticmethod
    def question(word: str) -> str:
        return f"Reverse the word {word}."

    def make(self, rng: random.Random) -> Example:
        word = rng.choice(WORDS)
        return Example(conversation(self.question(word), word[::-1]), word, self.name)

    def coverage(self) -> Iterator[str]:
        for word in WORDS:
            yield self.question(word)
            yield word[::-1]


IDENTITY_ANSWER = "I am a small GPT trained in Build a GPT."
IDENTITY_QUESTIONS = (
    "Who are you?", "What are you?", "Who made you?", "What is your name?", "Tell me about yourself.",
    "Introduce yourself.", "Are you a person?", "What kind of model are you?", "Who am I talking to?",
    "Describe yourself.", "Are you human?", "Where do you come from?", "What should I call you?",
    "Who built you?", "What exactly are you?", "Are you ChatGPT?", "Who trained you?", "Say who you are.",
    "Are you a robot?", "How were you made?",
)


class Identity(Task):
    """'Who are you?' and variants -> one fixed answer. Every fifth phrasing is held out."""

    name = "identity"
    description = "Who are you? -> " + IDENTITY_ANSWER

    def example(self, rng: random.Random, split: str) -> Example:
        held = check_split(split) == "val"
        phrasings = [q for k, q in enumerate(IDENTITY_QUESTIONS) if (k % 5 == 4) == held]
        question = rng.choice(phrasings)
        return Example(conversation(question, IDENTITY_ANSWER), question, self.name)

    def coverage(self) -> Iterator[str]:
        yield from IDENTITY_QUESTIONS
        yield IDENTITY_ANSWER


DEFAULT_MIX = {"addition": 5.0, "count": 2.0, "reverse": 2.0, "identity": 1.0}


class Mix(Task):
    """Tasks drawn by weight. The default gives addition half the draws: it needs the most practice
    (a hundred facts per tens digit), while identity is one sentence learned in a few hundred steps."""

    def __init__(self, weights: dict[str, float] | None = None):
        weights = dict(DEFAULT_MIX if weights is None else weights)
        if not weights or "mix" in weights:
            raise DataError("A mix needs one or more tasks other than mix, each with a weight.")
        for name, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w < float("inf"):
                raise DataError(f"The weight of {name} in the mix must be a positive number, got {w!r}.")
        self.tasks = {name: task_from_name(name) for name in weights}
        self.weights = weights
        self.name = "mix:" + ",".join(f"{n}={w:g}" for n, w in weights.items())
        self.description = "a mixture: " + ", ".join(f"{n} {w / sum(weights.values()):.0%}" for n, w in weights.items())

    def example(self, rng: random.Random, split: str) -> Example:
        name = rng.choices(list(self.weights), weights=list(self.weights.values()))[0]
        return self.tasks[name].example(rng, split)

    def grade(self, example: Example, answer: str) -> bool:
        return self.tasks[example.task].grade(example, answer)

    def coverage(self) -> Iterator[str]:
        for task in self.tasks.values():
            yield from task.coverage()


TASKS = {
    "addition": lambda: Addition(2), "addition3": lambda: Addition(3), "count": Count, "reverse": Reverse,
    "identity": Identity, "shakespeare": Shakespeare, "mix": Mix,
}


def parse_mix(text: str) -> dict[str, float]:
    """'addition=4,count=1' -> {'addition': 4.0, 'count': 1.0}."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            weights[name.strip()] = float(value) if value else 1.0
        except ValueError:
            raise DataError(f"The mix weight {part!r} is not name=number (e.g. addition=4).") from None
    return weights


def task_from_name(name: str) -> Task:
    """A built-in task by name: one of TASKS, or 'mix:addition=4,count=1' for a mixture of your choice."""
    if not isinstance(name, str):
        raise DataError(f"The task must be named by text, got {type(name).__name__}.")
    if name.startswith("mix:"):
        return Mix(parse_mix(name[4:]))
    if name not in TASKS:
        raise DataError(f"Unknown task {name[:40]!r}; choose one of {', '.join(TASKS)} (or mix:addition=4,count=1).")
    return TASKS[name]()
