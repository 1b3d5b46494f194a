"""The chat format: a base tokenizer plus special tokens no typed text can produce.

A conversation is a list of messages `{"role": "user" | "assistant" | "system",
"content": str}` (the Hugging Face chat format). It is rendered as

    <|system|> text <|end|>          (optional, first only)
    <|user|> text <|end|> <|assistant|> text <|end|>   (repeated)

with the special tokens numbered AFTER the base tokenizer's text vocabulary:
ids 0..n-1 are the base's (characters, trained BPE, compact or full GPT-2),
ids n, n+1, ... the specials in `SPECIALS` order. The text inside a message is
encoded by the base tokenizer alone, so a message that contains the string
"<|end|>" encodes as the characters (or bytes) '<', '|', 'e', ...: a user can
neither end a turn nor forge an assistant's one by typing. Decoding a special
id shows its name.

`render(messages) -> (ids, mask)` is the data side of supervised fine-tuning:
mask is 1 exactly on the assistant's content tokens and on the <|end|> that
closes each assistant turn, the tokens the model must learn to write, and 0
on everything it is given (role tokens, <|assistant|> itself, user and system
text). `render_prompt(messages)` is what generation starts from: the
conversation so far, then <|assistant|>.

System messages are supported: a conversation may open with one, rendered like
a user turn under <|system|> and never trained on.

This module knows no model and no training; `gpt.chat.grow` makes a model fit
a chat tokenizer, `gpt.chat.batches` packs rendered conversations.
"""

from __future__ import annotations

from typing import Callable

from ..errors import DataError, TokenizerError
from ..tokenizer import Tokenizer

USER, ASSISTANT, END, SYSTEM = "<|user|>", "<|assistant|>", "<|end|>", "<|system|>"
SPECIALS = (USER, ASSISTANT, END, SYSTEM)  # the id order after the text vocabulary
REQUIRED = (USER, ASSISTANT, END)
ROLE_TOKEN = {"user": USER, "assistant": ASSISTANT, "system": SYSTEM}
SPEC_VERSION = 1


class ChatTokenizer(Tokenizer):
    """A base tokenizer with chat special tokens numbered after its vocabulary."""

    name = "chat"

    def __init__(self, base: Tokenizer, specials: tuple[str, ...] | list[str] = SPECIALS):
        if isinstance(base, ChatTokenizer):
            raise TokenizerError("A chat tokenizer wraps a text tokenizer, not another chat tokenizer.")
        specials = tuple(specials)
        if len(set(specials)) != len(specials) or any(s not in SPECIALS for s in specials):
            raise TokenizerError(f"The chat tokens must be distinct names among {', '.join(SPECIALS)}; "
                                 f"got {', '.join(map(str, specials))[:200]}.")
        missing = [s for s in REQUIRED if s not in specials]
        if missing:
            raise TokenizerError(f"The chat tokenizer lacks {', '.join(missing)}; it cannot mark turns without it.")
        self.base = base
        self.specials = specials
        self.n_text = base.vocab_size  # ids below this are text
        self.special_ids = {name: self.n_text + k for k, name in enumerate(specials)}
        self.end_id = self.special_ids[END]

    @property
    def vocab_size(self) -> int:
        return self.n_text + len(self.specials)

    def is_special(self, token_id: int) -> bool:
        return int(token_id) >= self.n_text

    def encode(self, text: str) -> list[int]:
        """Text only, through the base tokenizer: typed text never becomes a special token."""
        return self.base.encode(text)

    def decode(self, ids: list[int]) -> str:
        """Text runs through the base tokenizer; a special id shows as its name."""
        out, run = [], []
        for i in ids:
            i = int(i)
            if i < self.n_text:
                run.append(i)
                continue
            if run:
                out.append(self.base.decode(run))
                run = []
            if i >= self.vocab_size or i < 0:
                raise TokenizerError(f"Token id {i} is outside this vocabulary of {self.vocab_size:,}.")
            out.append(self.specials[i - self.n_text])
        if run:
            out.append(self.base.decode(run))
        return "".join(out)

    def pieces(self, text: str) -> list[tuple[str, int]]:
        return self.base.pieces(text)

    def spec(self) -> dict:
        return {"type": "chat", "version": SPEC_VERSION, "base": self.base.spec(), "specials": list(self.specials)}

    def describe(self) -> str:
        return f"{self.base.describe()} + {len(self.specials)} chat tokens"

    # --- conversations ------------------------------------------------------------------

    def special_id(self, name: str) -> int:
        try:
            return self.special_ids[name]
        except KeyError:
            raise DataError(f"This chat model has no {name} token; it supports {', '.join(self.specials)}.") from None

    def render(self, messages: list[dict]) -> tuple[list[int], list[int]]:
        """(ids, mask) of a whole conversation; mask 1 on the assistant's content and closing <|end|>."""
        ids: list[int] = []
        mask: list[int] = []
        for message in messages:
            role, content = message["role"], message["content"]
            if role not in ROLE_TOKEN:
                raise DataError(f"'role' must be user, assistant or system, got {str(role)[:40]!r}.")
            learn = 1 if role == "assistant" else 0
            body = self.encode(content)
            ids += [self.special_id(ROLE_TOKEN[role]), *body, self.end_id]
            mask += [0, *([learn] * len(body)), learn]
        return ids, mask

    def render_prompt(self, messages: list[dict]) -> list[int]:
        """The ids generation starts from: the conversation so far, then <|assistant|>."""
        ids, _ = self.render(messages)
        return ids + [self.special_ids[ASSISTANT]]


# The same format for transformers' `apply_chat_template` (Jinja). `render_prompt` above is its
# definition here; a test checks that both give the same ids (tests/test_chat_export.py).
HF_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['user', 'assistant', 'system'] -%}"
    "{{- raise_exception(\"'role' must be user, assistant or system\") -}}{%- endif -%}"
    "{{- '<|' + message['role'] + '|>' + message['content'] + '<|end|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}"
)


def chat_tokenizer_from_spec(spec: dict, base_from_spec: Callable[[dict], Tokenizer]) -> ChatTokenizer:
    """Rebuild from `ChatTokenizer.spec()`; the base goes through `base_from_spec`
    (`gpt.tokenizers.tokenizer_from_spec`, which knows every kind) and its checks."""
    base, specials, version = spec.get("base"), spec.get("specials"), spec.get("version", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise TokenizerError(f"The chat tokenizer's description has version {str(version)[:20]}; this program "
                             f"reads version {SPEC_VERSION}. Update the app to load it.")
    if not isinstance(base, dict) or base.get("type") == "chat":
        raise TokenizerError("The chat tokenizer's description must hold its base tokenizer's description.")
    if not isinstance(specials, list) or not all(isinstance(s, str) for s in specials) or len(specials) > len(SPECIALS):
        raise TokenizerError("The chat tokenizer's description must list its special tokens by name.")
    return ChatTokenizer(base_from_spec(base), specials)


def base_of(tokenizer: Tokenizer) -> Tokenizer:
    """The text tokenizer under a chat tokenizer (a text tokenizer is its own base)."""
    return tokenizer.base if isinstance(tokenizer, ChatTokenizer) else tokenizer
