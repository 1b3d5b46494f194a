"""What each format can carry: a run's switches against GPT-2, NanoChat, Qwen3, Llama and nanoGPT, decided
before a file is written.

Five architectures outside this project compute some of our models exactly:
- GPT-2 (transformers' `GPT2LMHeadModel`): learned positions, pre-LayerNorm,
  residual blocks with the causal mask; it takes any of our activations
  (`ACT2FN` has gelu, gelu_new, relu and relu2), an untied head and, as
  zeros, missing biases;
- NanoChat (transformers' `NanoChatForCausalLM`): rotary positions, QK-norm,
  RMSNorm without a gain in every block and after the embedding, no biases;
- Qwen3 (`Qwen3ForCausalLM`): rotary positions, QK-norm, a ReLU-squared MLP
  (as its gated MLP with gate = up), LayerNorm or RMSNorm without biases, and
  no norm after the embedding: the modern recipe, the default
  (`gpt.convert.qwen3` says how); Llama (`LlamaForCausalLM`) is the same
  block without the QK-norm;
- nanoGPT's `model.py`: GPT-2 with the exact GELU and a tied head only.

Four of the lecture ladder's switches are the same function in another
form, so every format takes them: no attention projection is an identity
projection; `ffn='linear'` (Linear(C, C) and the nonlinearity) is a 4x MLP
whose extra hidden units are zero and whose projection is [I 0]; no
feed-forward is an MLP of zeros; and the video's 1/sqrt(n_embd) attention
scale is 1/sqrt(head_size) with the query weights times 1/sqrt(n_head)
(`gpt.convert.layout.full_gpt_weights` rewrites them). The rest of the
ladder (no residual connections, no LayerNorm), rotary positions for GPT-2,
LayerNorm for NanoChat, an activation other than ReLU squared for Qwen3, no
causal mask and the bigram table are refused, each part named, before
anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..chat.tokenizer import ChatTokenizer
from ..errors import ConvertError
from ..model import ARCHITECTURES, GPTConfig
from ..tokenizer import CharTokenizer, Tokenizer

GPT2, NANOCHAT, QWEN3, LLAMA = "GPT-2", "NanoChat", "Qwen3", "Llama"
BIGRAM = ("A bigram model is a lookup table, not a GPT, so neither transformers nor nanoGPT has a place for it; "
          "train a GPT (--model gpt) to export.")


Gap = tuple[str, str]  # (the part, as it reads after "this model's"; why the target lacks it)


def _common_gaps(config: GPTConfig, who: str) -> list[Gap]:
    """Parts no target has."""
    gaps = []
    if not config.residual:
        gaps.append(("lack of residual connections", f"{who} adds every block's output to its input"))
    if not config.layernorm:
        gaps.append(("lack of norms", f"{who} normalises before attention, before the MLP and at the end"))
    if not config.causal:
        gaps.append(("attention without the causal mask", f"{who} always hides the future"))
    return gaps


def gpt2_gaps(config: GPTConfig, who: str = GPT2) -> list[Gap]:
    """What GPT-2's blocks cannot express (`who` names the code that runs them: GPT-2 or nanoGPT)."""
    gaps = []
    if config.pos_emb != "learned":
        gaps.append(("rotary positions", f"{who} learns a table of positions"))
    if config.qk_norm:
        gaps.append(("QK-norm", f"{who} does not normalise queries and keys"))
    if config.layernorm and config.norm == "rms":
        gaps.append(("RMSNorm", f"{who}'s LayerNorm subtracts the mean and learns a gain"))
    if config.layernorm and config.embed_norm:
        gaps.append(("norm after the embedding", f"{who} has none"))
    return gaps + _common_gaps(config, who)


def nanogpt_gaps(config: GPTConfig) -> list[Gap]:
    """GPT-2's gaps, and nanoGPT's own: its MLP is the exact GELU and its head is tied."""
    gaps = gpt2_gaps(config, "nanoGPT")
    if config.activation != "gelu":
        gaps.append((f"{config.activation} activation", "nanoGPT's MLP is the exact GELU"))
    if not config.tie_weights:
        gaps.append(("untied LM head", "nanoGPT ties it to the token embedding"))
    return gaps


