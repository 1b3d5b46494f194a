"""The KV cache: the keys and values of the positions a model has seen, kept so each new token costs one position.

Two kinds, both read and written by the attention layers through the same
calls (`positions`, `update`, `attn_mask`, `advance`):
- `KVCache`: every row at the same position, filled left to right (a
  prompt, fed in one forward pass);
- `RowKVCache`: rows that are separate requests, each at its own length,
  decoded one token per step side by side (`gpt.engine.decode_step`).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class KVCache:
    """Keys and values of every layer for the positions seen so far, every row at the same position.

    k, v: (n_layer, B, nh, max_len, hs), filled left to right; `pos` is how
    many positions are filled. Attention layers call `update`, the model
    calls `positions` and `advance` once per forward pass. A prompt goes in
    through one (a row of a `RowKVCache` is one: `RowKVCache.row`).
    """

    attn_mask = None  # every row at the same position: the model's causal mask is the right one
    attend = None  # the attention layers attend themselves (a compiled step's cache does it, gpt.compiled_step)

    def __init__(self, k: torch.Tensor, v: torch.Tensor, pos: int = 0):
        self.k, self.v = k, v
        self._k_layers = [k[i] for i in range(k.size(0))]  # per-layer views, indexed once
        self._v_layers = [v[i] for i in range(v.size(0))]
        self.pos = pos

    @classmethod
    def for_model(cls, model: nn.Module, batch_size: int = 1) -> "KVCache":
        return cls(*_empty_kv(model, batch_size))

    def reset(self) -> None:
        self.pos = 0

    def positions(self, T: int) -> slice:
        return slice(self.pos, self.pos + T)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.pos + k.size(2)
        k_all, v_all = self._k_layers[layer], self._v_layers[layer]  # (B, nh, max_len, hs)
        k_all[:, :, self.pos : end] = k
        v_all[:, :, self.pos : end] = v
        return k_all[:, :, :end], v_all[:, :, :end]

    def advance(self, n: int) -> None:
        self.pos += n


def _empty_kv(model: nn.Module, rows: int, slots: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    c = model.config
    p = next(model.parameters())
    shape = (c.n_layer, rows, c.n_head, slots or c.block_size, c.head_size)
    return torch.zeros(shape, device=p.device, dtype=p.dtype), torch.zeros(shape, device=p.device, dtype=p.dtype)


class RowKVCache:
    """Keys and values for rows that are separate sequences, each filled to its own length.

    k, v: (n_layer, capacity, nh, block_size + 1, hs). A one-token step over
    the first B rows: `begin(lengths)`, then the model's forward, which writes
    each row's new key and value at that row's length and lets each row
    attend to its own filled slots only, through `attn_mask` (0 where filled,
    -inf elsewhere). The step's shapes never depend on the lengths, which is
    why a row's numbers are the same whether it decodes alone or beside
    others (gpt.batching), and why the step can be captured once. The last
    slot is scratch: a row that sits a step out (its prompt was just fed,
    and gave its next token's logits) writes its stand-in there.
    """

    attend = None  # the attention layers attend themselves, after `update`

    def __init__(self, model: nn.Module, capacity: int = 1):
        self.block_size = model.config.block_size
        self.k, self.v = _empty_kv(model, capacity, self.block_size + 1)
        self._slots = torch.arange(self.k.size(3), device=self.k.device).view(1, 1, 1, -1)  # (1, 1, 1, slots)
        self._open = torch.zeros((), dtype=self.k.dtype, device=self.k.device)  # what the mask adds where a row may look
        self._shut = torch.full((), float("-inf"), dtype=self.k.dtype, device=self.k.device)
        self._views(0)

    @property
    def capacity(self) -> int:
        return self.k.size(1)

    def _views(self, B: int) -> None:
        """Per-layer views of the first B rows, made once per batch size, not once per layer per step."""
        self.rows = B
        self._k_rows, self._v_rows = self.k[:, :B], self.v[:, :B]  # (n_layer, B, nh, slots, hs)
        self._k_layers = [self.k[i, :B] for i in range(self.k.size(0))]  # each (B, nh, slots, hs)
        self._v_layers = [self.v[i, :B] for i in range(self.v.size(0))]

    def grow(self, capacity: int) -> None:
        """Room for `capacity` rows; the rows already there keep their keys and values."""
        k, v = self.k, self.v
        shape = (k.size(0), capacity, *k.shape[2:])
        self.k, self.v = k.new_zeros(shape), v.new_zeros(shape)
        self.k[:, : k.size(1)], self.v[:, : v.size(1)] = k, v
        self._views(self.rows)

    def move(self, src: int, dst: int) -> None:
        """Row src's keys and values into row dst (a request that left makes room for the last one)."""
        self.k[:, dst], self.v[:, dst] = self.k[:, src], self.v[:, src]

    def fresh(self, rows: int) -> KVCache:
        """An empty cache of `rows` rows shaped like these, for prompts fed together (`gpt.engine.prefill_together`)."""
        shape = (self.k.size(0), rows, *self.k.shape[2:])
        return KVCache(self.k.new_zeros(shape), self.v.new_zeros(shape))

    def row(self, i: int, pos: int) -> KVCache:
        """Row i alone, filled to `pos`: a prompt is fed through it."""
        return KVCache(self.k[:, i : i + 1], self.v[:, i : i + 1], pos)

    def fill(self, i: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Row i's context fed whole: every layer's keys and values (n_layer, 1, nh, T, hs) at slots 0..T-1,
        what feeding it through `row(i, 0)` writes (a compiled prefill gives them back instead)."""
        T = k.size(3)
        self.k[:, i : i + 1, :, :T] = k.to(self.k.dtype)
        self.v[:, i : i + 1, :, :T] = v.to(self.v.dtype)

    def begin(self, lengths: list[int | None], layers: bool = True) -> None:
        """Before a one-token step over rows 0..B-1, each filled to lengths[b] (its new token's position);
        None for a row that sits the step out (its stand-in goes to the scratch slot, at position 0).
        `layers=False`: only what a compiled step takes (`step_tensors`), not what the attention layers read
        (`update`'s index, `attn_mask`): ~10 us of a packaged step that is ~120."""
        B = len(lengths)
        if B != self.rows:
            self._views(B)
        slots = [self.block_size if n is None else n for n in lengths]
        both = torch.tensor([slots, [n or 0 for n in lengths]], device=self.k.device)  # one tensor, two views
        self._slot, self._positions = both[0].view(B, 1, 1, 1), both[1].view(B, 1)  # (B, 1, 1, 1), (B, 1)
        if layers:
            self._index = self._slot.expand(B, self.k.size(2), 1, self.k.size(4))  # (B, nh, 1, hs)
            self.attn_mask = torch.where(self._slots <= self._slot, self._open, self._shut)  # (B, 1, 1, slots)

    def step_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What `begin` made for the step: each row's slot (B, 1, 1, 1) and position (B, 1), the inputs
        of a compiled step (`gpt.compiled_step`, which makes its own mask from the slots)."""
        return self._slot, self._positions

    def write(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Every layer's new key and value for the step's rows, each at its row's slot: k, v (n_layer, B,
        nh, 1, hs), what a compiled step gives back instead of writing them itself (`gpt.compiled_step`)."""
        index = self._slot.expand(k.shape)  # (n_layer, B, nh, 1, hs)
        self._k_rows.scatter_(3, index, k.to(self.k.dtype))
        self._v_rows.scatter_(3, index, v.to(self.v.dtype))

    def positions(self, T: int) -> torch.Tensor:
        return self._positions  # (B, 1): each row's new token at its own position

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k_all, v_all = self._k_layers[layer], self._v_layers[layer]  # (B, nh, slots, hs)
        k_all.scatter_(2, self._index, k.to(k_all.dtype))  # k: (B, nh, 1, hs), each row at its own slot
        v_all.scatter_(2, self._index, v.to(v_all.dtype))  # (under autocast: bf16 in, the cache's dtype kept)
        return k_all, v_all

    def advance(self, n: int) -> None:
        pass  # the rows' lengths are the caller's, given to `begin`
