"""Model anatomy: where the parameters are, and the shape of every tensor.

The shapes come from a real forward pass with hooks, on the meta device (no
memory, no arithmetic), so they are the model's true shapes for any config,
not a table typed by hand.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..model import GPTConfig, build_model, count_parameters


COMPONENTS = {"token_embedding": "token embedding (wte)", "position_embedding": "position embedding (wpe)",
              "attention": "attention (q, k, v, proj)", "mlp": "MLP (4x wide)", "layernorm": "LayerNorms",
              "lm_head": "LM head"}


def parameter_rows(config: GPTConfig) -> list[list]:
    """[component, parameters, share %] per component, then the total; nothing is allocated."""
    parts = count_parameters(config)
    total = parts["total"]
    labels = dict(COMPONENTS)
    if config.model_type == "bigram":
        labels["token_embedding"] = "bigram table (vocab x vocab)"
    else:
        if config.pos_emb == "rope":
            labels["position_embedding"] = "position embedding (rotary: none)"
        if config.tie_weights:
            labels["lm_head"] = "LM head (tied: shares wte)"
    rows = [[labels.get(k, k), n, round(100 * n / total, 1)] for k, n in parts.items() if k != "total"]
    return rows + [["total", total, 100.0]]


def _symbols(config: GPTConfig, B: int, T: int) -> dict[int, str]:
    """Size -> letter, for the sizes only one name has (4C = vocab = 512 would make either letter a guess)."""
    C = config.n_embd
    names = {"B": B, "T": T, "vocab": config.vocab_size}
    if config.model_type == "gpt":
        names.update({"C": C, "nh": config.n_head, "hs": config.head_size, "3C": 3 * C, "4C": 4 * C})
    counts = {}
    for size in names.values():
        counts[size] = counts.get(size, 0) + 1
    return {v: k for k, v in names.items() if counts[v] == 1}  # a size two names share gets no letter: it could lie


def _pick_bt(config: GPTConfig) -> tuple[int, int]:
    C = config.n_embd
    taken = {config.vocab_size, C, config.n_head, config.head_size, 3 * C, 4 * C}
    B = next(b for b in range(2, 100) if b not in taken)
    T = next((t for t in (8, 7, 6, 5, 9, 10, 11, 12, 4, 3) if t not in taken | {B} and t <= config.block_size),
             min(config.block_size, 8))
    return B, T


def shape_trace(config: GPTConfig, batch_size: int | None = None, seq_len: int | None = None,
                all_blocks: bool = False) -> list[dict]:
    """The shape of every tensor in one forward pass, from a real forward with hooks.

    The model is built on the meta device: shapes are computed, no memory is
    used, so even a large config traces instantly. Rows: {'where', 'shape',
    'symbols' like "(B, T, C)" or "" when sizes coincide, 'what'}. By default
    only block 0 is listed; every block has the same shapes.
    """
    B0, T0 = _pick_bt(config)
    B, T = batch_size or B0, min(seq_len or T0, config.block_size)
    sym = _symbols(config, B, T)
    rows: list[dict] = []

    def add(where: str, shape, what: str, block: int | None = None) -> None:
        shape = tuple(shape)
        symbols = "(" + ", ".join(sym[d] for d in shape) + ")" if all(d in sym for d in shape) else ""
        rows.append(dict(where=where, shape=shape, symbols=symbols, what=what, block=block))

    def hook(where: str, what: str, block: int | None = None):
        return lambda module, args, out: add(where, (out[0] if isinstance(out, tuple) else out).shape, what, block)

    with torch.device("meta"):
        model = build_model(config)
        idx = torch.zeros(B, T, dtype=torch.long)
    add("idx", idx.shape, "token ids: a batch of B windows of T tokens")
    if config.model_type == "bigram":
        model.token_embedding_table.register_forward_hook(hook("token_embedding_table", "logits read from a table row"))
        model(idx)
        return rows
    tr = model.transformer
    tr.wte.register_forward_hook(hook("wte", "token embedding: each id becomes a vector"))
    if "wpe" in tr:
        tr.wpe.register_forward_hook(hook("wpe", "position embedding, added to every window"))
    norm = "RMSNorm" if config.norm == "rms" else "LayerNorm"
    if "ln_emb" in tr:
        tr.ln_emb.register_forward_hook(hook("ln_emb", f"{norm} of the embedding, before the first block"))
    for i, block in enumerate(tr.h):
        p = f"h[{i}]."
        block.ln_1.register_forward_hook(hook(p + "ln_1", f"{norm} before attention", i))
        block.attn.c_attn.register_forward_hook(hook(p + "attn.c_attn", "q, k, v of all heads in one matmul", i))
        block.attn.qkv = _traced_qkv(block.attn.qkv, p, add, i)  # a method, not a module: no hook sees q, k, v
        block.attn.register_forward_hook(hook(p + "attn", "heads concatenated, projected back (c_proj)", i))
        block.ln_2.register_forward_hook(hook(p + "ln_2", f"{norm} before the MLP", i))
        if block.mlp is not None:  # ffn='none', a ladder rung, has no MLP
            block.mlp.c_fc.register_forward_hook(hook(p + "mlp.c_fc", "the MLP widens every position 4x", i))
            block.mlp.register_forward_hook(hook(p + "mlp", "and projects back", i))
        block.register_forward_hook(hook(p[:-1], "block output: x + attn(...) + mlp(...)", i))
    tr.ln_f.register_forward_hook(hook("ln_f", f"final {norm}"))
    model.lm_head.register_forward_hook(hook("lm_head", "logits: a score for every vocabulary entry"))
    model(idx)
    if not all_blocks and config.n_layer > 1:
        rest = [r for r in rows if r["block"] not in (None, 0)]
        at = max(n for n, r in enumerate(rows) if r["block"] == 0) + 1
        rows = [r for r in rows if r["block"] in (None, 0)]
        later = "h[1]" if config.n_layer == 2 else f"h[1..{config.n_layer - 1}]"
        rows.insert(at, dict(where=later, shape=rest[-1]["shape"], symbols=rest[-1]["symbols"],
                             what=f"{config.n_layer - 1} more blocks, same shapes", block=None))
    return rows


def _traced_qkv(qkv: Callable, prefix: str, add: Callable, block: int) -> Callable:
    def traced(*args, **kwargs):
        q, k, v = qkv(*args, **kwargs)
        for name, t in (("q", q), ("k", k), ("v", v)):
            add(prefix + name, t.shape, f"{name} split into heads", block)
        weights = (*q.shape[:-1], k.shape[-2])  # (B, nh, T, T): one row per query, one column per key
        add(prefix + "attention weights", weights, "softmax(q·kᵀ/√hs), inside scaled_dot_product_attention", block)
        return q, k, v

    return traced
