"""The model as the decoder runs it: the same weights, arithmetic that treats each row alone, no module overhead.

A decode step over B rows (one request each, `gpt.batching`) must give every
row the numbers it would get alone. A Linear over B rows is one matrix
product whose kernel depends on B: with MKL on the project's 2-core EPYC a
row's result takes one of three values, for B = 1, B = 2-3 and B >= 4 (on
one thread; on two, B up to 11 moves between the last two). So in the view
each row goes through its own vector-matrix product (`RowwiseLinear`: bmm
against the weight broadcast over rows, no copy), which is the one-row
product bit for bit. The view also calls each module straight through its
forward: a token is ~40 module calls, and nn.Module's call machinery
(hooks, which a view never has) was ~8% of a small model's token on a CPU.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F


FULL_KERNEL_ROWS = 4  # one thread: a product of >= 4 rows gives each row the same bits, whatever the others


class RowwiseLinear(nn.Linear):
    """nn.Linear for a decode step over several rows: each row's own vector-matrix product.

    x (B, T, in) -> (B, T, out) as bmm(x, W^T broadcast over B): each row's
    (T, in) product on its own. For T = 1 that is what F.linear computes for
    the row alone, bit for bit; for prompts fed together (1 < T < 4) it is on
    one thread (`gpt.engine.prefill_together`). One row is F.linear itself,
    and so are T >= 4 tokens a row: on one thread every row of a product of
    four rows or more gets the same bits whatever the other rows are (this
    CPU's MKL, 4 to 1,100 rows, 32 to 3,072 wide; tests/test_batching.py), so
    thirty prompts fed together are one product, not thirty.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.size(0) == 1 or x.size(1) >= FULL_KERNEL_ROWS:
            return F.linear(x, self.weight, self.bias)
        y = torch.bmm(x, self.weight.t().expand(x.size(0), -1, -1))  # (B, T, in) @ (B, in, out)
        return y if self.bias is None else y + self.bias


_DIRECT: dict[type, type] = {}


def _direct(cls: type) -> type:
    """`cls` whose call is its forward: no hook machinery, which a decode view never has (~8% of a
    small model's token on a CPU, where a step is ~40 module calls)."""
    if cls not in _DIRECT:
        _DIRECT[cls] = type(cls.__name__, (cls,), {"__call__": cls.forward, "__module__": cls.__module__})
    return _DIRECT[cls]


def decode_view(model: nn.Module, rowwise: bool = True) -> nn.Module:
    """The model as the decoder runs it: the same parameters (shared, not copied), every nn.Linear a
    `RowwiseLinear`, every module called straight through its forward, in eval mode. Its modules are
    copies, so the model itself (perhaps training on another thread) is left as it is. `rowwise=False`
    keeps nn.Linear: for a compiled step (`gpt.compiled_step`), whose products either always have >=
    FULL_KERNEL_ROWS rows (torch.compile's graph, MKL's products) or are written by the compiler to give a row
    the same bits for any number of rows (a package)."""
    return _view(model, rowwise).eval()


def _view(module: nn.Module, rowwise: bool) -> nn.Module:
    clone = copy.copy(module)
    clone._modules = {name: None if child is None else _view(child, rowwise) for name, child in module._modules.items()}
    clone.__class__ = _direct(RowwiseLinear if rowwise and type(module) is nn.Linear else type(module))
    # children, parameters and buffers as plain attributes: `self.c_attn` then skips nn.Module.__getattr__'s
    # search of three dicts (~100 lookups a token); a view is never trained, saved or moved
    clone.__dict__.update({**clone._modules, **clone._parameters, **clone._buffers})
    return clone
