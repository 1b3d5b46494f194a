"""Lesson step 6: the bigram model, before and after training.

The model is the package's `BigramLanguageModel` (gpt/model.py), the loop the
lecture's: AdamW on random batches, then sampling one token at a time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..model import BigramLanguageModel, GPTConfig
from .base import Lesson, Step, source
from .text import lecture_batch

LECTURE_INIT_LOSS = 4.8786


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    # idx is (B, T) array of indices in the current context
    for _ in range(max_new_tokens):
        logits, loss = model(idx)
        logits = logits[:, -1, :]  # becomes (B, C)
        probs = F.softmax(logits, dim=-1)  # (B, C)
        idx_next = torch.multinomial(probs, num_samples=1)  # (B, 1)
        idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)
    return idx


def train_bigram(model, dataset, steps: int, batch_size: int = 32, block_size: int = 8, lr: float = 1e-2) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        xb, yb = dataset.get_batch("train", batch_size, block_size)
        logits, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()


def step_bigram(lesson: Lesson) -> Step:
    s, ds = lesson.settings, lesson.dataset
    V = ds.tokenizer.vocab_size
    xb, yb = lecture_batch(lesson)
    torch.manual_seed(s.seed)  # the lecture seeds again before building the model
    model = BigramLanguageModel(GPTConfig(vocab_size=V, block_size=s.block_size, model_type="bigram"))
    logits, loss = model(xb, yb)
    B, T, C = logits.shape
    start = torch.zeros((1, 1), dtype=torch.long)  # token 0 ('\n' on Shakespeare) starts the text
    before = ds.tokenizer.decode(generate(model, start, 100)[0].tolist())
    final = train_bigram(model, ds, s.bigram_steps, block_size=s.block_size)
    after = ds.tokenizer.decode(generate(model, start, 300)[0].tolist())
    uniform = -math.log(1 / V)
    output = "\n".join([
        f"logits {tuple(logits.shape)} -> logits.view(B*T, C) {tuple(logits.view(B * T, C).shape)}",
        f"loss at initialisation: {loss.item():.4f}   -ln(1/{V}) = {uniform:.4f}",
        "", "100 tokens from the untrained model:", before, "",
        f"after {s.bigram_steps:,} AdamW steps (batch 32, lr 1e-2): loss {final:.4f}", "", after,
    ])
    exact = lesson.lecture_setup and (s.seed, s.batch_size, s.block_size) == (1337, 4, 8)
    lecture = (f"The lecture: logits (32, 65), loss {LECTURE_INIT_LOSS} against -ln(1/65) = 4.17, then about 2.5 "
               "after training. " + ("Yours match to the last digit, the noise included." if exact else
                                     "Those numbers hold on Tiny Shakespeare + characters, seed 1337, batch 4, "
                                     "block 8."))
    why = ("The simplest language model: a table whose row for the current token holds the scores (logits) of the "
           f"next. A uniform guess over {V} tokens costs -ln(1/{V}) = {uniform:.2f}; the untrained table is not "
           "uniform (its random N(0, 1) logits are confidently wrong about some tokens), so its loss starts higher. "
           "Training makes the table match how often each pair of tokens follows each other.")
    return Step("bigram", "", why, source(BigramLanguageModel.forward, generate, train_bigram), output, lecture,
                dict(logits_shape=(B, T, C), flat_shape=(B * T, C), init_loss=loss.item(), uniform_loss=uniform,
                     final_loss=final, before=before, after=after))