def nanochat_gaps(config: GPTConfig) -> list[Gap]:
    """What transformers' NanoChat blocks cannot express."""
    gaps = []
    if config.pos_emb != "rope":
        gaps.append(("learned table of positions", f"{NANOCHAT} uses rotary positions"))
    if not config.qk_norm:
        gaps.append(("lack of QK-norm", f"{NANOCHAT} normalises queries and keys"))
    if config.layernorm and config.norm != "rms":
        gaps.append(("LayerNorm", f"{NANOCHAT}'s norms are RMSNorm without a gain"))
    if config.layernorm and not config.embed_norm:
        gaps.append(("lack of a norm after the embedding", f"{NANOCHAT} normalises it"))
    if config.bias:
        gaps.append(("biases", f"{NANOCHAT}'s MLP has none"))
    if config.qk_norm and config.attn_scale != "head":
        gaps.append(("1/sqrt(n_embd) attention scale", f"{NANOCHAT} divides by sqrt(head size) after the QK-norm"))
    return gaps + _common_gaps(config, NANOCHAT)


def qwen3_gaps(config: GPTConfig) -> list[Gap]:
    """What transformers' Qwen3 (with the QK-norm) or Llama (without) cannot express."""
    who = QWEN3 if config.qk_norm else LLAMA
    gaps = []
    if config.pos_emb != "rope":
        gaps.append(("learned table of positions", f"{who} uses rotary positions"))
    if config.activation != "relu2":
        gaps.append((f"{config.activation} activation", f"{who}'s gated MLP computes ReLU squared (relu(z) times z) "
                                                        "and no other activation of ours"))
    if config.layernorm and config.embed_norm:
        gaps.append(("norm after the embedding", f"{who} has none"))
    if config.bias:
        gaps.append(("biases", f"{who}'s MLP and norms have none"))
    return gaps + _common_gaps(config, who)


