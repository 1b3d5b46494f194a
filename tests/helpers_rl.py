"""Small chat runs to reward, made in seconds: what the RL tests start from."""

from __future__ import annotations

from pathlib import Path

import torch

from gpt import checkpoint as ckpt
from gpt.chat.batches import ChatBatches
from gpt.chat.grow import chat_model
from gpt.chat.tasks import task_from_name
from gpt.device import configure_cpu_threads
from gpt.model import GPTConfig, build_model
from gpt.tokenizer import CharTokenizer
from gpt.train import TrainConfig

ADDER = "adder-chat"


def chat_run(root: Path, name: str = ADDER, steps: int = 150, task: str = "addition", block_size: int = 32) -> Path:
    """A one-layer chat model fine-tuned `steps` steps on `task`, saved as a run with no owner (as the app ships
    runs: everyone may see it and start from it). 150 steps on addition: answers that end, a few of them right."""
    configure_cpu_threads()
    torch.manual_seed(0)
    data = task_from_name(task)
    base = CharTokenizer.from_text("What is 0123456789+? ")
    grown = chat_model(build_model(GPTConfig(vocab_size=base.vocab_size, block_size=block_size, n_layer=1,
                                             n_head=2, n_embd=48)), base, data)
    batches = ChatBatches(data, grown.tokenizer, block_size)
    opt = torch.optim.AdamW(grown.model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    grown.model.train()
    for _ in range(steps):
        x, y = batches.get_batch("train", 16, block_size, "cpu", gen)
        _, loss = grown.model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = Path(root) / name
    train = TrainConfig(batch_size=16, max_iters=steps, lr=1e-2).to_dict()
    ckpt.save_checkpoint(out, grown.model.eval(), grown.model.config, grown.tokenizer, steps, train=train,
                         corpus=task, task=task)
    ckpt.write_status(out, "finished", step=steps)
    return out


def pretrained_run(root: Path, name: str = "words-char") -> Path:
    """A run that is not a chat model: characters only, random weights."""
    tok = CharTokenizer.from_text("What is 0123456789+? ")
    torch.manual_seed(0)
    model = build_model(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16))
    out = Path(root) / name
    ckpt.save_checkpoint(out, model, model.config, tok, 10, train=TrainConfig(max_iters=10).to_dict())
    ckpt.write_status(out, "finished", step=10)
    return out
