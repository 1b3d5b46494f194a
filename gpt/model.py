"""The networks: the lecture's bigram baseline and a GPT decoder.

Read top to bottom: `GPTConfig`, `CausalSelfAttention`, `MLP`, `Block`,
`GPT`, then `BigramLanguageModel`. The "classic" GPT is the one the lecture
builds (and nanoGPT's `model.py`): learned position embeddings, pre-LayerNorm
blocks of masked multi-head self-attention and a 4x GELU MLP, a final
LayerNorm and an LM head tied to the token embedding.

What the "modern" architecture changes, each a `GPTConfig` switch
(modded-nanogpt and nanochat use all of them):
- rotary position embeddings instead of a learned position table
- QK-norm: queries and keys RMS-normalised per head before the dot product
- ReLU squared in the MLP instead of GELU
- an LM head untied from the token embedding
- (`norm='rms'`, `embed_norm=True`: nanochat's block) RMSNorm without a gain in
  place of LayerNorm, and one more right after the embedding

`causal=False` drops the mask: every block becomes an encoder block that can
see the token it must predict (the "why the mask" experiment).

The lecture's ablation ladder (`gpt.ladder`) is this same code with the
switches `ffn`, `residual`, `attn_proj` and `layernorm`, and two places where
the video differs: `attn_scale='embd'` (its 1/sqrt(n_embd)) and `init='torch'`.

This module knows nothing about sampling; `gpt.engine` owns generation and
the KV cache, which the attention layers only read and write.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError
from .validate import choice, flag, number, whole

# Sanity ceilings on a config's sizes, whatever the server allows (vocab: every Unicode character fits).
CONFIG_CEILINGS = dict(vocab_size=2**21, block_size=2**20, n_layer=1024, n_head=1024, n_embd=2**16)


ACTIVATIONS = ("gelu", "gelu_tanh", "relu2", "relu")


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64  # longest context, in tokens
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm, as in GPT-2
    model_type: str = "gpt"  # 'gpt' or 'bigram'
    pos_emb: str = "learned"  # 'learned' (classic) or 'rope' (rotary)
    activation: str = "gelu"  # 'gelu' (classic, exact), 'gelu_tanh' (GPT-2's own), 'relu2' (ReLU squared), 'relu'
    qk_norm: bool = False
    tie_weights: bool = True
    causal: bool = True  # False: no mask, an encoder block (it cheats; see docs)
    # the lecture's ladder: the defaults are the full GPT, each switch takes one piece away
    ffn: str = "mlp"  # 'mlp' (4x wide, projected back), 'linear' (Linear(C, C) + activation), 'none'
    residual: bool = True  # x + f(x) around attention and feed-forward; False: x = f(x)
    attn_proj: bool = True  # the attention's output projection (c_proj)
    layernorm: bool = True  # ln_1, ln_2 and ln_f; False: identities
    attn_scale: str = "head"  # 'head': 1/sqrt(head_size); 'embd': the video's 1/sqrt(n_embd)
    init: str = "gpt2"  # 'gpt2': N(0, 0.02), residual projections by depth; 'torch': PyTorch's defaults
    # which norm ln_1, ln_2 and ln_f are: 'layer' (LayerNorm: subtract the mean, divide by the spread, a learned
    # gain) or 'rms' (nanochat's: divide by the root mean square, nothing learned); checkpoints older than this
    # switch are 'layer' without the embedding's norm, as they were trained
    norm: str = "layer"
    embed_norm: bool = False  # one more norm right after the embedding, before the first block (nanochat)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Types and ranges, each refusal a sentence naming the field. The ceilings are sanity, not
        a server's limits (those are `gpt.limits`): no one trains 2,000 layers or a 2M-token context."""
        for name, hi in CONFIG_CEILINGS.items():
            setattr(self, name, whole(getattr(self, name), name, 1, hi))
        self.dropout = number(self.dropout, "dropout", 0.0, 1.0, high_open=True)
        for name in ("bias", "qk_norm", "tie_weights", "causal", "residual", "attn_proj", "layernorm", "embed_norm"):
            flag(getattr(self, name), name)
        choice(self.model_type, "model_type", ("gpt", "bigram"))
        if self.model_type == "gpt" and self.n_embd % self.n_head != 0:
            raise ConfigError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) so each head gets "
                f"n_embd / n_head dimensions; try n_embd={self.n_head * max(1, round(self.n_embd / self.n_head))}."
            )
        choice(self.pos_emb, "pos_emb", ("learned", "rope"))
        if self.pos_emb == "rope" and (self.n_embd // self.n_head) % 2:
            raise ConfigError(f"Rotary embeddings need an even head size; n_embd / n_head = {self.n_embd // self.n_head}.")
        choice(self.activation, "activation", ACTIVATIONS)
        choice(self.ffn, "ffn", ("mlp", "linear", "none"))
        choice(self.attn_scale, "attn_scale", ("head", "embd"))
        choice(self.init, "init", ("gpt2", "torch"))
        choice(self.norm, "norm", ("layer", "rms"))

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        if not isinstance(d, dict):
            raise ConfigError(f"The model settings must be a JSON object, got {type(d).__name__}.")
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"Unknown model settings: {', '.join(sorted(map(str, unknown)))[:200]}.")
        return cls(**d)


