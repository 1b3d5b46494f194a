"""What every step of the lesson reads and returns: the settings, the lesson (a corpus and its dataset), a step.

The steps themselves are `text`, `bigram` and `heads`; `gpt.lesson` lists them in the lecture's order.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass, field

from .. import corpus as corpora
from ..data import Dataset
from ..errors import ConfigError
from ..tokenizer import Tokenizer
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
class StudentRuns:
    """The student's own runs, for the last step: a run they trained (or the shipped one), and the chat model
    fine-tuned from it when they made one. Models are any `gpt.model` GPT with its tokenizer."""

    name: str
    model: object
    tokenizer: Tokenizer
    chat_name: str | None = None
    chat_model: object = None
    chat_tokenizer: Tokenizer | None = None


@dataclass
class Lesson:
    """One corpus, encoded with one tokenizer, and the settings: what every step reads."""

    corpus: corpora.Corpus
    dataset: Dataset
    settings: Settings = field(default_factory=Settings)
    runs: StudentRuns | None = None  # the last step, From GPT to ChatGPT, works on these when given

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
