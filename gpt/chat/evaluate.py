"""Asking a chat model, and measuring it on a task's held-out questions.

- `ask(model, tokenizer, messages, settings) -> Answer`: the Chat tab's and the
  CLI's one call. The conversation so far is rendered up to <|assistant|>; the
  model writes until it emits <|end|> (the answer ended) or another chat token,
  or runs out of tokens (it did not). A conversation longer than the context
  loses its oldest turns first, and `notes` says so. `ask_stream` is the same
  answer as it grows, for a page or a terminal that shows it token by token.
- `evaluate(model, tokenizer, task, n, split="val") -> Score`: n examples of
  the split, each answered greedily, graded by the task (exact match). An
  answer that never ends within the expected answer's length plus 16 tokens
  counts as not ended, and as wrong whatever its text. Examples longer than the
  context are left out, as they are in training.

`gpt.engine.generate_stream` has no stop token: `answer_tokens` stops reading
at the first chat token and closes the stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterator

import torch.nn as nn

from ..engine import SamplingSettings, generate_stream
from ..errors import DataError, SamplingError
from ..sample import StreamDecoder, prompt_to_ids
from ..tokenizer import CharTokenizer, Tokenizer
from .conversation import Example, check_messages
from .task import Task, check_split
from .tasks import task_from_name
from .tokenizer import ChatTokenizer

EXTRA_TOKENS = 16  # an answer may run this far past the expected one's length before it counts as not ended
MAX_DRAWS_PER_EXAMPLE = 100


@dataclass(frozen=True)
class Reply:
    ids: list[int]  # the answer's text tokens, the closing chat token left out
    text: str
    ended: bool  # it closed with <|end|>


@dataclass(frozen=True)
class Answer:
    text: str
    ended: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Graded:
    question: str
    expected: str
    answer: str
    correct: bool
    ended: bool


@dataclass(frozen=True)
class Score:
    """Fractions of 1 over n examples, and each example as graded."""

    accuracy: float
    ended: float
    n: int
    graded: tuple[Graded, ...]

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "ended": self.ended, "n": self.n}


def answer_tokens(model: nn.Module, tokenizer: ChatTokenizer, prompt_ids: list[int], settings: SamplingSettings,
                  should_stop: Callable[[], bool] | None = None) -> Iterator[int]:
    """The answer's tokens as they come, up to the first chat token: <|end|> is yielded last when the answer
    ended with it; any other chat token ends the answer unsaid (the model began a turn that is not its own)."""
    stream = generate_stream(model, prompt_ids, settings, should_stop=should_stop)
    try:
        for token in stream:
            if tokenizer.is_special(token):
                if token == tokenizer.end_id:
                    yield token
                return
            yield token
    finally:
        stream.close()  # puts the model back in the mode it was in


def reply(model: nn.Module, tokenizer: ChatTokenizer, prompt_ids: list[int], settings: SamplingSettings,
          should_stop: Callable[[], bool] | None = None) -> Reply:
    """Tokens after the prompt until the first chat token: <|end|> means the answer ended."""
    ids = list(answer_tokens(model, tokenizer, prompt_ids, settings, should_stop))
    ended = bool(ids) and ids[-1] == tokenizer.end_id
    ids = ids[:-1] if ended else ids
    return Reply(ids, tokenizer.decode(ids), ended)


def fit_prompt(tokenizer: ChatTokenizer, messages: list[dict], room: int) -> tuple[list[int], list[str]]:
    """The prompt ids, dropping the oldest exchanges (then the system message) until they fit `room` tokens."""
    notes = []
    kept = list(messages)
    dropped = 0
    ids = tokenizer.render_prompt(kept)
    while len(ids) > room and len(kept) > 1:
        system = 1 if kept[0]["role"] == "system" else 0
        if len(kept) - system > 1:
            del kept[system:system + 2]  # one user turn and its answer
            dropped += 2
        else:
            del kept[0]
            dropped += 1
        ids = tokenizer.render_prompt(kept)
    if len(ids) > room:
        raise SamplingError(f"The message is {len(ids):,} tokens with its chat tokens, but the model's context "
                            f"leaves {room:,} for it; write a shorter one.")
    if dropped:
        notes.append(f"The conversation is longer than the model's context, so its first {dropped} message(s) "
                     "were left out.")
    return ids, notes


def ask_stream(model: nn.Module, tokenizer: ChatTokenizer, messages: list[dict],
               settings: SamplingSettings | None = None,
               should_stop: Callable[[], bool] | None = None) -> Iterator[Answer]:
    """The answer to the conversation so far (it ends with the user's turn), as it grows: one Answer per new
    piece of text (`ended` False), then the whole answer once more with `ended` set. Everything is checked, the
    prompt fitted and encoded, before the first token: a refusal comes before anything is shown."""
    messages = check_messages(messages, complete=False)
    settings = settings or SamplingSettings()
    block = model.config.block_size
    room = block - max(1, min(int(settings.max_new_tokens), block // 4))  # keep a quarter of it to answer in
    prompt, notes = fit_prompt(tokenizer, messages, room)
    return _answer_stream(model, tokenizer, prompt, settings, tuple(notes), should_stop)


def _answer_stream(model, tokenizer, prompt, settings, notes, should_stop) -> Iterator[Answer]:
    decoder, text, ended = StreamDecoder(tokenizer), "", False
    for token in answer_tokens(model, tokenizer, prompt, settings, should_stop):
        if token == tokenizer.end_id:
            ended = True
            break
        piece = decoder.push(token)  # a byte-level piece waits for the rest of its character
        if piece:
            text += piece
            yield Answer(text, False, notes)
    yield Answer(text + decoder.flush(), ended, notes)


def ask(model: nn.Module, tokenizer: ChatTokenizer, messages: list[dict], settings: SamplingSettings | None = None,
        should_stop: Callable[[], bool] | None = None) -> Answer:
    """The model's answer to the conversation so far (it ends with the user's turn)."""
    answer = None
    for answer in ask_stream(model, tokenizer, messages, settings, should_stop):
        pass
    return answer


def base_prompt(tokenizer: Tokenizer, question: str, block_size: int) -> tuple[list[int], list[str]]:
    """A question as a plain prompt for a model without the chat format (the run a chat model was made from):
    the text alone, which it can only continue. Characters a character model never saw are left out and named
    in the notes, since it cannot read them (a fine-tune adds them: `gpt.chat.grow`)."""
    notes = []
    if isinstance(tokenizer, CharTokenizer):
        unknown = tokenizer.unknown_chars(question)
        if unknown:
            question = "".join(ch for ch in question if ch not in set(unknown))
            notes.append(f"The parent run has never seen {' '.join(repr(ch) for ch in unknown[:20])}: they are "
                         "left out of its prompt (fine-tuning added them to the chat model).")
    ids, more = prompt_to_ids(tokenizer, question, block_size)
    return ids, notes + more


def pick_examples(task: Task, tokenizer: ChatTokenizer, split: str, n: int, block_size: int,
                  seed: int = 0) -> list[Example]:
    """n examples of `split` that fit the context: a fixed list's first n in a seeded order, else n draws."""
    rng = random.Random(seed)

    def fits(ex: Example) -> bool:
        return len(tokenizer.render(list(ex.messages))[0]) <= block_size + 1

    fixed = task.examples(split)
    if fixed is not None:
        order = list(fixed)
        rng.shuffle(order)
        return [ex for ex in order if fits(ex)][:n]
    out = []
    for _ in range(n * MAX_DRAWS_PER_EXAMPLE):
        if len(out) == n:
            break
        ex = task.example(rng, split)
        if fits(ex):
            out.append(ex)
    return out