# Model shapes. 'small' is nanoGPT's CPU config, 'medium' its shakespeare_char GPU config.
MODEL_PRESETS: dict[str, dict] = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=32, block_size=32),
    "small": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
    "medium": dict(n_layer=6, n_head=6, n_embd=384, block_size=256),
}

# Architecture switches. 'classic' is the lecture's GPT.
# Each names every switch it sets, the norms too: --arch classic over a modern preset is the classic block whole.
ARCHITECTURES: dict[str, dict] = {
    "classic": dict(pos_emb="learned", activation="gelu", qk_norm=False, tie_weights=True, bias=True,
                    norm="layer", embed_norm=False),
    "modern": dict(pos_emb="rope", activation="relu2", qk_norm=True, tie_weights=False, bias=False),
}


def rotary_tables(head_size: int, length: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each (length, head_size), for rotary embeddings.

    Channel i is paired with channel i + head_size/2 (the half-split layout).
    Each pair's angle appears twice, and sin carries the sign the rotation needs
    on the first half, so `apply_rotary` is two multiplies and an add.
    """
    inv_freq = 1.0 / (base ** (torch.arange(0, head_size, 2).float() / head_size))
    angles = torch.outer(torch.arange(length).float(), inv_freq)  # (length, hs/2)
    return torch.cat((angles.cos(), angles.cos()), dim=-1), torch.cat((-angles.sin(), angles.sin()), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each channel pair (x1, x2) by its position's angle: (x1 cos - x2 sin, x2 cos + x1 sin).

    x: (..., hs) with positions on some axis; cos, sin: (hs) per position from
    `rotary_tables`, shaped to broadcast against x (e.g. (T, 1, hs) for (B, T, nh, hs)).
    """
    if cos.dtype != x.dtype:  # under autocast; otherwise no call at all (sampling pays per call)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + x.roll(x.size(-1) // 2, dims=-1) * sin  # the roll is (x2, x1): half the calls of chunk + cat


def dropout_if_training(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout, skipped outright in evaluation or when p is 0.

    A function rather than nn.Dropout modules: in token-by-token sampling each
    module call costs microseconds, and a small model's step is a few hundred.
    """
    return F.dropout(x, p, training=True) if training and p > 0 else x


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention; each position attends to itself and the past only."""

    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        # without it (the lecture's first heads) the heads' outputs, side by side, are the output
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias) if config.attn_proj else nn.Identity()
        width = config.n_embd if config.attn_scale == "embd" else config.head_size
        self.scale = 1.0 / math.sqrt(width)  # keeps the affinities at unit variance, so softmax stays soft

    def qkv(self, x: torch.Tensor, rope: tuple | None = None) -> tuple[torch.Tensor, ...]:
        """Queries, keys and values per head, each (B, nh, T, hs); `rope` is GPT.rotary's tables for x's positions."""
        B, T, C = x.shape
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head)  # (B, T, q|k|v, nh, hs)
        qk, v = qkv[:, :, :2], qkv[:, :, 2]  # queries and keys get the same treatment, in one go
        if self.config.qk_norm:
            # eps given: left out, it is the dtype's epsilon, 0.008 in bf16, and training under
            # autocast would normalise differently from sampling in float32
            qk = F.rms_norm(qk, (qk.size(-1),), eps=RMS_EPS)
        if rope is not None:
            qk = apply_rotary(qk, *rope)
        q, k = qk.unbind(2)  # 2 x (B, T, nh, hs)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, nh, T, hs)

    def forward(self, x: torch.Tensor, rope: tuple | None = None, kv_cache=None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x, rope)
        dropout = self.config.dropout if self.training else 0.0
        if kv_cache is not None and kv_cache.attend is not None:  # a compiled decode step's own (gpt.compiled_step)
            y = kv_cache.attend(self.layer_idx, q, k, v, self.scale)
        else:
            mask = None
            if kv_cache is not None:  # write this step's keys/values, attend over everything so far
                k, v = kv_cache.update(self.layer_idx, k, v)  # (B, nh, pos0+T, hs), or every slot of a row cache
                mask = kv_cache.attn_mask  # None, or rows of different lengths: (B, 1, T, slots), -inf where unfilled
            if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
                y = self._attend_written_out(q, k, v, T, dropout, mask)
            else:
                y = self._attend(q, k, v, T, dropout, mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return dropout_if_training(self.c_proj(y), dropout, self.training)

    def _attend_written_out(self, q, k, v, T: int, dropout: float, mask=None) -> torch.Tensor:
        """The lecture's attention, step by step, for CPU autocast: PyTorch's fused kernel is slow
        in bf16 there (its backward ~3x float32's). The matmuls run in bf16, the softmax in float32."""
        att = (q @ k.transpose(-2, -1)) * self.scale  # (B, nh, T, Tk) affinities
        if mask is not None:  # a row cache's own mask (each row its own length)
            att = att + mask
        elif self.config.causal and T > 1:  # query i sees keys up to its own position (Tk - T + i)
            mask = torch.ones(T, k.size(2), dtype=torch.bool, device=q.device).tril(diagonal=k.size(2) - T)
            att = att.masked_fill(~mask, float("-inf"))
        att = dropout_if_training(F.softmax(att.float(), dim=-1), dropout, self.training)
        return att @ v  # (B, nh, T, hs)

    def _attend(self, q, k, v, T: int, dropout: float, mask=None) -> torch.Tensor:
        """softmax(q k^T * scale) v with the causal mask: (B, nh, T, hs) -> (B, nh, T, hs)."""
        if mask is not None:  # a row cache: written out as batched products, each (row, head) on its own
            # (the fused kernel's result for a row can depend on how many rows share the call, on 2 threads)
            y = self._attend_rows(q, k, v, mask, dropout)
        elif not self.config.causal or T == 1:
            # one new query may look at every cached key; no mask needed
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=self.scale)
        elif k.size(2) == T:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True, scale=self.scale)
        else:  # several new queries after a cached prefix: query i sees keys up to pos0 + i
            mask = torch.ones(T, k.size(2), dtype=torch.bool, device=q.device).tril(diagonal=k.size(2) - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=self.scale)
        return y


    def _attend_rows(self, q, k, v, mask, dropout: float) -> torch.Tensor:
        """softmax(q k^T * scale + mask) v for a row cache: q (B, nh, T, hs), k and v (B, nh, slots, hs),
        mask (B, 1, T, slots). One bmm per (row, head) pair, so each pair's numbers are its own."""
        B, nh, T, hs = q.shape
        S = k.size(2)
        att = torch.baddbmm(mask.expand(B, nh, T, S).reshape(B * nh, T, S), q.reshape(B * nh, T, hs),
                            k.reshape(B * nh, S, hs).transpose(1, 2), alpha=self.scale)  # (B*nh, T, slots)
        att = dropout_if_training(att.softmax(dim=-1), dropout, self.training)
        return torch.bmm(att, v.reshape(B * nh, S, hs)).view(B, nh, T, hs)


