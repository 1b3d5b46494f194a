"""Our tokenizers as a `tokenizers` tokenizer.json, and back.

What transformers' `AutoTokenizer.from_pretrained` loads, written as plain
JSON (the `tokenizers` package is needed to read it, not to write it):
- the character tokenizer: a WordLevel model over single characters, a
  pre-tokenizer that isolates every character (newlines too) and a `Fuse`
  decoder, so decoding joins the pieces without spaces;
- byte-level BPE (GPT-2's, or one trained here): GPT-2's byte-to-unicode
  alphabet, the vocabulary and the merges recovered from the ranks, our split
  pattern in front of a ByteLevel step that does not split again.

The merges are recovered the way transformers converts tiktoken files: every
token of two or more bytes is the merge of two shorter tokens, and merges
are ordered by the rank of what they make. BPE applied with that order gives
tiktoken's ids (a test checks it on the whole corpus).

A compact GPT-2 vocabulary (the ids one corpus uses, renumbered) is exported
with GPT-2's own full vocabulary: see `gpt.convert.hf` for the rows.

A chat model's tokens (`gpt.chat.tokenizer`) follow the exported text
vocabulary as real special tokens ("added_tokens", special: true), and
tokenizer_config.json carries the chat template, so `apply_chat_template(...,
add_generation_prompt=True)` gives our prompt ids and <|end|> is the end of
sequence. One difference: transformers reads "<|end|>" typed inside a message
as the special token (it matches added tokens in any text it is given); ours
keeps typed text as text.
"""

from __future__ import annotations

from functools import lru_cache

from ..bpe import BPETokenizer
from ..chat.tokenizer import END, HF_CHAT_TEMPLATE, ChatTokenizer
from ..errors import ConvertError
from ..tokenizer import CharTokenizer, Tokenizer
from ..tokenizers import tokenizer_from_spec


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (printable bytes map to themselves)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def _unicode(token: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def _char_json(tok: CharTokenizer) -> dict:
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": r"[\s\S]"}, "behavior": "Isolated", "invert": False},
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": dict(tok.stoi), "unk_token": "\ufffd"},
    }


def _special_token(content: str, token_id: int) -> dict:
    """An added token that text never splits into and decoding may skip (skip_special_tokens)."""
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def _bpe_json(tok: BPETokenizer) -> dict:
    enc = tok.enc
    ranks: dict[bytes, int] = enc._mergeable_ranks  # token bytes -> rank = id
    merges = []
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        pairs = [(token[:i], token[i:]) for i in range(1, len(token)) if token[:i] in ranks and token[i:] in ranks]
        pairs.sort(key=lambda p: (ranks[p[0]], ranks[p[1]]))
        merges.extend((rank, a, b) for a, b in pairs)
    merges.sort(key=lambda m: m[0])
    special = [_special_token(s, i) for s, i in sorted(enc._special_tokens.items(), key=lambda kv: kv[1])]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": special, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": enc._pat_str}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {_unicode(t): r for t, r in ranks.items()},
                  "merges": [[_unicode(a), _unicode(b)] for _, a, b in merges]},
    }


def exported_tokenizer(tok: Tokenizer) -> Tokenizer:
    """The tokenizer the export carries: ours, or for a compact vocabulary the full one it was cut from."""
    if isinstance(tok, ChatTokenizer):  # the chat tokens follow the exported text vocabulary
        return ChatTokenizer(exported_tokenizer(tok.base), tok.specials)
    if isinstance(tok, BPETokenizer) and tok.compact:
        return tokenizer_from_spec({**tok.spec(), "kept_ids": None})
    return tok


def tokenizer_json(tok: Tokenizer) -> dict:
    """tokenizer.json for `tok` (a compact vocabulary: for its full vocabulary, see exported_tokenizer)."""
    tok = exported_tokenizer(tok)
    if isinstance(tok, ChatTokenizer):
        data = tokenizer_json(tok.base)
        data["added_tokens"] = data["added_tokens"] + [_special_token(s, i) for s, i in tok.special_ids.items()]
        return data
    if isinstance(tok, CharTokenizer):
        return _char_json(tok)
    if isinstance(tok, BPETokenizer):
        return _bpe_json(tok)
    raise ConvertError(f"The {tok.name} tokenizer has no tokenizer.json form.")  # pragma: no cover


def eos_id(tok: Tokenizer) -> int | None:
    """The end-of-sequence id of an exported tokenizer: a chat model's <|end|>, GPT-2's <|endoftext|>, else none."""
    if isinstance(tok, ChatTokenizer):
        return tok.end_id
    return 50256 if isinstance(tok, BPETokenizer) and tok.name == "gpt2" else None


def tokenizer_config(tok: Tokenizer, block_size: int) -> dict:
    """tokenizer_config.json: the plain fast tokenizer, no space clean-up (it would change ' .' to '.');
    a chat model's adds its chat template, and <|end|> ends a sequence."""
    if isinstance(tok, ChatTokenizer):
        config = tokenizer_config(tok.base, block_size)
        return {**config, "eos_token": END, "pad_token": END, "chat_template": HF_CHAT_TEMPLATE,
                "extra_special_tokens": [s for s in tok.specials if s != END]}
    eos = "<|endoftext|>" if isinstance(tok, BPETokenizer) and tok.name == "gpt2" else None
    return {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
            "model_max_length": block_size, "add_bos_token": False, "add_eos_token": False,
            "bos_token": eos, "eos_token": eos}


def tokenizer_from_json(data: dict) -> Tokenizer:
    """Our tokenizer for a tokenizer.json: WordLevel over single characters -> char, else GPT-2's (full)."""
    model = (data or {}).get("model") or {}
    if model.get("type") == "WordLevel":
        vocab = model.get("vocab") or {}
        chars = sorted(vocab, key=vocab.get)
        if not chars or any(len(c) != 1 for c in chars) or [vocab[c] for c in chars] != list(range(len(chars))):
            raise ConvertError("tokenizer.json is a word-level vocabulary, not one of single characters numbered 0..n-1.")
        if chars != sorted(chars):
            raise ConvertError("tokenizer.json numbers its characters out of sorted order; a character model here "
                               "needs them sorted, as nanoGPT and the lecture make them.")
        return CharTokenizer(chars)
    if model.get("type") == "BPE":
        return tokenizer_from_spec({"type": "gpt2", "kept_ids": None})
    raise ConvertError(f"tokenizer.json holds a {model.get('type')!r} model; only character and GPT-2 tokenizers import.")