def evaluate(model: nn.Module, tokenizer: ChatTokenizer, task: Task | str, n: int = 100, split: str = "val",
             *, seed: int = 0, should_stop: Callable[[], bool] | None = None) -> Score:
    """Greedy answers to n examples of `split`, graded: accuracy and the share that ended (fractions of 1).
    `should_stop` (a Stop click) ends an answer early; it then counts as not ended."""
    task = task_from_name(task) if isinstance(task, str) else task
    examples = pick_examples(task, tokenizer, check_split(split), n, model.config.block_size, seed)
    if not examples:
        raise DataError(f"No {split} example of {task.name} fits the model's context of "
                        f"{model.config.block_size} tokens, so there is nothing to grade.")
    graded = []
    for ex in examples:
        budget = len(tokenizer.encode(ex.answer)) + EXTRA_TOKENS
        got = reply(model, tokenizer, tokenizer.render_prompt(ex.prompt),
                    SamplingSettings(max_new_tokens=budget, temperature=0), should_stop=should_stop)
        correct = got.ended and task.grade(ex, got.text)
        graded.append(Graded(ex.question, ex.answer, got.text, correct, got.ended))
    n = len(graded)
    return Score(sum(g.correct for g in graded) / n, sum(g.ended for g in graded) / n, n, tuple(graded))
