"""Your own conversations from a file: JSONL chat format or Alpaca, checked line by line.

Two formats people have:
- JSONL, one `{"messages": [{"role": "user" | "assistant" | "system", "content": ...}]}`
  per line (Hugging Face's chat format);
- Alpaca: a JSON list of `{"instruction", "input", "output"}` (also accepted
  one per line as JSONL). A record may be either kind in either container.

The limits come as arguments and are checked before anything is built, in the
order they cost: the file's size (before it is read), the number of
conversations (lines are counted before any is parsed; a JSON list is read
item by item and refused at the first one over), then the tokens the
conversations can need at most (one per UTF-8 byte of text, which bounds both
a character and a byte-level tokenizer, plus two per message), before any is
tokenized. The defaults hold a 50 MB file; a million conversations are refused.

A bad record refuses the whole file: a model fine-tuned on part of a file
with no word would be worse than a sentence. The refusal says how many
records are bad and names the first few ("Line 7: message 2's 'role' must be
user, assistant or system, got 'bot'."); all of them, up to 100, are in
`details`. A conversation longer than the model's context is a different
matter, known only once a tokenizer is chosen: `gpt.chat.batches` skips it and
counts it.

The split is by the conversation's question (everything before the last
answer, `prompt_key`): about one in ten held out, the same question always on
the same side; at least one is held out whenever two questions differ.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from ..errors import DataError
from .conversation import Example, check_messages, from_alpaca, prompt_key
from .task import Task, check_split, is_held_out

DEFAULT_MAX_BYTES = 50 * 1024 * 1024  # GPT_MAX_UPLOAD_MB's default
DEFAULT_MAX_CONVERSATIONS = 200_000
DEFAULT_MAX_TOKENS = 60_000_000  # about 300 MB once rendered (4-byte ids, 1-byte mask)
TOKENS_PER_MESSAGE = 2  # its role token and <|end|>
SHOWN_PROBLEMS, KEPT_PROBLEMS = 3, 100


class ConversationFile(Task):
    """A file's conversations, split in two; a Task whose examples are a fixed list."""

    def __init__(self, name: str, conversations: list[list[dict]]):
        self.name = name
        self.description = f"{len(conversations):,} conversations from {name}"
        self._split: dict[str, list[Example]] = {"train": [], "val": []}
        for messages in conversations:
            key = prompt_key(messages)
            self._split["val" if is_held_out(key) else "train"].append(Example(tuple(messages), key, name))
        if not self._split["val"] and len({ex.key for ex in self._split["train"]}) >= 2:
            self._hold_out_one_question()
        if not self._split["train"] or not self._split["val"]:
            raise DataError(f"{name} needs at least two conversations with different questions: one to learn "
                            "from and one held out to measure the model on.")

    def _hold_out_one_question(self) -> None:
        """A small file whose hashes all fell on the train side: hold out its first question."""
        first = self._split["train"][0].key
        self._split["val"] = [ex for ex in self._split["train"] if ex.key == first]
        self._split["train"] = [ex for ex in self._split["train"] if ex.key != first]

    def examples(self, split: str) -> list[Example]:
        return self._split[check_split(split)]

    def example(self, rng: random.Random, split: str) -> Example:
        return rng.choice(self.examples(split))

    def coverage(self):
        for split in ("train", "val"):
            for ex in self._split[split]:
                yield from (m["content"] for m in ex.messages)

    def __len__(self) -> int:
        return len(self._split["train"]) + len(self._split["val"])


def load_conversations(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES,
                       max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
                       max_tokens: int = DEFAULT_MAX_TOKENS, name: str | None = None) -> ConversationFile:
    """A JSONL (chat format or Alpaca) or Alpaca JSON file as a ConversationFile, every limit checked first."""
    p = Path(path)
    name = name or p.name
    if not p.is_file():
        raise DataError(f"No conversation file at {name}.")
    size = p.stat().st_size
    if size > max_bytes:
        raise DataError(f"{name} is {size / 2**20:.1f} MB, over the limit of {max_bytes / 2**20:.0f} MB; "
                        "use a smaller file.")
    return parse_conversations(p.read_bytes(), name, max_conversations=max_conversations, max_tokens=max_tokens)


