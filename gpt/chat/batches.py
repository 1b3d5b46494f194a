"""Conversations packed into (B, T) rows with the loss only on the assistant's tokens: SFT's batches.

`ChatBatches(task, tokenizer, block_size)` is a batch source with exactly the
signature of `gpt.data.Dataset.get_batch`:

    get_batch(split, batch_size, block_size, device, generator) -> x, y    (B, T) LongTensors

x holds token ids; y[b, t] is the next token x would continue with where the
loss counts (the assistant's content and the <|end|> closing its turn), and
-1 everywhere else (cross_entropy's ignore_index in `GPT.forward`).

Packing (nanochat's SFT packs the same way, without cropping):
- a row is T + 1 tokens (T inputs, the last one only a target). Conversations
  go in whole, in the order they are drawn; one that does not fit what is
  left of a row starts the next row, and the gap is padding (<|end|> as input,
  -1 as target). A conversation is never split across rows, never cropped.
- the conversation left over when the batch is full is dropped: one per batch.
- a conversation longer than T + 1 tokens can never fit: a file's are counted
  when the source is built and skipped (`note` says how many, and the longest),
  a task's are skipped when drawn (`note` gives the share from a probe of 512).
- a conversation's last token (<|end|>) is followed by the next one's
  <|user|> or <|system|>, or by padding: its target has no loss, as no token
  after <|end|> ever does. So no loss crosses from one conversation to the
  next; attention does (as in nanochat's packed rows): a conversation may
  read the ones before it in its row, which only ever sit before it.

Deterministic: one number drawn from `generator` per batch seeds every
choice in it, so the same generator state gives the same batch (an exact resume
restores the generator and gets the same batches).

Also what the trainer's evaluation needs: `get_batch('val', ...)` draws held-out
conversations only, `tokenizer`, `check_block_size`, and `val_chars_per_token`
(characters of answer text per loss-bearing token of the held-out split, for
bits per character). This module knows no model.
"""

from __future__ import annotations

import random
from array import array

import torch

from ..errors import DataError
from .task import Task, check_split
from .tokenizer import ChatTokenizer

PROBE = 512  # examples rendered per split of an endless task, to say how many are too long
CACHE_SIZE = 50_000  # rendered examples of an endless task kept (they repeat: addition has 10,000; ~25 MB)
MAX_SKIPS = 1_000  # over-long draws in a row before a task is declared too long for the context


class _Rendered:
    """A fixed list of conversations rendered once into flat arrays: 4-byte ids and 1-byte mask per token."""

    def __init__(self, tokenizer: ChatTokenizer, examples):
        self.ids, self.mask, self.starts = array("i"), array("b"), array("q", [0])
        for ex in examples:
            ids, mask = tokenizer.render(list(ex.messages))
            self.ids.extend(ids)
            self.mask.extend(mask)
            self.starts.append(len(self.ids))
        self.lengths = [b - a for a, b in zip(self.starts, self.starts[1:])]
        self._fit: dict[int, list[int]] = {}

    def fitting(self, capacity: int) -> list[int]:
        if capacity not in self._fit:
            self._fit[capacity] = [i for i, n in enumerate(self.lengths) if n <= capacity]
        return self._fit[capacity]

    def get(self, i: int) -> tuple[array, array]:
        a, b = self.starts[i], self.starts[i + 1]
        return self.ids[a:b], self.mask[a:b]