class MLP(nn.Module):
    """Per-position feed-forward: widen 4x, nonlinearity, project back.

    ffn='linear' is the lecture's first feed-forward: one Linear(C, C) and the
    nonlinearity, no widening and no projection.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        wide = config.ffn == "mlp"
        hidden = 4 * config.n_embd if wide else config.n_embd
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias) if wide else None
        self.dropout = config.dropout
        self.activation = config.activation
        self.gelu = "tanh" if config.activation == "gelu_tanh" else "none"  # GPT-2 was trained with tanh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)  # (B, T, 4C), or (B, T, C) for ffn='linear'
        if self.activation == "relu2":
            h = F.relu(h).square()
        elif self.activation == "relu":
            h = F.relu(h)
        else:
            h = gelu(h, self.gelu)
        if self.c_proj is None:
            return h
        return dropout_if_training(self.c_proj(h), self.dropout, self.training)  # (B, T, C)


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """GELU, x * Phi(x) with Phi the standard normal CDF: F.gelu, or the same function as
    `x * ndtr(x)` where no gradient is needed (sampling, evaluation) on a CPU.

    Why: on a CPU, F.gelu hands float32 tensors to oneDNN, whose GELU costs ~20-40 us on
    one 512-wide row (token-by-token sampling) against ~2 us for two plain PyTorch
    kernels; the two agree to ~1e-7. Training keeps F.gelu (one fused backward), and so
    does the tanh approximation (GPT-2's), which oneDNN does not take.
    """
    if approximate == "none" and x.device.type == "cpu" and not torch.is_grad_enabled() and x.dtype == torch.float32:
        return x * torch.special.ndtr(x)
    return F.gelu(x, approximate=approximate)


RMS_EPS = 1e-6  # the QK-norm's and the 'rms' norm's: one number, as nanochat (and transformers' port of it) has


def layer_norm(config: GPTConfig) -> nn.Module:
    """The norm `config.norm` names, or with layernorm=False (the lecture before it adds them) an identity.

    'layer': nn.LayerNorm, (x - mean) / std times a learned gain (plus a bias with bias=True).
    'rms': x / rms(x) with nothing learned, nanochat's norm; it skips the mean, so it is one reduction
    instead of two, and a model has 2 L + 1 fewer vectors to learn.
    """
    if not config.layernorm:
        return nn.Identity()
    if config.norm == "rms":
        return nn.RMSNorm(config.n_embd, eps=RMS_EPS, elementwise_affine=False)
    return nn.LayerNorm(config.n_embd, bias=config.bias)


class Block(nn.Module):
    """Communication (attention) then computation (MLP), each around a residual."""

    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.ln_1 = layer_norm(config)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = layer_norm(config) if config.ffn != "none" else nn.Identity()
        self.mlp = MLP(config) if config.ffn != "none" else None
        self.residual = config.residual

    def forward(self, x: torch.Tensor, rope=None, kv_cache=None) -> torch.Tensor:
        a = self.attn(self.ln_1(x), rope, kv_cache)
        x = x + a if self.residual else a  # without the residual, each layer replaces x
        if self.mlp is not None:
            m = self.mlp(self.ln_2(x))
            x = x + m if self.residual else m
        return x


class GPT(nn.Module):
    supports_kv_cache = True

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
                ln_f=layer_norm(config),
            )
        )
        if config.embed_norm:
            self.transformer["ln_emb"] = layer_norm(config)  # normalises the embedding before the first block
        if config.pos_emb == "learned":
            self.transformer["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        else:
            cos, sin = rotary_tables(config.head_size, config.block_size)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight  # one matrix reads and writes tokens
        if config.init == "gpt2":  # 'torch' keeps PyTorch's defaults, as the video did
            self.apply(self._init_weights)
            for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
                if name.endswith("c_proj.weight"):
                    torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def rotary(self, pos0: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotary cos and sin for positions pos0..pos0+T-1, each (T, 1, 1, hs): they broadcast over
        the (B, T, q|k, nh, hs) queries and keys in CausalSelfAttention.qkv."""
        return self.rotary_at(slice(pos0, pos0 + T))

    def rotary_at(self, where) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotary cos and sin at `where`: a slice of positions, (T, 1, 1, hs) each, or a (B, T) tensor
        of each row's own positions (a row cache), (B, T, 1, 1, hs) each."""
        return self.rope_cos[where][..., None, None, :], self.rope_sin[where][..., None, None, :]

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, kv_cache=None, last_only: bool = False):
        """idx (B, T) token ids -> logits (B, T, vocab), and the loss if targets are given."""
        B, T = idx.shape
        # positions: a slice shared by every row, or a row cache's (B, T) tensor, each row at its own place
        where = kv_cache.positions(T) if kv_cache is not None else slice(0, T)
        if isinstance(where, slice) and where.stop > self.config.block_size:
            raise ValueError(f"Context of {where.stop} tokens exceeds block_size {self.config.block_size}.")
        x = self.transformer.wte(idx)  # (B, T, C)
        rope = None
        if self.config.pos_emb == "learned":
            x = x + self.transformer.wpe.weight[where]  # (T, C) rows of positions, broadcast over B; or (B, T, C)
        else:
            rope = self.rotary_at(where)  # looked up once here, used by every layer
        if self.config.embed_norm:
            x = self.transformer.ln_emb(x)
        x = dropout_if_training(x, self.config.dropout, self.training)
        for block in self.transformer.h:
            x = block(x, rope, kv_cache)  # (B, T, C)
        if kv_cache is not None:
            kv_cache.advance(T)
        x = self.transformer.ln_f(x)
        if targets is None and last_only:
            return self.lm_head(x[:, -1:, :]), None  # (B, 1, vocab): sampling needs the last position only
        logits = self.lm_head(x)  # (B, T, vocab)
        loss = None
        if targets is not None:
            # a target of -1 counts no loss: a fine-tuning batch masks everything but the assistant's tokens
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss


