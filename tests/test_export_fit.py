"""Every switch of GPTConfig against every export: carried exactly (checked in transformers itself and in a
nanoGPT forward written apart from our model) or refused by name before a file is written.

The lecture ladder's switches (gpt/ladder.py) and the architectures' (ARCHITECTURES) are all here: an export
that silently changes the function (logits off by 1.12, 4.37, 16.7 before these checks) is the bug they prevent.
"""

import json
from dataclasses import replace

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.convert import hf_to_run, nanogpt_to_run, run_to_hf, run_to_nanogpt, summary, verdicts
from gpt.convert.layout import full_gpt_weights
from gpt.convert.fit import full_gpt
from gpt.engine import SamplingSettings, generate
from gpt.errors import ConvertError
from gpt.ladder import CPU_RUNG_7, RUNGS
from gpt.model import ARCHITECTURES, GPT, GPTConfig, build_model

from helpers_convert import TEXT, nanogpt_logits, random_run, switches_of

transformers = pytest.importorskip("transformers")

MODERN = ARCHITECTURES["modern"]  # the default recipe's block (LayerNorm, no norm after the embedding)
NANOCHAT = dict(MODERN, norm="rms", embed_norm=True)  # nanochat's block
PROMPT = "Before we proceed"


def logits_of(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        out = model(torch.tensor([ids]))
    return (out.logits if hasattr(out, "logits") else out[0])[0]  # (T, vocab)


def same_logits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal to float32's rounding at the logits' own scale (PyTorch's init='torch' makes them ~100)."""
    return (a - b).abs().max().item() <= 1e-5 + 1e-6 * b.abs().max().item()


def in_transformers(run, out):
    """The run exported, loaded by transformers' Auto classes; with our own model and the prompt's ids."""
    run_to_hf(run, out)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    ours = ckpt.load_checkpoint(run)
    ids = transformers.AutoTokenizer.from_pretrained(out)(PROMPT).input_ids
    assert ids == ours.tokenizer.encode(PROMPT)
    return theirs, ours, ids


# --- carried: the same logits and greedy text on the other side ---------------------------------------

ACCEPTED_BY_TRANSFORMERS = {
    "relu": (dict(activation="relu"), "GPT2LMHeadModel"),
    "relu2-learned": (dict(activation="relu2"), "GPT2LMHeadModel"),
    "attn-scale-embd": (dict(attn_scale="embd"), "GPT2LMHeadModel"),
    "ffn-linear": (dict(ffn="linear"), "GPT2LMHeadModel"),
    "ffn-none": (dict(ffn="none"), "GPT2LMHeadModel"),
    "no-attn-proj": (dict(attn_proj=False), "GPT2LMHeadModel"),
    "init-torch": (dict(init="torch"), "GPT2LMHeadModel"),
    "ladder-rung-6-embd": (dict(switches_of(RUNGS[6].model), attn_scale="embd"), "GPT2LMHeadModel"),
    "ladder-rung-7-gpu": (switches_of(RUNGS[7].model), "GPT2LMHeadModel"),
    "nanochat": (NANOCHAT, "NanoChatForCausalLM"),
    "nanochat-tied": (dict(NANOCHAT, tie_weights=True), "NanoChatForCausalLM"),
    "nanochat-gelu": (dict(NANOCHAT, activation="gelu"), "NanoChatForCausalLM"),
    "nanochat-ladder-parts": (dict(NANOCHAT, ffn="linear", attn_proj=False), "NanoChatForCausalLM"),
    "modern": (MODERN, "Qwen3ForCausalLM"),
    "modern-rms": (dict(MODERN, norm="rms"), "Qwen3ForCausalLM"),
    "modern-rms-tied": (dict(MODERN, norm="rms", tie_weights=True), "Qwen3ForCausalLM"),
    "modern-tied": (dict(MODERN, tie_weights=True), "Qwen3ForCausalLM"),  # leaves untied: its embedding is centred
    "modern-ladder-parts": (dict(MODERN, ffn="linear", attn_proj=False), "Qwen3ForCausalLM"),
    "modern-no-qk-norm": (dict(MODERN, qk_norm=False), "LlamaForCausalLM"),
    "modern-no-qk-norm-embd-scale": (dict(MODERN, qk_norm=False, attn_scale="embd"), "LlamaForCausalLM"),
}


@pytest.mark.parametrize("kw, arch", ACCEPTED_BY_TRANSFORMERS.values(), ids=ACCEPTED_BY_TRANSFORMERS.keys())
def test_every_accepted_switch_gives_our_logits_and_greedy_text_in_transformers(tmp_path, kw, arch):
    theirs, ours, ids = in_transformers(random_run(tmp_path / "run", **kw), tmp_path / "hf")
    assert type(theirs).__name__ == arch
    assert same_logits(logits_of(theirs, ids), logits_of(ours.model, ids))
    greedy = theirs.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)[0, len(ids):].tolist()
    assert greedy == generate(ours.model, ids, SamplingSettings(max_new_tokens=12, temperature=0))


ACCEPTED_BY_NANOGPT = {
    "classic": {}, "no-bias": dict(bias=False), "attn-scale-embd": dict(attn_scale="embd"), "ffn-linear": dict(ffn="linear"),
    "ffn-none": dict(ffn="none"), "no-attn-proj": dict(attn_proj=False), "init-torch": dict(init="torch"),
}


@pytest.mark.parametrize("kw", ACCEPTED_BY_NANOGPT.values(), ids=ACCEPTED_BY_NANOGPT.keys())
def test_every_accepted_switch_gives_our_logits_in_a_nanogpt_forward_and_loads_strictly(tmp_path, kw):
    run = random_run(tmp_path / "run", **kw)
    run_to_nanogpt(run, tmp_path / "ng")
    raw = torch.load(tmp_path / "ng" / "ckpt.pt", weights_only=True)
    GPT(GPTConfig(**raw["model_args"])).load_state_dict(raw["model"], strict=True)  # nanoGPT's names and shapes
    ours = ckpt.load_checkpoint(run)
    ids = ours.tokenizer.encode(PROMPT)
    assert same_logits(nanogpt_logits(raw, ids), logits_of(ours.model, ids))


@pytest.mark.parametrize("kw", [dict(attn_scale="embd", n_head=4), dict(ffn="linear", activation="relu"),
                                dict(ffn="none", bias=False), dict(attn_proj=False, attn_scale="embd")])
def test_the_full_gpt_rewrite_is_the_same_function_in_our_own_model(kw):
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_embd=16, **{"n_head": 2, **kw})
    model = build_model(config).eval()
    full = build_model(full_gpt(config)).eval()
    full.load_state_dict(full_gpt_weights(model.state_dict(), config), strict=True)
    ids = list(range(16))
    assert same_logits(logits_of(full, ids), logits_of(model, ids))


