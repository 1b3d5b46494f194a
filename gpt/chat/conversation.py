"""What a conversation is, checked once where it comes in (a file, the Chat tab, a task).

A conversation is a list of messages `{"role", "content"}` (Hugging Face's
chat format): an optional system message first, then user and assistant turns
in alternation. One to learn from ends with the assistant's answer; a prompt
(what the Chat tab sends) ends with the user's turn.

Every refusal is one sentence naming the message and the field ("message 2's
'role' must be user, assistant or system, got 'bot'."); `gpt.chat.files`
puts "Line 7: " in front. Alpaca records ({"instruction", "input", "output"})
become the same two-turn conversation here.

`Example` is one conversation of a task or a file with the key that decides
its split: held-out examples are those whose key is held out, so the same
question is never on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DataError

ROLES = ("user", "assistant", "system")


@dataclass(frozen=True)
class Example:
    """A whole conversation (ending with the assistant's answer), its split key and where it comes from."""

    messages: tuple[dict, ...]
    key: str  # what decides the split: the question, never the answer
    task: str = ""

    @property
    def prompt(self) -> list[dict]:
        return list(self.messages[:-1])

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]

    @property
    def question(self) -> str:
        return self.messages[-2]["content"]


def _kind(value) -> str:
    names = {str: "text", bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def check_text(value, field: str) -> str:
    """A non-empty string that is valid text (JSON may carry lone surrogates, which are not)."""
    if not isinstance(value, str):
        raise DataError(f"{field} must be text, got {_kind(value)}.")
    if not value.strip():
        raise DataError(f"{field} is empty.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{field} holds a lone surrogate escape (such as \\ud800), which is not text.") from None
    return value


def check_messages(messages, *, complete: bool = True) -> list[dict]:
    """The messages as clean {"role", "content"} dicts, or DataError with the first problem.

    complete=True: a conversation to learn from (it ends with the assistant's answer);
    complete=False: a prompt (it ends with the user's turn)."""
    if not isinstance(messages, list):
        raise DataError(f"'messages' must be a list of messages, got {_kind(messages)}.")
    if not messages:
        raise DataError("'messages' is empty.")
    out = []
    for k, message in enumerate(messages, 1):
        if not isinstance(message, dict):
            raise DataError(f"message {k} must be an object with 'role' and 'content', got {_kind(message)}.")
        for field in ("role", "content"):
            if field not in message:
                raise DataError(f"message {k} has no '{field}'.")
        role = message["role"]
        if role not in ROLES:
            shown = repr(role[:40]) if isinstance(role, str) else _kind(role)
            raise DataError(f"message {k}'s 'role' must be user, assistant or system, got {shown}.")
        content = check_text(message["content"], f"message {k}'s 'content'")
        out.append({"role": role, "content": content})
    _check_order(out, complete)
    return out


def _check_order(messages: list[dict], complete: bool) -> None:
    """System first if at all, then user, assistant, user, ...; the end the caller needs."""
    expected = "user"
    for k, message in enumerate(messages, 1):
        role = message["role"]
        if role == "system":
            if k != 1:
                raise DataError(f"message {k} is a system message; only the first message may be one.")
            continue
        if role != expected:
            raise DataError(f"message {k} is a second {role} turn in a row; turns must alternate user, assistant.")
        expected = "assistant" if role == "user" else "user"
    last = messages[-1]["role"]
    if complete and all(m["role"] != "assistant" for m in messages):
        raise DataError("the conversation has no assistant turn, so there is nothing to learn from it.")
    if complete and last != "assistant":
        raise DataError(f"the conversation ends with a {last} turn; it must end with the assistant's answer.")
    if not complete and last != "user":
        raise DataError(f"the last message is the {last}'s; it must be the user's turn for the model to answer.")


def from_alpaca(record: dict) -> list[dict]:
    """An Alpaca record as a user turn (instruction, then input if any) and the assistant's output."""
    for field in ("instruction", "output"):
        if field not in record:
            raise DataError(f"'{field}' is missing.")
    instruction = check_text(record["instruction"], "'instruction'")
    output = check_text(record["output"], "'output'")
    extra = record.get("input")
    if extra is not None and not isinstance(extra, str):
        raise DataError(f"'input' must be text, got {_kind(extra)}.")
    user = instruction + ("\n\n" + extra if extra and extra.strip() else "")
    check_text(user, "'input'")  # a lone surrogate in the input
    return [{"role": "user", "content": user}, {"role": "assistant", "content": output}]


def prompt_key(messages: list[dict] | tuple[dict, ...]) -> str:
    """The split key of a conversation: everything before the last answer (the question and its context)."""
    return "\x1e".join(f"{m['role']}\x1f{m['content']}" for m in messages[:-1])
