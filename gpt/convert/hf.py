"""A run folder as a Hugging Face transformers folder (GPT-2, NanoChat, Qwen3 or Llama), and back.

`run_to_hf` writes what `AutoModelForCausalLM.from_pretrained` and
`AutoTokenizer.from_pretrained` load with no custom code, in the architecture
that computes the run (`gpt.convert.fit`: learned positions as GPT-2, the
nanochat block as NanoChat, the modern one as Qwen3, or Llama without its
QK-norm; anything else is refused before a file is written):
- config.json: a GPT2Config with our sizes; n_positions = n_ctx = block size
  (llama.cpp's converter reads n_ctx); activation "gelu" (exact erf, our
  classic MLP's F.gelu), "gelu_new" (the tanh form, for GPT-2's own weights),
  "relu" or "relu2"; or a NanoChatConfig (gpt.convert.nanochat), or a
  Qwen3Config or LlamaConfig (gpt.convert.qwen3);
- model.safetensors: GPT-2's names and Conv1D layout (gpt.convert.layout), or the others';
- generation_config.json, tokenizer.json (gpt.convert.hf_tokenizer),
  tokenizer_config.json, and a README.md model card.

A model without biases exports with zero biases (GPT-2 always has them):
the same function. A compact GPT-2 vocabulary exports with GPT-2's own
50,257 ids: each used token's row moves to its GPT-2 id and every other row
is a copy of the fallback row, which is what our model reads for a token its
corpus never had. So every id the corpus uses gets exactly our logit; the
fallback's probability is spread over the copies, which matters only to text
the model was never trained on.

`hf_to_run` reads a local GPT-2, NanoChat, Qwen3 or Llama folder (one we exported, or one
saved by `save_pretrained`) into a normal run folder. Only safetensors are
read; pytorch_model.bin is a pickle and is refused.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import checkpoint as ckpt
from ..bpe import BPETokenizer
from ..chat.tokenizer import ChatTokenizer, base_of
from ..errors import ConvertError, GPTError
from ..model import GPTConfig, build_model, parameter_breakdown
from ..tokenizer import Tokenizer
from ..tokenizers import tokenizer_from_spec
from . import hf_tokenizer, nanochat, qwen3
from .fit import GPT2, LLAMA, NANOCHAT, QWEN3, full_gpt, transformers_architecture
from .layout import full_gpt_weights, gpt2_to_ours, load_into, ours_to_gpt2

# transformers' ACT2FN names: "gelu" is F.gelu's exact erf form, "gelu_new" GPT-2's tanh form, "relu2" ReLU squared
ACTIVATION_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "relu2": "relu2"}
HF_TO_ACTIVATION = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
                    "relu": "relu", "relu2": "relu2"}
BLOCKS = {GPT2: "GPT-2's architecture (learned positions, pre-LayerNorm, an MLP, biases)",
          NANOCHAT: "nanochat's architecture (rotary positions, QK-norm, RMSNorm without a gain, no biases)",
          QWEN3: "Qwen3's architecture (rotary positions, QK-norm, RMSNorm, a gated MLP computing ReLU squared, "
                 "no biases; written from this project's modern block, see gpt/convert/qwen3.py)",
          LLAMA: "Llama's architecture (rotary positions, RMSNorm, a gated MLP computing ReLU squared, no biases; "
                 "written from this project's modern block, see gpt/convert/qwen3.py)"}
MODEL_TYPES = {"gpt2": GPT2, "nanochat": NANOCHAT, "qwen3": QWEN3, "llama": LLAMA}


def _expand_compact(state: dict[str, torch.Tensor], tok: Tokenizer, tied: bool) -> dict[str, torch.Tensor]:
    """Rows of a compact vocabulary moved to their full ids; unused ids get the fallback row (see above).
    A chat model's token rows follow, after the full vocabulary."""
    text = base_of(tok)
    if not (isinstance(text, BPETokenizer) and text.compact):
        return state
    full = torch.tensor(text.kept, dtype=torch.long)
    out = dict(state)
    for key in ["transformer.wte.weight"] + ([] if tied else ["lm_head.weight"]):
        rows = state[key]  # (compact vocab [+ chat tokens], C), the fallback is the last text row
        table = rows[text.unk_id].repeat(text.full_vocab_size, 1)  # (full vocab, C)
        table[full] = rows[: len(text.kept)]
        out[key] = torch.cat([table, rows[text.vocab_size:]])
    return out