def test_a_nanochat_export_imports_back_exactly_and_from_the_command_line(tmp_path):
    from gpt.convert.__main__ import main as convert_main

    run = random_run(tmp_path / "run", **NANOCHAT)
    assert convert_main([str(run), "--to", "hf", "--out", str(tmp_path / "hf")]) == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["model_type"] == "nanochat" and config["final_logit_softcapping"] is None
    assert config["eos_token_id"] is None and config["pad_token_id"] is None  # nanochat's 1 is a real character here
    assert convert_main(["--from", "hf", str(tmp_path / "hf"), "--out", str(tmp_path / "back")]) == 0
    back, ours = ckpt.load_checkpoint(tmp_path / "back"), ckpt.load_checkpoint(run)
    assert back.model_config == ours.model_config
    ids = ours.tokenizer.encode(TEXT[:30])
    assert torch.equal(logits_of(back.model, ids), logits_of(ours.model, ids))


def test_a_nanochat_saved_by_transformers_imports_with_its_logits_or_names_what_it_cannot(tmp_path):
    run_to_hf(random_run(tmp_path / "run", **NANOCHAT), tmp_path / "hf")  # for its tokenizer files
    torch.manual_seed(3)
    settings = dict(vocab_size=ckpt.load_checkpoint(tmp_path / "run").tokenizer.vocab_size, hidden_size=16,
                    intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=32,
                    final_logit_softcapping=None, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    theirs = transformers.NanoChatForCausalLM(transformers.NanoChatConfig(**settings)).eval()
    theirs.save_pretrained(tmp_path / "theirs")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "theirs" / name).write_bytes((tmp_path / "hf" / name).read_bytes())
    hf_to_run(tmp_path / "theirs", tmp_path / "imported")
    ours = ckpt.load_checkpoint(tmp_path / "imported")
    ids = ours.tokenizer.encode(PROMPT)
    assert torch.allclose(logits_of(theirs, ids), logits_of(ours.model, ids), atol=1e-5)

    transformers.NanoChatForCausalLM(transformers.NanoChatConfig(**{**settings, "final_logit_softcapping": 15.0,
                                                                   "intermediate_size": 48})).save_pretrained(tmp_path / "capped")
    with pytest.raises(ConvertError, match="intermediate_size 48.*a logit softcap of 15.0.*cannot be computed"):
        hf_to_run(tmp_path / "capped", tmp_path / "no")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("kw", [MODERN, dict(MODERN, qk_norm=False), dict(MODERN, norm="rms", tie_weights=True),
                                dict(MODERN, tie_weights=True)],
                         ids=["qwen3-layernorm", "llama", "qwen3-rms-tied", "qwen3-layernorm-tied"])