def listed(parts: list[str], last: str = "or") -> str:
    """'a', 'a or b', 'a, b or c': a refusal's parts in one phrase."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" {last} " + parts[-1]


def _explained(gaps: list[Gap]) -> str:
    return listed([f"{part} ({why})" for part, why in gaps])


def _crossing(refused) -> list[str]:
    """The named architectures (--arch) whose runs `refused` lets through: what to train instead."""
    return [name for name, arch in ARCHITECTURES.items() if not refused(GPTConfig(**arch))]


def _advice(refused) -> str:
    names = _crossing(refused)
    return f"; a run trained with --arch {' or --arch '.join(names)} crosses" if names else ""


@dataclass(frozen=True)
class Verdict:
    """Whether a run crosses to one format, and as what or why not."""

    label: str  # 'transformers' or 'nanoGPT'
    carrier: str | None = None  # 'GPT-2', 'NanoChat', 'nanoGPT'; None when refused
    refusal: str | None = None  # the sentence, when refused
    near: str = ""  # who refuses: "transformers' GPT-2", "nanoGPT", ...
    parts: tuple[str, ...] = ()  # what it cannot express, short

    def refuse(self) -> None:
        if self.refusal:
            raise ConvertError(self.refusal)


def _refused(label: str, near: str, gaps: list[Gap], advice: str) -> Verdict:
    sentence = f"{near} cannot express this model's {_explained(gaps)}{advice}."
    return Verdict(label, refusal=sentence, near=near, parts=tuple(part for part, _ in gaps))


def transformers_verdict(config: GPTConfig) -> Verdict:
    """GPT-2, NanoChat, Qwen3 or Llama, the transformers architecture that computes this model; or, when none
    does, every part the nearest one lacks (GPT-2 for learned positions, else whichever lacks fewest)."""
    if config.model_type == "bigram":
        return Verdict("transformers", refusal=BIGRAM, parts=("bigram table",))
    found = {GPT2: gpt2_gaps(config), NANOCHAT: nanochat_gaps(config),
             QWEN3 if config.qk_norm else LLAMA: qwen3_gaps(config)}
    for carrier, gaps in found.items():
        if not gaps:
            return Verdict("transformers", carrier)
    rotary = [name for name in found if name != GPT2]
    near = GPT2 if config.pos_emb == "learned" else min(rotary, key=lambda name: len(found[name]))
    return _refused("transformers", f"transformers' {near}", found[near],
                    _advice(lambda c: gpt2_gaps(c) and nanochat_gaps(c) and qwen3_gaps(c)))


def nanogpt_verdict(config: GPTConfig, tokenizer: Tokenizer) -> Verdict:
    """nanoGPT, or what it cannot hold: architecture parts, then the tokenizer."""
    if config.model_type == "bigram":
        return Verdict("nanoGPT", refusal=BIGRAM, parts=("bigram table",))
    gaps = nanogpt_gaps(config)
    if gaps:
        return _refused("nanoGPT", "nanoGPT", gaps, _advice(nanogpt_gaps))
    if isinstance(tokenizer, ChatTokenizer):
        return Verdict("nanoGPT", near="nanoGPT", parts=("chat tokens",), refusal=(
            "nanoGPT's sample.py encodes a prompt character by character (or with GPT-2's tiktoken), so it could "
            f"never write this chat model's {', '.join(tokenizer.specials)} tokens. Export it to transformers "
            "instead (--to hf): its chat template writes them."))
    if not isinstance(tokenizer, CharTokenizer) and tokenizer.spec() != {"type": "gpt2", "version": 1, "kept_ids": None}:
        return Verdict("nanoGPT", near="nanoGPT", parts=(f"{tokenizer.name} tokenizer",), refusal=(
            f"nanoGPT knows two tokenizers, characters (meta.pkl) and GPT-2's full vocabulary; this run uses "
            f"{tokenizer.describe()}, so export it to transformers instead (--to hf)."))
    return Verdict("nanoGPT", "nanoGPT")


def transformers_architecture(config: GPTConfig) -> str:
    """'GPT-2', 'NanoChat', 'Qwen3' or 'Llama'; a ConvertError naming every missing part when neither computes this model."""
    verdict = transformers_verdict(config)
    verdict.refuse()
    return verdict.carrier


def check_nanogpt(config: GPTConfig, tokenizer: Tokenizer) -> None:
    nanogpt_verdict(config, tokenizer).refuse()


def full_gpt(config: GPTConfig) -> GPTConfig:
    """The config of the same function with every part present (see the module docstring)."""
    if config.attn_scale != "head" and config.qk_norm:
        # QK-norm would undo a scale folded into the queries; no target has both, so this is never exported
        raise ConvertError("The 1/sqrt(n_embd) attention scale cannot be folded into the queries of a model with "
                           "QK-norm; no format here holds that pair.")
    return replace(config, attn_proj=True, ffn="mlp", attn_scale="head")


def verdicts(config: GPTConfig, tokenizer: Tokenizer) -> dict[str, Verdict]:
    """{'hf': ..., 'nanogpt': ...} for a run's config and tokenizer: from its settings alone, no weights."""
    return {"hf": transformers_verdict(config), "nanogpt": nanogpt_verdict(config, tokenizer)}


def summary(found: dict[str, Verdict]) -> str:
    """One sentence for the page: where this run can go, and what stops it elsewhere (the parts, short)."""
    ok = [f"a transformers model ({v.carrier})" if v.label == "transformers" else "a nanoGPT checkpoint"
          for v in found.values() if v.carrier]
    refused = [v for v in found.values() if not v.carrier]
    if any(v.parts == ("bigram table",) for v in refused):
        return "This run is a bigram table, which neither transformers nor nanoGPT can hold."
    why = ", and ".join(f"{v.near} cannot express its {listed(list(v.parts))}" for v in refused)
    if not ok:
        return f"This run cannot download in another format: {why}."
    return f"This run can download as {listed(ok, 'and as')}" + (f"; {why}." if why else ".")