class ChatBatches:
    """A task's conversations, rendered by a chat tokenizer and packed into rows (see the module docstring)."""

    def __init__(self, task: Task, tokenizer: ChatTokenizer, block_size: int):
        if not isinstance(tokenizer, ChatTokenizer):
            raise DataError("Chat batches need a chat tokenizer; make the run a chat model first.")
        self.task, self.tokenizer, self.name = task, tokenizer, task.name
        self.block_size = block_size
        self._fixed = {split: self._render_fixed(split) for split in ("train", "val")}
        self._cache: dict[tuple[str, str, str, str], tuple[array, array]] = {}  # (task, key, question, answer)
        self._probe = {split: self._probe_lengths(split) for split in ("train", "val")}
        self.check_block_size(block_size)
        self.note = self._note(block_size)
        self.val_chars_per_token = self._chars_per_token("val")

    # --- what the source holds ---------------------------------------------------------------

    def _render_fixed(self, split: str) -> _Rendered | None:
        examples = self.task.examples(split)
        return None if examples is None else _Rendered(self.tokenizer, examples)

    def _probe_lengths(self, split: str) -> list[int]:
        """Lengths of every conversation of a fixed list, or of PROBE drawn from an endless task."""
        if self._fixed[split] is not None:
            return self._fixed[split].lengths
        rng = random.Random(f"probe {split}")
        return [len(self._render(self.task.example(rng, split))[0]) for _ in range(PROBE)]

    def check_block_size(self, block_size: int) -> None:
        """DataError unless both splits have conversations that fit a row of block_size + 1 tokens."""
        for split in ("train", "val"):
            lengths = self._probe[split]
            if not any(n <= block_size + 1 for n in lengths):
                which = "held-out" if split == "val" else "training"
                raise DataError(f"Every {which} conversation of {self.name} is longer than the model's context of "
                                f"{block_size} tokens (the shortest has {min(lengths):,}); use shorter conversations "
                                "or a model with a longer context.")

    def _note(self, block_size: int) -> str | None:
        """The over-long conversations, in a sentence: counted in a file, estimated for an endless task."""
        lengths = [n for split in ("train", "val") for n in self._probe[split]]
        long = [n for n in lengths if n > block_size + 1]
        if not long:
            return None
        if self._fixed["train"] is not None:
            return (f"Skipped {len(long):,} of {len(lengths):,} conversations longer than the model's context of "
                    f"{block_size} tokens (the longest has {max(long):,}); {len(lengths) - len(long):,} remain.")
        return (f"About {len(long) / len(lengths):.0%} of {self.name}'s conversations are longer than the model's "
                f"context of {block_size} tokens; they are skipped.")

    def _chars_per_token(self, split: str) -> float:
        fixed = self._fixed[split]
        if fixed is not None:
            examples, tokens = self.task.examples(split), sum(fixed.mask)
        else:
            rng = random.Random(f"chars {split}")
            examples = [self.task.example(rng, split) for _ in range(PROBE)]
            tokens = sum(sum(self._render(ex)[1]) for ex in examples)
        chars = sum(len(m["content"]) for ex in examples for m in ex.messages if m["role"] == "assistant")
        return max(1e-9, chars / max(1, tokens))

    # --- drawing and packing -------------------------------------------------------------------

    def _render(self, example) -> tuple[array, array]:
        key = (example.task, example.key, example.question, example.answer)
        hit = self._cache.get(key)
        if hit is None:
            ids, mask = self.tokenizer.render(list(example.messages))
            hit = (array("i", ids), array("b", mask))
            if len(self._cache) < CACHE_SIZE:
                self._cache[key] = hit
        return hit

    def _draw(self, rng: random.Random, split: str, capacity: int) -> tuple[array, array]:
        """One conversation of `split` that fits a row of `capacity` tokens."""
        fixed = self._fixed[split]
        if fixed is not None:
            fitting = fixed.fitting(capacity)
            if not fitting:
                self.check_block_size(capacity - 1)
            return fixed.get(fitting[rng.randrange(len(fitting))])
        for _ in range(MAX_SKIPS):
            ids, mask = self._render(self.task.example(rng, split))
            if len(ids) <= capacity:
                return ids, mask
        raise DataError(f"{self.name}'s conversations are longer than the model's context of {capacity - 1} tokens.")

    def get_batch(self, split: str, batch_size: int, block_size: int, device: str = "cpu",
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T) ids and y (B, T) next ids where the loss counts, -1 elsewhere; see the module docstring."""
        check_split(split)
        where = generator.device if generator is not None else "cpu"
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=where))
        rng = random.Random(seed)
        capacity = block_size + 1
        ids, mask = array("i"), array("b")
        carried = None
        for _ in range(batch_size):
            used = 0
            while True:
                conv = carried or self._draw(rng, split, capacity)
                carried = None
                if used + len(conv[0]) > capacity:
                    carried = conv  # starts the next row
                    break
                ids.extend(conv[0])
                mask.extend(conv[1])
                used += len(conv[0])
                if used == capacity:
                    break
            ids.extend([self.tokenizer.end_id] * (capacity - used))  # padding: no loss
            mask.extend([0] * (capacity - used))
        rows = torch.frombuffer(ids, dtype=torch.int32).view(batch_size, capacity).long()  # (B, T+1)
        learn = torch.frombuffer(mask, dtype=torch.int8).view(batch_size, capacity).bool()  # (B, T+1)
        x = rows[:, :-1]
        y = torch.where(learn[:, 1:], rows[:, 1:], -1)  # the target's own mask decides its loss
        return x.to(device), y.to(device)