def test_a_qwen3_or_llama_export_imports_back_with_our_logits_and_config(tmp_path, kw):
    run = random_run(tmp_path / "run", **kw)
    hf_to_run(run_to_hf(run, tmp_path / "hf"), tmp_path / "back")
    back, ours = ckpt.load_checkpoint(tmp_path / "back"), ckpt.load_checkpoint(run)
    centred = ours.model_config.norm == "layer" and ours.model_config.tie_weights  # its head left with its own rows
    saved = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert saved["tie_word_embeddings"] is (ours.model_config.tie_weights and not centred)
    assert back.model_config == replace(ours.model_config, tie_weights=ours.model_config.tie_weights and not centred)
    ids = ours.tokenizer.encode(TEXT[:30])
    assert same_logits(logits_of(back.model, ids), logits_of(ours.model, ids))


def test_the_shipped_model_leaves_for_transformers_as_qwen3_with_its_logits_and_greedy_text(tmp_path):
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "shakespeare-char"
    theirs, ours, ids = in_transformers(shipped, tmp_path / "hf")
    assert type(theirs).__name__ == "Qwen3ForCausalLM" and ours.model_config.norm == "layer"
    assert same_logits(logits_of(theirs, ids), logits_of(ours.model, ids))
    greedy = theirs.generate(torch.tensor([ids]), max_new_tokens=40, do_sample=False)[0, len(ids):].tolist()
    assert greedy == generate(ours.model, ids, SamplingSettings(max_new_tokens=40, temperature=0))


def qwen3_made_by_transformers(tmp_path, **change):
    """A random Qwen3 saved by transformers, ReLU squared (gate = up) and our sizes, with learned norm gains."""
    run_to_hf(random_run(tmp_path / "run", **MODERN), tmp_path / "hf")  # for its tokenizer files
    torch.manual_seed(4)
    settings = dict(vocab_size=ckpt.load_checkpoint(tmp_path / "run").tokenizer.vocab_size, hidden_size=16,
                    intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                    head_dim=8, hidden_act="relu", max_position_embeddings=32, rms_norm_eps=1e-6,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, tie_word_embeddings=True)
    theirs = transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**{**settings, **change})).eval()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("up_proj.weight"):
                p.copy_(dict(theirs.named_parameters())[name.replace("up_proj", "gate_proj")])
    theirs.save_pretrained(tmp_path / "theirs")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "theirs" / name).write_bytes((tmp_path / "hf" / name).read_bytes())
    return theirs


def test_a_qwen3_saved_by_transformers_imports_with_its_logits_or_names_what_it_cannot(tmp_path):
    theirs = qwen3_made_by_transformers(tmp_path)
    hf_to_run(tmp_path / "theirs", tmp_path / "imported")
    ours = ckpt.load_checkpoint(tmp_path / "imported")
    assert (ours.model_config.norm, ours.model_config.tie_weights) == ("rms", False)  # gains folded, head untied
    ids = ours.tokenizer.encode(PROMPT)
    assert same_logits(logits_of(theirs, ids), logits_of(ours.model, ids))

    with torch.no_grad():  # a real gated MLP (gate and up differ) and learned QK gains: neither is ours
        theirs.model.layers[1].mlp.up_proj.weight.mul_(2)
    theirs.save_pretrained(tmp_path / "theirs")
    with pytest.raises(ConvertError, match="layer 1's gate and up weights differ"):
        hf_to_run(tmp_path / "theirs", tmp_path / "no")
    qwen3_made_by_transformers(tmp_path / "silu", hidden_act="silu", num_key_value_heads=1)
    with pytest.raises(ConvertError, match="hidden_act 'silu'.*grouped keys and values.*cannot be computed"):
        hf_to_run(tmp_path / "silu" / "theirs", tmp_path / "no")
    assert not (tmp_path / "no").exists()


# --- refused: every part named, in one sentence, before anything is written -------------------------

