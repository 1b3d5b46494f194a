"""Our rotary GPT as transformers' NanoChat (`NanoChatForCausalLM`), and back: the config and the weights' names.

NanoChat's decoder is our model with `pos_emb='rope'`, `qk_norm=True`,
`norm='rms'`, `embed_norm=True` and no biases: RMSNorm without a gain after
the embedding, before attention, before the MLP and at the end; queries and
keys RMS-normalised per head; a plain fc1 -> activation -> fc2 MLP; an LM
head tied or not. Three differences, none of them in the function:
- q, k and v are three matrices (q_proj, k_proj, v_proj), ours one (c_attn);
- its rotation turns each channel pair the other way (`rotate_half` is
  (x2, -x1), nanochat's own sign), so each head's query and key channels are
  stored with their two halves swapped: that rotation of the swapped vector
  is ours of the original, swapped back, and a dot product of two vectors
  permuted alike is unchanged. Measured: logits equal to ~1e-6;
- it rotates, then normalises; we normalise, then rotate. A rotation keeps
  the root mean square, so the two agree (~5e-7 on unit-scale queries).

Its config's `final_logit_softcapping` (15 in nanochat's own models) is
written as null: our logits are not capped.
"""

from __future__ import annotations

import torch

from ..errors import ConvertError
from ..model import RMS_EPS, GPTConfig
from ..tokenizer import Tokenizer
from .layout import WeightReader

ROPE_THETA = 10000.0  # gpt.model.rotary_tables' base
ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu", "relu2": "relu2"}


def nanochat_config(config: GPTConfig, vocab_size: int, eos: int | None, tokenizer: Tokenizer) -> dict:
    """config.json for `NanoChatForCausalLM` (nanochat's own defaults for ids and the softcap are overridden)."""
    return {
        "architectures": ["NanoChatForCausalLM"], "model_type": "nanochat", "vocab_size": vocab_size,
        "hidden_size": config.n_embd, "intermediate_size": 4 * config.n_embd, "num_hidden_layers": config.n_layer,
        "num_attention_heads": config.n_head, "num_key_value_heads": config.n_head,
        "max_position_embeddings": config.block_size, "hidden_act": ACTIVATIONS[config.activation],
        "attention_dropout": config.dropout, "rms_norm_eps": RMS_EPS, "initializer_range": 0.02,
        "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA}, "use_cache": True,
        "final_logit_softcapping": None, "attention_bias": False, "tie_word_embeddings": config.tie_weights,
        "bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos, "dtype": "float32",
        "gpt_tokenizer": tokenizer.spec(),  # our own reading of tokenizer.json, exact on import
    }