def parse_conversations(raw: bytes, name: str, *, max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
                        max_tokens: int = DEFAULT_MAX_TOKENS) -> ConversationFile:
    """The bytes of a conversation file (see the module docstring); `name` is what sentences call it."""
    text = decode_text(raw, name)
    start = len(text) - len(text.lstrip())
    if start == len(text):
        raise DataError(f"{name} is empty; give one conversation per line (JSONL) or a JSON list.")
    if text[start] == "[":
        records = _json_list(text, start, name, max_conversations)
    elif text[start] == "{":
        records = _jsonl(text, name, max_conversations)
    else:
        raise DataError(f"{name} is neither JSONL (one JSON object per line) nor a JSON list; it starts with "
                        f"{text[start:start + 20]!r}.")
    conversations, problems = [], []
    for line, record in records:
        try:
            conversations.append(_messages(record))
        except DataError as err:
            problems.append(f"Line {line}: {err}")
    if problems:
        raise _refusal(name, problems, len(conversations) + len(problems))
    if not conversations:
        raise DataError(f"{name} holds no conversations.")
    _check_tokens(conversations, name, max_tokens)
    return ConversationFile(name, conversations)


def decode_text(raw: bytes, name: str) -> str:
    """The text of a conversation file, or a sentence: binary (NUL bytes) or not UTF-8 (the line named)."""
    if b"\x00" in raw[:8192]:
        raise DataError(f"{name} looks like a binary file (it contains NUL bytes), not JSON text.")
    try:
        return raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"{name} is not UTF-8 text (line {line} has a byte that is not); save it as UTF-8.") from None


def _too_many(name: str, count: str, limit: int) -> DataError:
    return DataError(f"{name} holds {count} conversations, over the limit of {limit:,}; use fewer.")


def _jsonl(text: str, name: str, limit: int) -> list[tuple[int, object]]:
    """(line number, parsed object) per non-blank line; counted before any line is parsed."""
    lines = text.split("\n")  # not splitlines: U+2028 and friends may sit inside a JSON string
    count = sum(1 for line in lines if line.strip())
    if count > limit:
        raise _too_many(name, f"{count:,}", limit)
    out = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append((number, json.loads(line)))
            except (ValueError, RecursionError) as err:
                out.append((number, _Malformed(err)))
    return out


def _json_list(text: str, start: int, name: str, limit: int) -> list[tuple[int, object]]:
    """The items of a JSON list, read one at a time so a list over the limit is refused at its first extra item."""
    decoder = json.JSONDecoder()
    out, pos, line, counted = [], start + 1, 1 + text.count("\n", 0, start), start

    def skip(p: int) -> int:
        while p < len(text) and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip(pos)
    if pos < len(text) and text[pos] == "]":
        return out
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        if len(out) == limit:
            raise _too_many(name, f"more than {limit:,}", limit)
        try:
            item, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as err:
            detail = err.msg if isinstance(err, json.JSONDecodeError) else "nested too deeply"
            raise DataError(f"{name}, line {line}: not valid JSON ({detail}); the rest of the list cannot be read.") from None
        out.append((line, item))
        pos = skip(pos)
        if pos < len(text) and text[pos] == ",":
            pos = skip(pos + 1)
            continue
        if pos < len(text) and text[pos] == "]" and not text[pos + 1:].strip():
            return out
        where = 1 + text.count("\n", 0, pos)
        raise DataError(f"{name}, line {where}: expected ',' or the closing ']' of the list.")


class _Malformed:
    def __init__(self, err: Exception):
        self.msg = err.msg if isinstance(err, json.JSONDecodeError) else "nested too deeply"
        self.col = getattr(err, "colno", None)


def _messages(record) -> list[dict]:
    """The conversation a record holds, in either format; DataError names the field."""
    if isinstance(record, _Malformed):
        at = f" at column {record.col}" if record.col else ""
        raise DataError(f"not valid JSON ({record.msg}{at}).")
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object, got {type(record).__name__}.")
    if "messages" in record:
        return check_messages(record["messages"], complete=True)
    if "instruction" in record or "output" in record:
        return from_alpaca(record)
    keys = ", ".join(repr(k[:20]) for k in list(record)[:4]) or "none"
    raise DataError(f"expected 'messages' (chat format) or 'instruction' and 'output' (Alpaca); its keys are {keys}.")


def _refusal(name: str, problems: list[str], total: int) -> DataError:
    shown = " ".join(problems[:SHOWN_PROBLEMS])
    more = f" (and {len(problems) - SHOWN_PROBLEMS:,} more)" if len(problems) > SHOWN_PROBLEMS else ""
    return DataError(f"{len(problems):,} of the {total:,} records in {name} cannot be used{more}; fix them and "
                     f"load it again. {shown}", details="\n".join(problems[:KEPT_PROBLEMS]))


def _check_tokens(conversations: list[list[dict]], name: str, max_tokens: int) -> None:
    """At most one token per UTF-8 byte of text plus a few per message: refused before tokenizing."""
    bound = sum(len(m["content"].encode("utf-8")) + TOKENS_PER_MESSAGE for c in conversations for m in c)
    if bound > max_tokens:
        raise DataError(f"{name} could need up to {bound:,} tokens, over the limit of {max_tokens:,}; "
                        "use fewer or shorter conversations.")
