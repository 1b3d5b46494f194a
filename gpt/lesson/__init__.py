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
the Lesson tab (gpt/ui/lesson_tab.py) shows the same `Step`s.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass, field
from typing import Callable

from .. import corpus as corpora
from ..data import Dataset
from ..errors import ConfigError
from ..validate import whole


@dataclass
class Settings:
    """What a student may change; the numbers of every step follow."""

    seed: int = 1337
    block_size: int = 8
    batch_size: int = 4
    sentence: str = "hii there"
    bigram_steps: int = 3000  # bigram.py's 3,000 steps at 1e-2

    def __post_init__(self):
        for name, lo, hi in (("seed", 0, 2**31 - 1), ("block_size", 1, 256), ("batch_size", 1, 64),
                             ("bigram_steps", 0, 20_000)):
            setattr(self, name, whole(getattr(self, name), name, lo, hi))
        if not isinstance(self.sentence, str) or not self.sentence:
            raise ConfigError("sentence must be a non-empty text to tokenize.")


@dataclass
class Lesson:
    """One corpus, encoded with one tokenizer, and the settings: what every step reads."""

    corpus: corpora.Corpus
    dataset: Dataset
    settings: Settings = field(default_factory=Settings)

    @property
    def lecture_setup(self) -> bool:
        """True on Tiny Shakespeare with characters: the lecture's numbers apply."""
        return self.corpus.source == "shakespeare" and self.dataset.tokenizer.name == "char"


@dataclass
class Step:
    name: str
    title: str
    why: str
    code: str  # the source of the functions that ran, read with inspect
    output: str  # what it printed, notebook style
    lecture: str  # what the lecture prints here, and whether it holds for this corpus and tokenizer
    values: dict = field(default_factory=dict)  # the numbers behind the output (tests, the page)
    matrix: object = None  # a (T, T) weight matrix to draw, where the step has one


def source(*objects) -> str:
    """The code of package functions or classes, as it is in this checkout."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(o)).rstrip() for o in objects)


def make(choice: str = "shakespeare", tokenizer: str = "char", upload_path: str | None = None,
         pasted: str | None = None, vocab_size: int | None = None, settings: Settings | None = None) -> Lesson:
    """A Lesson for a Train-tab choice of corpus and tokenizer (the dataset comes from the shared cache)."""
    corpus = corpora.load(choice, upload_path, pasted)
    if tokenizer not in ("char", "gpt2", "bpe"):
        raise ConfigError(f"tokenizer must be char, gpt2 or bpe, got {tokenizer!r}.")
    return Lesson(corpus, corpora.dataset(corpus, tokenizer, vocab_size), settings or Settings())


def steps() -> list[tuple[str, str, Callable[[Lesson], Step]]]:
    """(name, title, function) in the lecture's order."""
    from . import attention, bigram, text

    return [
        ("data", "1. Read the data", text.step_data),
        ("tokenize", "2. Tokenize", text.step_tokenize),
        ("tensor", "3. The whole text as a tensor", text.step_tensor),
        ("split", "4. Train/validation split", text.step_split),
        ("batches", "5. Chunks and batches", text.step_batches),
        ("bigram", "6. The bigram model", bigram.step_bigram),
        ("trick", "7. The mathematical trick of self-attention", attention.step_trick),
        ("head", "8. One head of self-attention", attention.step_head),
        ("ladder", "9. The ablation ladder", attention.step_ladder),
    ]


STEP_NAMES = ("data", "tokenize", "tensor", "split", "batches", "bigram", "trick", "head", "ladder")


def run(lesson: Lesson, name: str) -> Step:
    """Run one step by name, with a sentence naming the choices if the name is unknown."""
    for step_name, title, fn in steps():
        if step_name == name:
            step = fn(lesson)
            step.name, step.title = step_name, title
            return step
    raise ConfigError(f"step must be one of {', '.join(STEP_NAMES)}, got {name!r}.")
