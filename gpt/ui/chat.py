"""Chat from the page and the API: open a chat model, stream its answer, set it beside its parent, show the mask,
start a fine-tune.

The Chat tab (`gpt.ui.chat_tab`) and the `/chat` and `/start_finetune`
endpoints (`gpt.ui.api`) share these, so both refuse the same things with
the same sentences:

- `open_chat`: a run the asker may see whose tokenizer has the chat tokens
  (one still training answers with its current weights);
- `answer_stream`: the answer token by token (`gpt.chat.ask_stream`: it stops
  at <|end|>, and a conversation longer than the context loses its oldest
  turns, with a note saying so);
- `side_by_side`: the same question to the parent run, which only continues
  the text, and to the chat model, which answers and stops;
- `mask_html`: a conversation's tokens coloured by whether the loss trains on
  them (`ChatTokenizer.render -> (ids, mask)`);
- `finetune_request` and `conversation_corpus`: what `JobManager.start` needs
  for a fine-tune, so it is an ordinary run (queue, Stop/Resume, limits).
"""

from __future__ import annotations

import contextlib
import html
import random
import time
from typing import Iterator

import pandas as pd

from .. import checkpoint as ckpt
from ..chat import Answer, ChatTokenizer, Task, check_messages, task_from_name
from ..chat.evaluate import ask_stream, base_prompt
from ..chat.files import decode_text, parse_conversations
from ..chat.grow import grown_tokenizer
from ..checkpoint_check import check_checkpoint
from ..corpus import Corpus
from ..engine import SamplingSettings
from ..errors import CheckpointError, ConfigError, DataError, GPTError, SamplingError
from ..jobs import JobManager, RunRequest, RunStatus
from ..lesson import StudentRuns
from ..sample import stream_text
from ..validate import text
from ..jobs import sampling as gen
from .token_html import token_boxes
from .uploads import still_cached

TASK_CHOICES = ("mix", "addition", "addition3", "count", "reverse", "identity", "shakespeare")
MAX_MESSAGE_CHARS = 10_000  # a model reads at most its context (<= 512 tokens here); longer is refused at once
MAX_MESSAGES = 1_000
TRAINED, GIVEN = "#86efac", "#e5e7eb"  # the mask view: tokens the loss trains on, and the rest
ACCURACY_SERIES = ("held-out accuracy", "answers that end")


# --- which runs ---------------------------------------------------------------------------------


def chat_runs(runs: list[RunStatus]) -> list[RunStatus]:
    """Runs that can chat: a chat tokenizer, and weights on disk or training right now."""
    return [r for r in runs if r.chat and (r.has_weights or r.state == "running")]


def parent_runs(runs: list[RunStatus]) -> list[RunStatus]:
    """Runs a fine-tune can start from: a GPT with a saved checkpoint (a chat model may learn more)."""
    return [r for r in runs if r.has_weights and r.model_type == "gpt" and not r.active]


def open_chat(manager: JobManager, cache: gen.ModelCache, owner: str, name: str) -> gen.Loaded:
    """The chat model `name` (its live weights while it trains), or a sentence."""
    if not name:
        raise CheckpointError("Choose a chat model: fine-tune a run below to make one.")
    loaded = gen.open_run(manager, cache, owner, name, manager.device)
    if not isinstance(loaded.tokenizer, ChatTokenizer):
        raise ConfigError(f"Run {name!r} is not a chat model: it has no chat tokens. Fine-tune it into one first "
                          "(the Chat tab's Fine-tune, /start_finetune, or python -m gpt.chat finetune).")
    return loaded


def chat_settings(loaded: gen.Loaded, cap: int, max_new_tokens, temperature, top_k=0, top_p=1.0,
                  seed=-1) -> tuple[SamplingSettings, list[str]]:
    """The sampling settings, with the page's and the API's conventions (top-k 0, top-p 1: off; seed -1: random),
    checked once; the notes say what was changed (top-k above the vocabulary)."""
    settings = gen.SampleRequest("", "", max_new_tokens, temperature, top_k, top_p, seed).settings()
    return settings, settings.validate(loaded.tokenizer.vocab_size, cap)