def hf_config(config: GPTConfig, vocab_size: int, tokenizer: Tokenizer) -> dict:
    eos = hf_tokenizer.eos_id(tokenizer)
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": vocab_size,
        "n_positions": config.block_size, "n_ctx": config.block_size, "n_embd": config.n_embd,
        "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
        "activation_function": ACTIVATION_TO_HF[config.activation], "layer_norm_epsilon": 1e-5,
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
        "initializer_range": 0.02, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "use_cache": True, "tie_word_embeddings": config.tie_weights,
        "bos_token_id": eos, "eos_token_id": eos, "dtype": "float32",
        "gpt_tokenizer": tokenizer.spec(),  # our own reading of tokenizer.json, exact on import
    }


def _usage(tok: Tokenizer) -> str:
    """The model card's lines after loading: a chat template for a chat model, a plain prompt otherwise."""
    if isinstance(tok, ChatTokenizer):
        return ('messages = [{"role": "user", "content": "Who are you?"}]\n'
                'ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt").input_ids\n'
                'out = model.generate(ids, max_new_tokens=100, do_sample=False)  # stops at <|end|>\n'
                'print(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True))')
    return ('ids = tok("ROMEO:", return_tensors="pt").input_ids\n'
            'print(tok.decode(model.generate(ids, max_new_tokens=100, do_sample=True, top_k=40)[0]))')


def _head(c: GPTConfig, arch: str) -> str:
    if not c.tie_weights:
        return "an untied LM head"
    if arch in (QWEN3, LLAMA) and not qwen3.tied_in_transformers(c):
        return "an LM head tied to the embedding in training (its own copy here: this file's embedding is centred)"
    return "a tied LM head"


def model_card(run: ckpt.Checkpoint, n_params: int, arch: str = GPT2) -> str:
    meta, c = run.meta, run.model_config
    best = meta.get("best_val_loss")
    rows = ckpt.read_metrics(run.path) if run.path and run.path.is_dir() else []
    bpc = next((r.get("val_bpc") for r in reversed(rows) if r.get("val_bpc") is not None), None)
    train = meta.get("train") or {}
    figures = [f"- steps: {run.step:,}"]
    if isinstance(best, (int, float)):
        figures.append(f"- best validation loss: {best:.4f} nats per token (perplexity {math.exp(best):.2f})")
    if bpc is not None:
        figures.append(f"- validation bits per character: {bpc:.3f}")
    return f"""---
library_name: transformers
pipeline_tag: text-generation
tags: [{arch.lower()}, from-scratch, lets-build-gpt]
---

# {run.path.name if run.path else 'gpt'}

A {n_params:,}-parameter GPT trained from scratch with the "Build a GPT" app (Karpathy's
*Let's build GPT*): {c.n_layer} layers, {c.n_head} heads, width {c.n_embd}, context {c.block_size} tokens,
{BLOCKS[arch]}, {c.activation} activation, {_head(c, arch)}.

- data: {meta.get('corpus', 'unknown')}
- tokenizer: {run.tokenizer.describe()}{' (exported with its full vocabulary; see the project README)' if isinstance(base_of(run.tokenizer), BPETokenizer) and base_of(run.tokenizer).compact else ''}
- training: optimizer {train.get('optimizer', '?')}, learning rate {train.get('lr', '?')}, batch {train.get('batch_size', '?')} x {c.block_size} tokens
{chr(10).join(figures)}

## Load it

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("PATH")
tok = AutoTokenizer.from_pretrained("PATH")
{_usage(run.tokenizer)}
```

Keep prompt plus new tokens within {c.block_size} tokens: the model has no position beyond.
"""


def _write_json(path: Path, data: dict) -> None:
    ckpt.atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False))