def attention_problems(data: dict, C: int, heads: int) -> list[str]:
    """What a rotary decoder's config.json (NanoChat, Qwen3, Llama) of width C sets that our attention does not
    compute."""
    rope = data.get("rope_parameters") or {"rope_type": "default", "rope_theta": data.get("rope_theta", ROPE_THETA)}
    problems = []
    if int(data.get("num_key_value_heads") or heads) != heads:
        problems.append("grouped keys and values (num_key_value_heads differs from num_attention_heads)")
    if not isinstance(rope, dict) or rope.get("rope_type", "default") != "default" or float(rope.get("rope_theta", 0)) != ROPE_THETA:
        problems.append(f"rotary settings {rope!r} (ours: the default kind with theta {ROPE_THETA:g})")
    if data.get("head_dim") not in (None, C // max(heads, 1)):
        problems.append(f"head_dim {data.get('head_dim')} (ours is hidden_size / num_attention_heads)")
    return problems


def refuse_config(problems: list[str]) -> None:
    if problems:
        raise ConvertError("config.json's " + "; ".join(problems) + " cannot be computed by this project's model, "
                           "so the folder does not import.")


def config_from_nanochat(data: dict) -> GPTConfig:
    """Our GPTConfig for a NanoChatConfig dict, refusing what our blocks do not compute."""
    C, heads = int(data.get("hidden_size", 768)), int(data.get("num_attention_heads", 6))
    act = data.get("hidden_act", "relu2")
    back = {v: k for k, v in ACTIVATIONS.items()}
    problems = []
    if act not in back:
        problems.append(f"hidden_act {act!r} (ours: {', '.join(sorted(back))})")
    if int(data.get("intermediate_size", 4 * C)) != 4 * C:
        problems.append(f"intermediate_size {data.get('intermediate_size')} (ours is 4 x hidden_size, {4 * C})")
    if data.get("final_logit_softcapping") is not None:
        problems.append(f"a logit softcap of {data['final_logit_softcapping']}")
    if data.get("attention_bias"):
        problems.append("attention biases")
    if abs(float(data.get("rms_norm_eps", RMS_EPS)) - RMS_EPS) > 1e-12:
        problems.append(f"rms_norm_eps {data.get('rms_norm_eps')} (ours is {RMS_EPS:g})")
    refuse_config(problems + attention_problems(data, C, heads))
    return GPTConfig(vocab_size=int(data.get("vocab_size", 50304)), block_size=int(data.get("max_position_embeddings", 2048)),
                     n_layer=int(data.get("num_hidden_layers", 12)), n_head=heads, n_embd=C, dropout=0.0, bias=False,
                     pos_emb="rope", activation=back[act], qk_norm=True, norm="rms", embed_norm=True,
                     tie_weights=bool(data.get("tie_word_embeddings", False)))


def _swap_halves(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Rows (n_head * hs, ...) with each head's two halves swapped (its own inverse); see the module docstring."""
    hs = w.shape[0] // n_head
    return w.reshape(n_head, 2, hs // 2, *w.shape[1:]).flip(1).reshape(w.shape)


def ours_to_nanochat(state: dict[str, torch.Tensor], config: GPTConfig) -> dict[str, torch.Tensor]:
    """Our state dict (every part present: gpt.convert.layout.full_gpt_weights) -> NanoChat's names."""
    C, H = config.n_embd, config.n_head
    out = {"model.embed_tokens.weight": state["transformer.wte.weight"]}
    if not config.tie_weights:
        out["lm_head.weight"] = state["lm_head.weight"]
    for i in range(config.n_layer):
        ours, theirs = f"transformer.h.{i}.", f"model.layers.{i}."
        q, k, v = state[ours + "attn.c_attn.weight"].split(C)  # each (C, C)
        out[theirs + "self_attn.q_proj.weight"] = _swap_halves(q, H)
        out[theirs + "self_attn.k_proj.weight"] = _swap_halves(k, H)
        out[theirs + "self_attn.v_proj.weight"] = v
        out[theirs + "self_attn.o_proj.weight"] = state[ours + "attn.c_proj.weight"]
        out[theirs + "mlp.fc1.weight"] = state[ours + "mlp.c_fc.weight"]
        out[theirs + "mlp.fc2.weight"] = state[ours + "mlp.c_proj.weight"]
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in out.items()}


def nanochat_to_ours(state: dict[str, torch.Tensor], config: GPTConfig, source: str) -> dict[str, torch.Tensor]:
    """NanoChat's names -> ours (the inverse of ours_to_nanochat), with a sentence for a missing weight."""
    H, weights = config.n_head, WeightReader(state, source, "a NanoChat model")
    get = weights.get

    out = {"transformer.wte.weight": get("model.embed_tokens.weight")}
    out["lm_head.weight"] = get("model.embed_tokens.weight") if config.tie_weights else get("lm_head.weight")
    for i in range(config.n_layer):
        ours, theirs = f"transformer.h.{i}.", f"model.layers.{i}.self_attn."
        out[ours + "attn.c_attn.weight"] = torch.cat((_swap_halves(get(theirs + "q_proj.weight"), H),
                                                      _swap_halves(get(theirs + "k_proj.weight"), H),
                                                      get(theirs + "v_proj.weight")))
        out[ours + "attn.c_proj.weight"] = get(theirs + "o_proj.weight")
        out[ours + "mlp.c_fc.weight"] = get(f"model.layers.{i}.mlp.fc1.weight")
        out[ours + "mlp.c_proj.weight"] = get(f"model.layers.{i}.mlp.fc2.weight")
    weights.check_all_read()
    return {k: v.contiguous() for k, v in out.items()}
