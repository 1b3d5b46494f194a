"""Our weights under other projects' names: GPT-2 in transformers, and nanoGPT.

The classic GPT is GPT-2 weight for weight. Three differences of naming:
- transformers' GPT-2 keeps its linear layers as `Conv1D`, whose weight is
  (in, out): the transpose of `nn.Linear`'s (out, in);
- nanoGPT's names are ours, but a tied `lm_head.weight` is stored (its strict
  load needs it) and `torch.compile` / DDP add `_orig_mod.` / `module.`;
- old checkpoints of both carry the causal mask as a buffer (`attn.bias`,
  `attn.masked_bias`), which is not a weight.

`check_gpt2_shape` says in one sentence what GPT-2's architecture cannot
express, for export to either format.
"""

from __future__ import annotations

import torch

from ..errors import ConvertError
from ..model import GPTConfig

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")  # not ".c_attn.bias": that one is a weight
WRAPPERS = ("_orig_mod.", "module.")  # torch.compile, DistributedDataParallel


def check_gpt2_shape(config: GPTConfig, target: str, *, allow_untied: bool = False, allow_tanh: bool = True) -> None:
    """Raise ConvertError naming every part of `config` that GPT-2's blocks (in `target`) cannot hold."""
    if config.model_type == "bigram":
        raise ConvertError(f"A bigram model is a lookup table, not a GPT-2; {target} cannot hold it. "
                           "Export a GPT run (model 'gpt', architecture 'classic').")
    missing = []
    if config.pos_emb != "learned":
        missing.append("rotary position embeddings (GPT-2 learns a position table)")
    if config.qk_norm:
        missing.append("QK-norm (GPT-2 has no normalisation of queries and keys)")
    if config.activation == "relu2" or (config.activation == "gelu_tanh" and not allow_tanh):
        missing.append(f"the {config.activation} activation ({target}'s MLP uses "
                       f"{'GELU' if allow_tanh else 'the exact GELU'})")
    if not config.tie_weights and not allow_untied:
        missing.append(f"an LM head untied from the token embedding ({target} ties them)")
    if not config.causal:
        missing.append("attention without the causal mask (GPT-2 always masks the future)")
    if missing:
        raise ConvertError(f"{target} cannot express this model's " + "; ".join(missing)
                           + ". Only the classic architecture converts: train with --arch classic.")


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