def as_messages(value) -> list[dict]:
    """The API's `messages`: a question (text) or a conversation (a list of {role, content}) ending with the
    user's turn, checked (`gpt.chat.check_messages`) and bounded before anything is encoded."""
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if isinstance(value, list) and len(value) > MAX_MESSAGES:
        raise DataError(f"'messages' holds {len(value):,} messages, over the limit of {MAX_MESSAGES:,}; "
                        "a model's context holds a few turns at most.")
    messages = check_messages(value, complete=False)
    for k, m in enumerate(messages, 1):
        text(m["content"], f"message {k}'s 'content'", MAX_MESSAGE_CHARS, error=DataError)
    return messages


# --- answering ------------------------------------------------------------------------------------


def answer_stream(loaded: gen.Loaded, messages: list[dict], settings: SamplingSettings,
                  should_stop=None) -> Iterator[Answer]:
    """The answer as it grows (see `gpt.chat.ask_stream`); a run still training says so in the notes."""
    stream = ask_stream(loaded.model, loaded.tokenizer, messages, settings, should_stop)  # checks before a token
    live = (f"This chat model is still training: it answers with its weights at step {loaded.step:,}.",) \
        if loaded.live else ()
    for answer in stream:
        yield Answer(answer.text, answer.ended, live + answer.notes)


def side_by_side(base: gen.Loaded, chat: gen.Loaded, question: str, settings: SamplingSettings,
                 should_stop=None) -> Iterator[tuple[str, Answer, list[str]]]:
    """(the parent's text so far, the chat model's answer so far, notes), advancing both a piece at a time:
    the parent continues the question as text; the chat model answers it and stops at <|end|>."""
    messages = as_messages(question)
    answers = answer_stream(chat, messages, settings, should_stop)
    ids, notes = base_prompt(base.tokenizer, messages[0]["content"], base.model.config.block_size)
    pieces = stream_text(base.model, base.tokenizer, ids, settings, should_stop=should_stop)
    base_text, answer, last = messages[0]["content"], Answer("", False), 0.0
    streams = {"base": pieces, "chat": answers}
    while streams:
        for key in list(streams):
            try:
                got = next(streams[key])
            except StopIteration:
                del streams[key]
                continue
            if key == "base":
                base_text += got
            else:
                answer = got
        if time.monotonic() - last >= gen.STREAM_INTERVAL_S or not streams:
            last = time.monotonic()
            yield base_text, answer, notes + list(answer.notes)


# --- the mask -------------------------------------------------------------------------------------


def mask_html(tokenizer: ChatTokenizer, messages: list[dict], max_tokens: int = 400) -> str:
    """The conversation's tokens as boxes: green where the loss trains on them, grey where they are given."""
    ids, mask = tokenizer.render(check_messages(messages, complete=True))
    pieces = [(tokenizer.decode([i]), i) for i in ids]
    colours = [TRAINED if m else GIVEN for m in mask]
    trained = sum(mask)
    legend = (f'<div class="tok-caption"><span class="tok" style="background:{TRAINED}">trained on</span> '
              f'<span class="tok" style="background:{GIVEN}">given</span> &nbsp; {trained:,} of {len(ids):,} tokens '
              "carry the loss: the assistant's answers and the &lt;|end|&gt; that closes each. Everything else "
              "(the chat tokens, the question) is read, never learned.</div>")
    return token_boxes(pieces, max_tokens, colours) + legend


def task_example(task: Task, seed: int = 0) -> list[dict]:
    """One training conversation of a task, as the fine-tune draws them."""
    return list(task.example(random.Random(seed), "train").messages)


def grown_for(manager: JobManager, owner: str, parent: str, task: Task) -> ChatTokenizer:
    """The chat tokenizer a fine-tune of `parent` on `task` will have, from the checkpoint's header alone."""
    if not parent or not manager.runs.visible(owner, parent):
        raise CheckpointError(f"There is no run named {parent!r}.")
    checked = check_checkpoint(manager.runs.run_path(parent) / ckpt.WEIGHTS, manager.limits)
    return grown_tokenizer(checked.tokenizer, task)[0]


# --- the Lesson's last step -------------------------------------------------------------------------