class BigramLanguageModel(nn.Module):
    """The lecture's baseline: the next token depends on the current token only.

    A (vocab, vocab) table whose row i holds the logits of what follows token i.
    """

    supports_kv_cache = False

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding_table = nn.Embedding(config.vocab_size, config.vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, kv_cache=None, last_only: bool = False):
        if last_only and targets is None:
            idx = idx[:, -1:]  # only the last token matters to a bigram
        logits = self.token_embedding_table(idx)  # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss


def build_model(config: GPTConfig) -> nn.Module:
    return BigramLanguageModel(config) if config.model_type == "bigram" else GPT(config)


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameters per component, each shared tensor counted once.

    Keys: token_embedding, position_embedding, attention, mlp, layernorm,
    lm_head (0 when tied to the token embedding), total. nanoGPT's reported
    count leaves out the position embedding; ours is `total`, all included.
    """
    parts = dict(token_embedding=0, position_embedding=0, attention=0, mlp=0, layernorm=0, lm_head=0)
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if "wte" in name or "token_embedding_table" in name:
            key = "token_embedding"
        elif "wpe" in name:
            key = "position_embedding"
        elif ".attn." in name:
            key = "attention"
        elif ".mlp." in name:
            key = "mlp"
        elif "ln_" in name:
            key = "layernorm"
        elif "lm_head" in name:
            key = "lm_head"
        else:  # pragma: no cover - every parameter above has a home
            key = "other"
            parts.setdefault(key, 0)
        parts[key] += p.numel()
    parts["total"] = sum(parts.values())
    return parts


def count_parameters(config: GPTConfig) -> dict[str, int]:
    """parameter_breakdown(build_model(config)), by arithmetic: nothing is built, so a limit on
    10**30 layers is checked in microseconds. tests/test_model.py checks it equals the real count."""
    V, T, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    parts = dict(token_embedding=0, position_embedding=0, attention=0, mlp=0, layernorm=0, lm_head=0)
    if config.model_type == "bigram":
        parts["token_embedding"] = V * V
    else:
        b = 1 if config.bias else 0
        parts["token_embedding"] = V * C
        parts["position_embedding"] = T * C if config.pos_emb == "learned" else 0
        proj = C * C + b * C if config.attn_proj else 0
        parts["attention"] = L * (C * 3 * C + b * 3 * C + proj)  # c_attn, c_proj
        mlp = {"mlp": C * 4 * C + b * 4 * C + 4 * C * C + b * C, "linear": C * C + b * C, "none": 0}[config.ffn]
        parts["mlp"] = L * mlp  # c_fc, c_proj ('linear': c_fc only)
        norms = L * (2 if config.ffn != "none" else 1) + 1 + config.embed_norm if config.layernorm else 0
        gain = C + b * C if config.norm == "layer" else 0  # 'rms' learns nothing
        parts["layernorm"] = norms * gain  # ln_1, ln_2 (with an MLP) per block, ln_f, ln_emb
        parts["lm_head"] = 0 if config.tie_weights else V * C
    parts["total"] = sum(parts.values())
    return parts


def flops_per_token(config: GPTConfig, n_params: int) -> float:
    """Training FLOPs per token (forward + backward), PaLM appendix B: 6N + 12 L C T."""
    if config.model_type == "bigram":
        return 6.0 * n_params
    return 6.0 * n_params + 12.0 * config.n_layer * config.n_embd * config.block_size
