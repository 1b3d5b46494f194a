"""The ablation ladder: every rung a configuration of gpt/model.py, and the switches that make them."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from gpt import ladder
from gpt.engine import KVCache
from gpt.errors import ConfigError
from gpt.jobs.request import RunRequest
from gpt.model import ARCHITECTURES, GPT, MODEL_PRESETS, GPTConfig, build_model, count_parameters, parameter_breakdown
from gpt import corpus as corpora

C = 32  # the ladder's width


def test_old_configs_without_the_new_switches_still_load():
    old = {"vocab_size": 65, "block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.0, "bias": True,
           "model_type": "gpt", "pos_emb": "learned", "activation": "gelu", "qk_norm": False, "tie_weights": True,
           "causal": True}
    cfg = GPTConfig.from_dict(old)
    assert (cfg.ffn, cfg.residual, cfg.attn_proj, cfg.layernorm, cfg.attn_scale, cfg.init) == \
        ("mlp", True, True, True, "head", "gpt2")
    # the default model is untouched: nanoGPT's small shape keeps its parameter count
    assert count_parameters(GPTConfig(vocab_size=65, **MODEL_PRESETS["small"]))["total"] == 809_856  # as on main before the switches
    assert count_parameters(GPTConfig(vocab_size=65, **MODEL_PRESETS["small"], **ARCHITECTURES["modern"]))["total"] == 804_224


@pytest.mark.parametrize("field,value", [("ffn", "conv"), ("attn_scale", "sqrt"), ("init", "xavier"),
                                         ("activation", "tanh")])
def test_bad_switch_values_raise_a_sentence_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^{field} must be one of .*got '{value}'"):
        GPTConfig(**{field: value})


def test_each_switch_removes_exactly_its_parameters():
    base = dict(vocab_size=65, block_size=8, n_layer=1, n_head=4, n_embd=C, tie_weights=False)
    full = count_parameters(GPTConfig(**base))
    assert full["mlp"] == (C * 4 * C + 4 * C) + (4 * C * C + C)
    assert count_parameters(GPTConfig(**base, ffn="linear"))["mlp"] == C * C + C
    no_ffn = count_parameters(GPTConfig(**base, ffn="none"))
    assert no_ffn["mlp"] == 0 and no_ffn["layernorm"] == full["layernorm"] - 2 * C  # ln_2 goes with the MLP
    assert count_parameters(GPTConfig(**base, attn_proj=False))["attention"] == C * 3 * C + 3 * C
    assert count_parameters(GPTConfig(**base, layernorm=False))["layernorm"] == 0
    assert count_parameters(GPTConfig(**base, residual=False))["total"] == full["total"]  # residuals are free


def test_rung_parameter_counts_follow_the_lecture():
    counts = {n: count_parameters(ladder.configs(n, 65)[0])["total"] for n in range(1, 7)}
    assert counts[1] == 65 * 65
    assert counts[2] == 65 * C + 8 * C + (C * 3 * C + 3 * C) + C * 65  # embeddings, q/k/v, LM head
    assert counts[3] == counts[2]  # four heads of 8 cost what one head of 32 does
    assert counts[4] == counts[3] + C * C + C
    assert counts[6] - counts[5] == 3 * 2 * 2 * C + 2 * C  # two LayerNorms per block and a final one


def test_the_video_scale_differs_only_with_several_heads():
    torch.manual_seed(0)
    idx = torch.randint(0, 65, (2, 8))
    for n_head, same in ((1, True), (4, False)):
        cfg = dict(vocab_size=65, block_size=8, n_layer=1, n_head=n_head, n_embd=C)
        torch.manual_seed(1)
        a = GPT(GPTConfig(**cfg))
        b = GPT(GPTConfig(**cfg, attn_scale="embd"))
        b.load_state_dict(a.state_dict())
        assert torch.allclose(a(idx)[0], b(idx)[0], atol=1e-6) == same
        assert b.transformer.h[0].attn.scale == pytest.approx(C ** -0.5)


def test_torch_init_keeps_pytorchs_unit_embeddings():
    torch.manual_seed(0)
    gpt2 = GPT(GPTConfig(vocab_size=65, block_size=8, n_layer=1, n_head=1, n_embd=C))
    video = GPT(GPTConfig(vocab_size=65, block_size=8, n_layer=1, n_head=1, n_embd=C, init="torch"))
    assert gpt2.transformer.wte.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert video.transformer.wte.weight.std().item() == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize("number", [2, 4, 5])
def test_every_rung_samples_the_same_with_and_without_the_kv_cache(number):
    torch.manual_seed(0)
    model = build_model(ladder.configs(number, 65)[0]).eval()
    idx = torch.randint(0, 65, (1, 8))
    full, _ = model(idx)
    cache = KVCache.for_model(model)
    model(idx[:, :5], kv_cache=cache)
    step, _ = model(idx[:, 5:6], kv_cache=cache)
    assert torch.allclose(step[0, -1], full[0, 5], atol=1e-5)


def test_rung_seven_is_the_fast_preset_on_a_cpu_and_the_lecture_model_elsewhere():
    cpu_model, cpu_train = ladder.configs(7, 65, "cpu")
    gpu_model, gpu_train = ladder.configs(7, 65, "cuda")
    assert cpu_train.optimizer == "muon" and cpu_model.pos_emb == "rope"
    assert (gpu_model.n_layer, gpu_model.n_head, gpu_model.n_embd, gpu_model.block_size) == (6, 6, 384, 256)
    assert (gpu_train.batch_size, gpu_train.lr, gpu_model.dropout) == (64, 3e-4, 0.2)
    assert count_parameters(gpu_model)["total"] == pytest.approx(10.79e6, rel=0.01)  # the lecture's 10.788929 M


def test_lecture_settings_are_a_constant_rate_adamw():
    _, bigram = ladder.configs(1, 65)
    _, attention = ladder.configs(3, 65)
    assert (bigram.max_iters, bigram.lr, bigram.eval_interval, bigram.eval_iters) == (3000, 1e-2, 300, 200)
    assert (attention.max_iters, attention.lr, attention.eval_interval, attention.batch_size) == (5000, 1e-3, 500, 32)
    assert attention.min_lr_ratio == 1.0 and attention.warmup_iters == 0 and attention.grad_clip == 0.0


def test_rungs_parse_and_bad_ones_name_the_flag():
    assert ladder.parse_rungs("1-6") == [1, 2, 3, 4, 5, 6]
    assert ladder.parse_rungs("1,3,7") == [1, 3, 7]
    for bad in ("0-3", "x", "8", ""):
        with pytest.raises(ConfigError, match="--rungs"):
            ladder.parse_rungs(bad)
    with pytest.raises(ConfigError, match="rung must be"):
        ladder.configs(9, 65)
    with pytest.raises(ConfigError, match="switches"):
        ladder.configs(2, 65, residual=False)


def test_a_run_request_can_be_one_rung():
    request = RunRequest.from_dict(RunRequest(rung=4, seed=3).to_dict())
    model_cfg, train_cfg = request.configs(65, "cpu")
    assert (model_cfg.ffn, model_cfg.residual, model_cfg.n_head) == ("linear", False, 4)
    assert train_cfg.seed == 3 and train_cfg.max_iters == 5000
    assert RunRequest().configs(65, "cpu")[0].ffn == "mlp"  # no rung: the preset as before


def test_the_ladder_cli_writes_its_table(tmp_path, monkeypatch):
    short = dict(max_iters=30, eval_interval=15, eval_iters=2, sample_tokens=0)
    for n in (1, 2):
        monkeypatch.setitem(ladder.RUNGS, n, dataclasses.replace(ladder.RUNGS[n], train={**ladder.RUNGS[n].train,
                                                                                          **short}))
    assert ladder.main(["--out", str(tmp_path), "--rungs", "1-2", "--data", "addition", "--device", "cpu"]) == 0
    rows = json.loads((tmp_path / "ladder.json").read_text())
    assert [r["rung"] for r in rows] == [1, 2]
    for row in rows:
        assert {"rung", "change", "val_loss", "lecture_val_loss", "params", "steps", "seconds"} <= set(row)
        assert row["steps"] == 30 and row["val_loss"] > 0
    assert rows[0]["params"] == corpora.dataset(corpora.load("addition"), "char").tokenizer.vocab_size ** 2
    table = (tmp_path / "ladder.md").read_text()
    assert "| 2 | token + position embeddings" in table and "~2.4" in table
    assert (tmp_path / "rung2" / "model.safetensors").exists()  # each rung is a normal run folder


@pytest.mark.parametrize("switches", [{}, {"ffn": "linear"}, {"ffn": "none"}, {"attn_proj": False},
                                      {"layernorm": False}, {"ffn": "none", "layernorm": False, "bias": False}])
def test_the_parameter_arithmetic_counts_what_each_switch_builds(switches):
    cfg = GPTConfig(vocab_size=65, block_size=8, n_layer=2, n_head=4, n_embd=C, tie_weights=False, **switches)
    assert count_parameters(cfg) == parameter_breakdown(build_model(cfg))


@pytest.mark.parametrize("number", range(1, 8))
def test_every_rungs_parameter_arithmetic_matches_its_model(number):
    for device in ("cpu", "cuda"):
        cfg = ladder.configs(number, 65, device)[0]
        assert count_parameters(cfg) == parameter_breakdown(build_model(cfg))