def student_runs(manager: JobManager, cache: gen.ModelCache, owner: str) -> StudentRuns | None:
    """The asker's newest chat model with the run it came from; else their current run; else None (the step
    then works on the lesson's tokenizer)."""
    if not owner:
        return None
    mine = [r for r in chat_runs(manager.runs.list_runs(owner)) if r.mine]
    for r in sorted(mine, key=lambda r: -r.created):
        if r.parent and manager.runs.visible(owner, r.parent):
            with contextlib.suppress(GPTError):
                parent = gen.open_run(manager, cache, owner, r.parent, manager.device)
                loaded = gen.open_run(manager, cache, owner, r.name, manager.device)
                return StudentRuns(r.parent, parent.model, parent.tokenizer, r.name, loaded.model, loaded.tokenizer)
    current = manager.runs.current_run(owner)
    with contextlib.suppress(GPTError):
        if current and manager.runs.summary(current, owner).model_type == "gpt":
            loaded = gen.open_run(manager, cache, owner, current, manager.device)
            return StudentRuns(current, loaded.model, loaded.tokenizer)
    return None


# --- fine-tuning ----------------------------------------------------------------------------------


def conversation_corpus(path: str | None, limits) -> Corpus:
    """An uploaded conversation file as the run's corpus (kept in its folder, so it resumes): its size is checked
    before it is read, its text before it is queued; `gpt.jobs` parses it (one sentence per bad record)."""
    if not path:
        raise DataError("Upload a conversation file (JSONL chat format or Alpaca), or choose a built-in task.")
    p = still_cached(path)
    name = p.name[:60]
    size = p.stat().st_size
    if size > limits.max_upload_bytes:
        raise DataError(f"{name} is {size / 2**20:.1f} MB, over the limit of {limits.max_upload_mb} MB; "
                        "use a smaller file.")
    return conversation_text(p.read_bytes(), name)


def conversation_text(raw: bytes, name: str) -> Corpus:
    return Corpus(name, decode_text(raw, name), "text")


def upload_task(path: str | None, limits) -> Task:
    """The conversations of an uploaded file as a task (the mask view shows one)."""
    corpus = conversation_corpus(path, limits)
    return parse_conversations(corpus.text.encode("utf-8"), corpus.name)


def finetune_request(parent: str, task: str | None, max_seconds=None, max_iters=None, lr=None, batch_size=None,
                     shared: bool = False) -> RunRequest:
    """A fine-tune of `parent` on a built-in task (None: the conversation file given as the corpus). None or 0
    keeps the stage's value (`gpt.presets.LATER_STAGES`); max_seconds 0 means no time limit."""
    if task is not None:
        task_from_name(task)  # an unknown task is a sentence now, not once it is queued
    as_int = lambda x: int(x) if x else None  # noqa: E731
    return RunRequest(kind="finetune", parent=parent, task=task, max_seconds=None if max_seconds is None
                      else float(max_seconds), max_iters=as_int(max_iters), lr=float(lr) if lr else None,
                      batch_size=as_int(batch_size), shared=bool(shared))


def accuracy_frame(metrics: list[dict]) -> pd.DataFrame:
    """Held-out accuracy and the share of answers that end, in percent, at each evaluation of a fine-tune."""
    rows = [(r["step"], 100 * r[key], name) for r in metrics
            for key, name in zip(("val_accuracy", "val_ended"), ACCURACY_SERIES) if key in r]
    rows += [(float("nan"), float("nan"), name) for name in ACCURACY_SERIES if name not in {x[2] for x in rows}]
    x, y, series = zip(*rows)
    return pd.DataFrame({"step": pd.Series(x, dtype="float64"), "percent": pd.Series(y, dtype="float64"),
                         "series": pd.Series(series, dtype="str")})


def growth_line(status: RunStatus | None) -> str:
    """What a fine-tune is and what it added, in a line: parent, data, and the growth note."""
    if status is None or status.kind != "finetune":
        return ""
    grown = f" {html.escape(status.grown)}" if status.grown else ""
    return f"**{status.name}**: {status.parent} fine-tuned on {status.task}.{grown}"


def typed_message(message) -> str:
    """The page's typed message: text with something in it, and not longer than any message may be (checked
    before it is encoded: a pasted book is refused at once)."""
    if not isinstance(message, str) or not message.strip():
        raise SamplingError("Type a message first.")
    if len(message) > MAX_MESSAGE_CHARS:
        raise SamplingError(f"Your message is {len(message):,} characters long, over the limit of "
                            f"{MAX_MESSAGE_CHARS:,}; a model reads a few hundred tokens at most, so shorten it.")
    return message