REFUSED = {  # change: (words transformers' refusal names, words nanoGPT's names; None: nanoGPT takes it)
    "no-residual": (dict(residual=False), ["lack of residual connections"], ["lack of residual connections"]),
    "no-layernorm": (dict(layernorm=False), ["lack of norms"], ["lack of norms"]),
    "no-mask": (dict(causal=False), ["causal mask"], ["causal mask"]),
    "bigram": (dict(model_type="bigram"), ["bigram"], ["bigram"]),
    "rms-learned": (dict(norm="rms"), ["GPT-2", "RMSNorm"], ["RMSNorm"]),
    "embed-norm-learned": (dict(embed_norm=True), ["GPT-2", "norm after the embedding"], ["norm after the embedding"]),
    "modern-gelu": (dict(MODERN, activation="gelu"), ["transformers' Qwen3", "gelu activation", "ReLU squared"],
                    ["rotary positions", "QK-norm", "untied LM head"]),
    "modern-no-qk-norm-gelu-bias": (dict(MODERN, qk_norm=False, activation="gelu", bias=True),
                                    ["transformers' Llama", "gelu activation", "biases"], ["rotary positions"]),
    "nanochat-with-biases": (dict(NANOCHAT, bias=True), ["NanoChat", "biases"], ["rotary positions"]),
    "ladder-rung-2": (switches_of(RUNGS[2].model), ["residual connections", "norms"], ["residual", "relu", "untied"]),
    "ladder-rung-5": (switches_of(RUNGS[5].model), ["lack of norms"], ["lack of norms"]),
}


@pytest.mark.parametrize("change, hf_words, nanogpt_words", REFUSED.values(), ids=REFUSED.keys())
def test_what_no_format_can_express_is_refused_by_name_before_anything_is_written(tmp_path, change, hf_words,
                                                                                   nanogpt_words):
    run = random_run(tmp_path / "run", **change)
    for export, words in ((run_to_hf, hf_words), (run_to_nanogpt, nanogpt_words)):
        with pytest.raises(ConvertError) as err:
            export(run, tmp_path / "out")
        text = str(err.value)
        assert all(word in text for word in words), text
        assert text.endswith(".") and ". " not in text and "'s an " not in text, text  # one grammatical sentence
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kw, word", [(dict(activation="relu"), "relu activation"),
                                      (dict(activation="gelu_tanh"), "gelu_tanh activation"),
                                      (dict(tie_weights=False), "untied LM head"),
                                      (switches_of(RUNGS[6].model), "relu activation .*MLP is the exact GELU. or untied LM head")])
def test_what_only_nanogpt_lacks_is_refused_there_and_carried_to_transformers(tmp_path, kw, word):
    run = random_run(tmp_path / "run", **kw)
    with pytest.raises(ConvertError, match=f"nanoGPT cannot express this model's {word}"):
        run_to_nanogpt(run, tmp_path / "ng")
    assert not (tmp_path / "ng").exists()
    run_to_hf(run, tmp_path / "hf")  # the parity of these is above (relu, untied, gelu-tanh in test_convert.py)


def test_every_ladder_rung_gets_a_verdict_for_each_format_from_its_settings_alone():
    from gpt.tokenizer import CharTokenizer

    tok = CharTokenizer.from_text(TEXT)
    found = {n: verdicts(GPTConfig(**dict(r.model, vocab_size=tok.vocab_size)), tok) for n, r in RUNGS.items()}
    found["7-cpu"] = verdicts(GPTConfig(**dict(CPU_RUNG_7.model, vocab_size=tok.vocab_size)), tok)
    carriers = {n: (v["hf"].carrier, v["nanogpt"].carrier) for n, v in found.items()}
    assert carriers == {1: (None, None), 2: (None, None), 3: (None, None), 4: (None, None), 5: (None, None),
                        6: ("GPT-2", None), 7: ("GPT-2", None),
                        "7-cpu": ("Qwen3", None)}
    assert summary(found[6]) == ("This run can download as a transformers model (GPT-2); nanoGPT cannot express its "
                                 "relu activation or untied LM head.")
    assert summary(found[5]) == ("This run cannot download in another format: transformers' GPT-2 cannot express its "
                                 "lack of norms, and nanoGPT cannot express its lack of norms, relu activation or "
                                 "untied LM head.")
    assert summary(found[1]) == "This run is a bigram table, which neither transformers nor nanoGPT can hold."


@pytest.mark.parametrize("change, says", [({"hidden_size": "abc"}, "holds a setting of the wrong kind"),
                                          ({"rms_norm_eps": "x"}, "holds a setting of the wrong kind"),
                                          ({"layer_types": 5}, "holds a setting of the wrong kind"),
                                          ({"tie_word_embeddings": "no"}, "tie_word_embeddings 'no' (true or false)"),
                                          ({"tie_word_embeddings": True}, "lm_head.weight differs from it")])
def test_a_hostile_qwen3_config_gets_a_sentence_from_the_command_line_and_imports_nothing(tmp_path, capsys, change,
                                                                                         says):
    from gpt.convert.__main__ import main as convert_main

    run_to_hf(random_run(tmp_path / "run", **MODERN), tmp_path / "hf")  # untied: its lm_head is its own
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, **change}))
    assert convert_main(["--from", "hf", str(tmp_path / "hf"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and str(tmp_path) not in err, err
    assert not (tmp_path / "out").exists()