def _gpt2_weights(state: dict[str, torch.Tensor], config: GPTConfig) -> dict[str, torch.Tensor]:
    if not config.bias:  # GPT-2 always has biases; zeros are the same function
        for name, p in list(state.items()):
            if name.endswith(".weight") and not name.startswith(("transformer.wte", "transformer.wpe", "lm_head")):
                state[name[: -len("weight")] + "bias"] = torch.zeros(p.shape[0])  # Linear (out,) or LayerNorm (C,)
    return ours_to_gpt2(state, tied=config.tie_weights)


def run_to_hf(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the run at `run_dir` as a transformers folder `out_dir` (GPT-2, NanoChat, Qwen3 or Llama); returns out_dir."""
    run = ckpt.load_checkpoint(run_dir, device="cpu")
    arch = transformers_architecture(run.model_config)  # refuses before anything is written
    config, tok = full_gpt(run.model_config), run.tokenizer
    state = full_gpt_weights(dict(run.model.state_dict()), run.model_config)
    state = _expand_compact(state, tok, config.tie_weights)
    exported = hf_tokenizer.exported_tokenizer(tok)
    eos = hf_tokenizer.eos_id(exported)
    if arch == GPT2:
        weights, hf = _gpt2_weights(state, config), hf_config(config, exported.vocab_size, exported)
    elif arch == NANOCHAT:
        weights = nanochat.ours_to_nanochat(state, config)
        hf = nanochat.nanochat_config(config, exported.vocab_size, eos, exported)
    else:
        weights = qwen3.ours_to_qwen3(state, config)
        hf = qwen3.qwen3_config(config, exported.vocab_size, eos, exported)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_write(out / "model.safetensors", lambda tmp: save_file(weights, tmp, metadata={"format": "pt"}))
    _write_json(out / "config.json", hf)
    _write_json(out / "generation_config.json", {"bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos,
                                                  "do_sample": True, "temperature": 0.8, "top_k": 40,
                                                  })
    _write_json(out / "tokenizer.json", hf_tokenizer.tokenizer_json(tok))
    _write_json(out / "tokenizer_config.json", hf_tokenizer.tokenizer_config(exported, config.block_size))
    ckpt.atomic_write_text(out / "README.md", model_card(run, parameter_breakdown(run.model)["total"], arch))
    return out


def _read_config(src: Path) -> dict:
    try:
        data = json.loads((src / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConvertError(f"{src.name} has no config.json; it is not a transformers model folder.") from None
    except (OSError, ValueError):
        raise ConvertError(f"{src.name}/config.json is not valid JSON.") from None
    except RecursionError:  # json.loads recurses once per level: 100,000 '[' exhaust the stack
        raise ConvertError(f"{src.name}/config.json nests deeper than any model's config; it is not a GPT-2 "
                           "config.json.") from None
    if not isinstance(data, dict) or data.get("model_type") not in MODEL_TYPES:
        kind = data.get("model_type") if isinstance(data, dict) else None
        raise ConvertError(f"{src.name}/config.json describes a {kind!r} model; only GPT-2, NanoChat, Qwen3 and "
                           "Llama (model_type 'gpt2', 'nanochat', 'qwen3' or 'llama') folders import.")
    return data


def config_from_hf(data: dict) -> GPTConfig:
    """Our GPTConfig for a GPT2Config dict, refusing the switches our blocks do not have."""
    act = data.get("activation_function", "gelu_new")
    n_embd = int(data.get("n_embd", 768))
    if act not in HF_TO_ACTIVATION:
        raise ConvertError(f"config.json's activation_function {act!r} is none of {', '.join(sorted(HF_TO_ACTIVATION))}, "
                           "the ones this project's MLP computes.")
    if data.get("n_inner") not in (None, 4 * n_embd):
        raise ConvertError(f"config.json's n_inner {data['n_inner']} is not 4 x n_embd ({4 * n_embd}).")
    if abs(float(data.get("layer_norm_epsilon", 1e-5)) - 1e-5) > 1e-12:
        raise ConvertError("config.json's layer_norm_epsilon is not 1e-5, the only one our LayerNorm uses.")
    if data.get("scale_attn_by_inverse_layer_idx") or data.get("add_cross_attention") or not data.get("scale_attn_weights", True):
        raise ConvertError("config.json changes GPT-2's attention scaling or adds cross-attention; it cannot import.")
    return GPTConfig(vocab_size=int(data.get("vocab_size", 50257)), block_size=int(data.get("n_positions", 1024)),
                     n_layer=int(data.get("n_layer", 12)), n_head=int(data.get("n_head", 12)), n_embd=n_embd,
                     dropout=0.0, bias=True, activation=HF_TO_ACTIVATION[act],
                     tie_weights=bool(data.get("tie_word_embeddings", True)))


def _tokenizer_of(src: Path, data: dict) -> Tokenizer:
    if isinstance(data.get("gpt_tokenizer"), dict):
        return tokenizer_from_spec(data["gpt_tokenizer"])
    path = src / "tokenizer.json"
    if path.exists():
        try:
            return hf_tokenizer.tokenizer_from_json(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as err:
            if isinstance(err, ConvertError):
                raise
            raise ConvertError(f"{src.name}/tokenizer.json is not valid JSON.") from None
        except RecursionError:
            raise ConvertError(f"{src.name}/tokenizer.json nests deeper than any tokenizer's; it is not a "
                               "tokenizers file.") from None
    return tokenizer_from_spec({"type": "gpt2", "kept_ids": None})  # GPT-2's vocab.json + merges.txt


# each architecture's (config.json -> GPTConfig, its weights -> our names), as load_hf reads a folder
READERS = {GPT2: (config_from_hf, lambda state, config, where: gpt2_to_ours(state)),
           NANOCHAT: (nanochat.config_from_nanochat, nanochat.nanochat_to_ours),
           QWEN3: (qwen3.config_from_qwen3, qwen3.qwen3_to_ours),
           LLAMA: (qwen3.config_from_qwen3, qwen3.qwen3_to_ours)}


def load_hf(src_dir: str | Path, dropout: float = 0.0) -> tuple[torch.nn.Module, GPTConfig, Tokenizer]:
    """Model, config and tokenizer of a local transformers GPT-2, NanoChat, Qwen3 or Llama folder, checked."""
    src = Path(src_dir)
    if not src.is_dir():
        raise ConvertError(f"{src.name} is not a folder; give the transformers model folder (config.json, model.safetensors).")
    data = _read_config(src)
    read_config, read_weights = READERS[MODEL_TYPES[data["model_type"]]]
    try:
        config = read_config(data)
    except (TypeError, ValueError, OverflowError) as err:
        if isinstance(err, GPTError):
            raise
        raise ConvertError(f"{src.name}/config.json holds a setting of the wrong kind ({err}); sizes must be whole "
                           "numbers and rates numbers, as transformers writes them.") from None
    config.dropout = float(dropout)
    weights = src / "model.safetensors"
    if not weights.exists():
        other = "pytorch_model.bin is a pickle, never loaded here; " if (src / "pytorch_model.bin").exists() else ""
        raise ConvertError(f"{src.name} has no model.safetensors; {other}save it with save_pretrained(safe_serialization=True).")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ConvertError(f"{src.name}/model.safetensors could not be read ({err}); the file is damaged.") from None
    tok = _tokenizer_of(src, data)
    if tok.vocab_size != config.vocab_size:
        raise ConvertError(f"{src.name}: the tokenizer has {tok.vocab_size:,} tokens but config.json says "
                           f"vocab_size {config.vocab_size:,}.")
    where = f"{src.name}/model.safetensors"
    ours = read_weights(state, config, where)  # before the model is built: Qwen3's may untie the head
    model = build_model(config)
    load_into(model, ours, where)
    return model.eval(), config, tok


def hf_to_run(src_dir: str | Path, out_dir: str | Path, dropout: float = 0.0, **meta) -> Path:
    """A transformers GPT-2, NanoChat, Qwen3 or Llama folder as the run folder `out_dir` (samples, resumes, fine-tunes)."""
    model, config, tok = load_hf(src_dir, dropout)
    n = parameter_breakdown(model)["total"]
    out = Path(out_dir)
    ckpt.save_checkpoint(out, model, config, tok, step=0, n_params=n, corpus=meta.pop("corpus", "imported"),
                         imported_from={"format": "transformers", "name": Path(src_dir).name}, **meta)
    ckpt.write_status(out, "finished", f"Imported from the transformers folder {Path(src_dir).name}.", step=0)
    return out
