"""Base tokenizers of every kind and small random GPTs, for the chat tests."""

from __future__ import annotations

import json
import os

import pytest
import torch

from gpt.bpe import pretrained, train
from gpt.model import ARCHITECTURES, GPTConfig, build_model
from gpt.tokenizer import CharTokenizer

CORPUS = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
          "First Citizen:\nYou are all resolved rather to die than to famish?\n")
KINDS = ("char", "bpe", "gpt2-compact", "gpt2")
needs_gpt2 = pytest.mark.skipif(not os.environ.get("GPT_GPT2_RANKS"),
                                reason="GPT-2's ranks are offline (run .ci/fetch_gpt2_ranks.py)")


def base_tokenizer(kind: str, text: str = CORPUS):
    """A text tokenizer of `kind` for `text`: characters, trained BPE, compact or full GPT-2."""
    if kind == "char":
        return CharTokenizer.from_text(text)
    if kind == "bpe":
        return train(text * 4, 300)
    if os.environ.get("GPT_GPT2_RANKS") is None:
        pytest.skip("GPT-2's ranks are offline (run .ci/fetch_gpt2_ranks.py)")
    return pretrained("gpt2", text) if kind == "gpt2-compact" else pretrained("gpt2", compact=False)


def random_gpt(vocab_size: int, arch: str = "classic", block_size: int = 48, seed: int = 0, scale: float = 1.0,
               **change):
    """A small GPT with random weights (`change`: settings over the architecture's); scale > 1 makes its
    choices far from ties."""
    torch.manual_seed(seed)
    model = build_model(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=32,
                                  **{**ARCHITECTURES[arch], **change}))
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale) if p.dim() == 2 else p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


FACTS = [("2+2?", "4"), ("3+5?", "8"), ("name?", "gpt"), ("sky?", "blue"), ("7+1?", "8"), ("cat?", "meow"),
         ("dog?", "woof"), ("1+1?", "2")]


def facts_file(facts=FACTS):
    from gpt.chat.files import parse_conversations

    lines = [json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
             for q, a in facts]
    return parse_conversations("\n".join(lines).encode(), "facts.jsonl")


def memorise(task, max_steps: int = 400):
    """A tiny classic GPT fine-tuned on a few fixed conversations until it knows them by heart (~150 steps)."""
    from gpt.chat.batches import ChatBatches
    from gpt.chat.grow import chat_model
    from gpt.device import configure_cpu_threads

    configure_cpu_threads()  # GPT_NUM_THREADS (1 in tests), as the trainer does: spinning threads cost 10x here
    torch.manual_seed(0)
    base = CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz0123456789+? ")
    model = build_model(GPTConfig(vocab_size=base.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=48))
    grown = chat_model(model, base, task)
    batches = ChatBatches(task, grown.tokenizer, 32)
    opt = torch.optim.AdamW(grown.model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    grown.model.train()
    for _ in range(max_steps):
        x, y = batches.get_batch("train", 8, 32, "cpu", gen)
        _, loss = grown.model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if loss.item() < 0.005:
            break
    return grown.model.eval(), grown.tokenizer


def save_chat_pair(root, facts=FACTS, owner: str | None = None):
    """Two run folders under `root`: 'parent', the untrained GPT `memorise` starts from, and 'parent-chat', the chat
    model memorised from it (it answers FACTS' training questions). `owner`: both private to that owner id."""
    from pathlib import Path

    from gpt import checkpoint as ckpt

    model, chat = memorise(facts_file(facts))
    torch.manual_seed(0)  # memorise's seed and shape: the parent is the model it started from
    parent = build_model(GPTConfig(vocab_size=chat.base.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=48))
    root = Path(root)
    for name, m, tok, meta in (("parent", parent, chat.base, {}),
                               ("parent-chat", model, chat, {"parent": "parent", "task": "facts.jsonl",
                                                             "grown": "Added the chat tokens."})):
        ckpt.save_checkpoint(root / name, m, m.config, tok, 150, corpus="facts", train={"max_iters": 150}, **meta)
        if owner is not None:
            (root / name / "app.json").write_text(json.dumps({"owner": owner, "created": 1.0}))
    return root / "parent", root / "parent-chat"
