"""Our weights under other projects' names: GPT-2 in transformers, and nanoGPT.

The classic GPT is GPT-2 weight for weight. Three differences of naming:
- transformers' GPT-2 keeps its linear layers as `Conv1D`, whose weight is
  (in, out): the transpose of `nn.Linear`'s (out, in);
- nanoGPT's names are ours, but a tied `lm_head.weight` is stored (its strict
  load needs it) and `torch.compile` / DDP add `_orig_mod.` / `module.`;
- old checkpoints of both carry the causal mask as a buffer (`attn.bias`,
  `attn.masked_bias`), which is not a weight.

`full_gpt_weights` rewrites the lecture ladder's missing parts as parts that
change nothing (what may cross is decided in `gpt.convert.fit`).
"""

from __future__ import annotations

import torch

from ..errors import ConvertError
from ..model import GPTConfig

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")  # not ".c_attn.bias": that one is a weight
WRAPPERS = ("_orig_mod.", "module.")  # torch.compile, DistributedDataParallel


def full_gpt_weights(state: dict[str, torch.Tensor], config: GPTConfig) -> dict[str, torch.Tensor]:
    """`state` rewritten for `gpt.convert.fit.full_gpt(config)`: the same function with every part present.

    attn_proj=False: c_proj = I. ffn='linear': c_fc (C -> C) padded to 4C with zero rows, c_proj = [I 0]
    (every activation here maps 0 to 0). ffn='none': an MLP of zeros (its LayerNorm a plain one).
    attn_scale='embd': the query rows times sqrt(head_size / n_embd), so 1/sqrt(head_size) gives 1/sqrt(n_embd).
    """
    C, b, out = config.n_embd, config.bias, dict(state)

    def linear(name: str, weight: torch.Tensor) -> None:
        out[name + ".weight"] = weight
        if b:
            out.setdefault(name + ".bias", torch.zeros(weight.shape[0]))

    for i in range(config.n_layer):
        p = f"transformer.h.{i}."
        if not config.attn_proj:
            linear(p + "attn.c_proj", torch.eye(C))
        if config.attn_scale == "embd":
            factor = (config.head_size / C) ** 0.5
            for kind in ("weight", "bias") if b else ("weight",):
                qkv = out[f"{p}attn.c_attn.{kind}"].clone()  # (3C, ...): the queries are the first C rows
                qkv[:C] *= factor
                out[f"{p}attn.c_attn.{kind}"] = qkv
        if config.ffn == "linear":
            fc = torch.zeros(4 * C, C)
            fc[:C] = out[p + "mlp.c_fc.weight"]
            if b:
                out[p + "mlp.c_fc.bias"] = torch.cat((out[p + "mlp.c_fc.bias"], torch.zeros(3 * C)))
            linear(p + "mlp.c_fc", fc)
            linear(p + "mlp.c_proj", torch.eye(C, 4 * C))
        elif config.ffn == "none":
            linear(p + "mlp.c_fc", torch.zeros(4 * C, C))
            linear(p + "mlp.c_proj", torch.zeros(C, 4 * C))
            if config.layernorm and config.norm == "layer":
                out[p + "ln_2.weight"] = torch.ones(C)
                if b:
                    out[p + "ln_2.bias"] = torch.zeros(C)
    return out


def strip_wrappers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the `_orig_mod.` / `module.` prefixes (in any order) and mask buffers."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPERS:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        if not key.endswith(MASK_BUFFERS):
            out[key] = value
    return out


def ours_to_gpt2(state: dict[str, torch.Tensor], tied: bool) -> dict[str, torch.Tensor]:
    """Our state dict -> transformers' GPT2LMHeadModel names and Conv1D layout (tied head left out)."""
    out = {}
    for key, value in state.items():
        if key == "lm_head.weight" and tied:
            continue
        if key.endswith(CONV1D):
            value = value.t()  # Linear (out, in) -> Conv1D (in, out)
        out[key] = value.detach().to("cpu", torch.float32).contiguous()
    return out


def gpt2_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' GPT-2 names (with or without 'transformer.') -> ours; Conv1D weights transposed back."""
    out = {}
    for key, value in strip_wrappers(state).items():
        if key != "lm_head.weight" and not key.startswith("transformer."):
            key = "transformer." + key  # the hub's own gpt2 checkpoint stores the base model's names
        if key.endswith(CONV1D):
            value = value.t()
        out[key] = value.to(torch.float32).contiguous()
    return out


class WeightReader:
    """Reads another library's state dict by name: each missing weight, and each left unread, a sentence.

    `kind` names the architecture in those sentences ("a NanoChat model"). Call `get` for every weight
    the conversion uses, then `check_all_read`.
    """

    def __init__(self, state: dict[str, torch.Tensor], source: str, kind: str):
        self.state, self.source, self.kind, self.used = state, source, kind, set()

    def get(self, key: str) -> torch.Tensor:
        if key not in self.state:
            raise ConvertError(f"{self.source} has no weight '{key}'; it is not {self.kind} of this config.")
        self.used.add(key)
        return self.state[key].to(torch.float32)

    def check_all_read(self, optional: tuple[str, ...] = ()) -> None:
        extra = sorted(set(self.state) - self.used - set(optional))
        if extra:
            raise ConvertError(f"{self.source} holds weights {self.kind} of this config does not have "
                               f"({', '.join(extra[:3])}).")


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` into `model`, every name and shape checked, with a sentence for what does not fit."""
    expected = model.state_dict()
    tied = getattr(model.config, "tie_weights", False)
    state = dict(state)
    if tied and "lm_head.weight" in state and "transformer.wte.weight" in state:
        if not torch.equal(state["lm_head.weight"], state["transformer.wte.weight"]):
            raise ConvertError(f"{source}: lm_head.weight differs from the token embedding, but the model ties them.")
        del state["lm_head.weight"]
    missing = [k for k in expected if k not in state and not (tied and k == "lm_head.weight")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ConvertError(f"{source}: the weights are not a GPT-2 of this shape (missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}).")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ConvertError(f"{source}: weight '{key}' has shape {tuple(value.shape)}, but the settings imply "
                               f"{tuple(expected[key].shape)}.")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ConvertError(f"{source}: weight '{key}' holds NaN or infinite values; the file is damaged.")
    model.load_state_dict(state, strict=False)
