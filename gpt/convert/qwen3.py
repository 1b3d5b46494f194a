"""Our modern GPT as transformers' Qwen3 (`Qwen3ForCausalLM`), or Llama without the QK-norm, and back.

The modern block (the default recipe) is rotary positions, queries and keys
RMS-normalised per head, a ReLU-squared MLP, pre-LayerNorm without biases and
an untied head. Qwen3's decoder is rotary positions, per-head QK RMSNorm, a
gated MLP `down(act(gate x) * up x)` and RMSNorm blocks; Llama's is the same
without the QK-norm. Three rewrites of the weights, none of the function:

- ReLU squared as a gated MLP: with act = relu and gate = up = our c_fc,
  relu(z) * z = relu(z)^2 (the file holds c_fc twice).
- LayerNorm as RMSNorm: LayerNorm(x) = RMSNorm(x - mean(x)), same gain and
  eps. Only norms read the residual stream, and each depends on x - mean(x)
  alone; so every write into the stream (the embedding's rows, the
  attention's and the MLP's output projections) is centred over its
  channels, the stream keeps mean zero, and each RMSNorm computes the
  LayerNorm it replaces (pre-LN and pre-RMSNorm transformers are equivalent
  this way: Jiang et al., NeurIPS 2023). A head tied to the embedding must
  not read the centred rows, so a tied LayerNorm model leaves untied: the
  file holds the centred embedding and the head's own copy of the rows.
- One epsilon: Qwen3's rms_norm_eps serves the block norms and the QK-norm,
  ours are 1e-5 (LayerNorm) and 1e-6 (QK-norm). Queries and keys stored s
  times larger, s = sqrt(1e-5 / 1e-6), then normalised with 1e-5, are ours
  normalised with 1e-6: s q / sqrt(s^2 m + 1e-5) = q / sqrt(m + 1e-6).

Qwen3 normalises, then rotates, as we do, and its `rotate_half` pairs channel
i with i + hs/2 with our sign, so no channel moves (NanoChat's does).
head_dim is written out (Qwen3's default is 128) and no window is set.

Importing reverses it for any Qwen3 or Llama folder our model can compute:
gate = up with act relu, QK-norm gains of 1, no biases, full heads. A
centred stream (ours, exported) comes back as LayerNorm; any other folder
whose norms use eps 1e-6 as RMSNorm with its gains folded into the linear
layer each norm feeds (the head untied if it must be).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConvertError
from ..model import RMS_EPS, GPTConfig
from ..tokenizer import Tokenizer
from .fit import LLAMA, QWEN3
from .layout import WeightReader
from .nanochat import ROPE_THETA, attention_problems, refuse_config

LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, which gpt.model.layer_norm keeps
CENTRED = 1e-5  # a write whose channels average within this of zero counts as centred


def block_eps(config: GPTConfig) -> float:
    return LAYER_NORM_EPS if config.norm == "layer" else RMS_EPS


def tied_in_transformers(config: GPTConfig) -> bool:
    """Whether the exported head stays tied: not where the embedding is stored centred (a LayerNorm model)."""
    return config.tie_weights and config.norm != "layer"


def qwen3_config(config: GPTConfig, vocab_size: int, eos: int | None, tokenizer: Tokenizer) -> dict:
    """config.json for `Qwen3ForCausalLM` (with QK-norm) or `LlamaForCausalLM` (without)."""
    qwen = config.qk_norm
    return {
        "architectures": ["Qwen3ForCausalLM" if qwen else "LlamaForCausalLM"], "model_type": "qwen3" if qwen else "llama",
        "vocab_size": vocab_size, "hidden_size": config.n_embd, "intermediate_size": 4 * config.n_embd,
        "num_hidden_layers": config.n_layer, "num_attention_heads": config.n_head,
        "num_key_value_heads": config.n_head, "head_dim": config.head_size, "hidden_act": "relu",
        "max_position_embeddings": config.block_size, "rms_norm_eps": block_eps(config),
        "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA}, "attention_bias": False,
        "mlp_bias": False, "attention_dropout": config.dropout, "use_sliding_window": False,
        "initializer_range": 0.02, "use_cache": True, "tie_word_embeddings": tied_in_transformers(config),
        "bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos, "dtype": "float32",
        "gpt_tokenizer": tokenizer.spec(),  # our own reading of tokenizer.json, exact on import
    }


def _centre(w: torch.Tensor, dim: int) -> torch.Tensor:
    return w - w.mean(dim=dim, keepdim=True)


def ours_to_qwen3(state: dict[str, torch.Tensor], config: GPTConfig) -> dict[str, torch.Tensor]:
    """Our state dict (every part present: gpt.convert.layout.full_gpt_weights) -> Qwen3's or Llama's names."""
    C, centre = config.n_embd, config.norm == "layer"
    s = math.sqrt(block_eps(config) / RMS_EPS)  # the QK-norm's epsilon moved into the queries and keys (above)
    norm = (lambda name: state[name + ".weight"]) if centre else (lambda name: torch.ones(C))  # 'rms': no gain
    wte = state["transformer.wte.weight"]
    out = {"model.embed_tokens.weight": _centre(wte, 1) if centre else wte, "model.norm.weight": norm("transformer.ln_f")}
    if not tied_in_transformers(config):
        out["lm_head.weight"] = state["transformer.wte.weight" if config.tie_weights else "lm_head.weight"]
    for i in range(config.n_layer):
        ours, theirs = f"transformer.h.{i}.", f"model.layers.{i}."
        q, k, v = state[ours + "attn.c_attn.weight"].split(C)  # each (C, C)
        o, fc, proj = (state[ours + n] for n in ("attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"))
        out.update({
            theirs + "input_layernorm.weight": norm(ours + "ln_1"),
            theirs + "post_attention_layernorm.weight": norm(ours + "ln_2"),
            theirs + "self_attn.q_proj.weight": q * s if config.qk_norm else q,
            theirs + "self_attn.k_proj.weight": k * s if config.qk_norm else k,
            theirs + "self_attn.v_proj.weight": v,
            theirs + "self_attn.o_proj.weight": _centre(o, 0) if centre else o,  # rows are output channels
            theirs + "mlp.gate_proj.weight": fc,
            theirs + "mlp.up_proj.weight": fc.clone(),  # a file holds each tensor once: a copy, not a view
            theirs + "mlp.down_proj.weight": _centre(proj, 0) if centre else proj,
        })
        if config.qk_norm:
            out[theirs + "self_attn.q_norm.weight"] = torch.ones(config.head_size)
            out[theirs + "self_attn.k_norm.weight"] = torch.ones(config.head_size)
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in out.items()}


def config_from_qwen3(data: dict) -> GPTConfig:
    """Our GPTConfig for a Qwen3Config or LlamaConfig dict, before its weights are read (they decide the norm:
    `qwen3_to_ours` sets it), refusing what our blocks do not compute."""
    C, heads = int(data.get("hidden_size", 4096)), int(data.get("num_attention_heads", 32))
    problems = []
    if data.get("hidden_act") != "relu":
        problems.append(f"hidden_act {data.get('hidden_act')!r} (ours is ReLU squared: a gated MLP with 'relu' "
                        "and equal gate and up weights)")
    if int(data.get("intermediate_size", 0)) != 4 * C:
        problems.append(f"intermediate_size {data.get('intermediate_size')} (ours is 4 x hidden_size, {4 * C})")
    if data.get("attention_bias") or data.get("mlp_bias"):
        problems.append("biases")
    if data.get("use_sliding_window") or any(t != "full_attention" for t in data.get("layer_types") or []):
        problems.append("a sliding attention window")
    if not isinstance(data.get("tie_word_embeddings", False), bool):
        problems.append(f"tie_word_embeddings {data['tie_word_embeddings']!r} (true or false)")
    eps = float(data.get("rms_norm_eps", 1e-6))
    if eps not in (LAYER_NORM_EPS, RMS_EPS):
        problems.append(f"rms_norm_eps {eps:g} (ours are {LAYER_NORM_EPS:g} and {RMS_EPS:g})")
    refuse_config(problems + attention_problems(data, C, heads))
    return GPTConfig(vocab_size=int(data.get("vocab_size", 32000)), block_size=int(data.get("max_position_embeddings", 2048)),
                     n_layer=int(data.get("num_hidden_layers", 32)), n_head=heads, n_embd=C, dropout=0.0, bias=False,
                     pos_emb="rope", activation="relu2", qk_norm=data.get("model_type") == "qwen3",
                     norm="layer" if eps == LAYER_NORM_EPS else "rms", embed_norm=False,
                     tie_weights=bool(data.get("tie_word_embeddings", False)))


def qwen3_to_ours(state: dict[str, torch.Tensor], config: GPTConfig, source: str) -> dict[str, torch.Tensor]:
    """Qwen3's or Llama's names -> ours (the inverse of ours_to_qwen3). `config.norm` comes in as the eps says
    ('layer' for 1e-5) and must find a centred stream; an 'rms' config gets the norms' gains folded in and may
    leave untied (config.tie_weights is set False then). A sentence for what does not fit."""
    weights = WeightReader(state, source, f"a {QWEN3 if config.qk_norm else LLAMA} model")
    get = weights.get

    def refuse(what: str):
        raise ConvertError(f"{source}: {what}, which this project's model cannot compute, so the folder does not import.")

    layer = config.norm == "layer"
    s = math.sqrt(block_eps(config) / RMS_EPS)
    wte = get("model.embed_tokens.weight")
    writes = [wte.mean(1)]
    out = {"transformer.wte.weight": wte}
    final = get("model.norm.weight")
    head = wte if config.tie_weights else get("lm_head.weight")
    if config.tie_weights and "lm_head.weight" in state and not torch.equal(state["lm_head.weight"].float(), wte):
        refuse("config.json ties the head to the embedding but lm_head.weight differs from it")
    for i in range(config.n_layer):
        ours, theirs = f"transformer.h.{i}.", f"model.layers.{i}."
        gate, up = get(theirs + "mlp.gate_proj.weight"), get(theirs + "mlp.up_proj.weight")
        if not torch.equal(gate, up):
            refuse(f"layer {i}'s gate and up weights differ (a gated MLP; ours is ReLU squared, gate = up)")
        q, k = get(theirs + "self_attn.q_proj.weight"), get(theirs + "self_attn.k_proj.weight")
        if config.qk_norm:
            for n in ("q_norm", "k_norm"):
                if not torch.all(get(theirs + f"self_attn.{n}.weight") == 1):
                    refuse(f"layer {i}'s {n} has learned gains (ours normalises queries and keys without one)")
            q, k = q / s, k / s
        v = get(theirs + "self_attn.v_proj.weight")
        o, down = get(theirs + "self_attn.o_proj.weight"), get(theirs + "mlp.down_proj.weight")
        writes += [o.mean(0), down.mean(0)]
        g1, g2 = get(theirs + "input_layernorm.weight"), get(theirs + "post_attention_layernorm.weight")
        if layer:
            out[ours + "ln_1.weight"], out[ours + "ln_2.weight"] = g1, g2
        else:  # our RMSNorm has no gain: each one scales the columns of the layers it feeds
            q, k, v, gate = q * g1, k * g1, v * g1, gate * g2
        out[ours + "attn.c_attn.weight"] = torch.cat((q, k, v))
        out[ours + "attn.c_proj.weight"], out[ours + "mlp.c_fc.weight"], out[ours + "mlp.c_proj.weight"] = o, gate, down
    if layer:
        if max(w.abs().max().item() for w in writes) > CENTRED:
            refuse("its norms use eps 1e-5 on a residual stream whose mean is not zero (ours with that eps is "
                   "LayerNorm, which matches RMSNorm only there)")
        out["transformer.ln_f.weight"] = final
        out["lm_head.weight"] = head
    else:
        out["lm_head.weight"] = head * final
        config.tie_weights = config.tie_weights and bool(torch.all(final == 1))
    weights.check_all_read(optional=("lm_head.weight",))  # a tied head may be saved too
    return {k: v.contiguous() for k, v in out.items()}
