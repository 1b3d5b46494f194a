import math

import pytest
import torch

from gpt.errors import ConfigError
from gpt.model import (
    ARCHITECTURES, GPT, MODEL_PRESETS, BigramLanguageModel, GPTConfig, build_model, count_parameters,
    parameter_breakdown,
)


def test_config_rejects_heads_that_do_not_divide_width():
    with pytest.raises(ConfigError, match=r"n_embd \(130\) must be divisible by n_head \(4\)"):
        GPTConfig(n_embd=130, n_head=4)


@pytest.mark.parametrize("field", ["vocab_size", "block_size", "n_layer", "n_head", "n_embd"])
@pytest.mark.parametrize("value", [0, -3])
def test_config_rejects_non_positive_sizes(field, value):
    with pytest.raises(ConfigError, match=field):
        GPTConfig(**{field: value})


def test_config_rejects_bad_dropout_and_kind():
    with pytest.raises(ConfigError, match="dropout"):
        GPTConfig(dropout=1.5)
    with pytest.raises(ConfigError, match="model_type"):
        GPTConfig(model_type="rnn")


def test_medium_preset_is_nanogpts_10_7M_model():
    counts = count_parameters(GPTConfig(vocab_size=65, **MODEL_PRESETS["medium"]))
    # nanoGPT reports 10.65M because it leaves out the position embedding; we say what we include.
    assert counts["total"] - counts["position_embedding"] == pytest.approx(10.65e6, rel=0.01)
    assert counts["total"] == pytest.approx(10.77e6, rel=0.01)


def test_breakdown_sums_and_counts_tied_head_once():
    model = GPT(GPTConfig(vocab_size=50, **MODEL_PRESETS["tiny"]))
    parts = parameter_breakdown(model)
    assert parts["lm_head"] == 0  # tied to wte
    assert parts["total"] == sum(p.numel() for p in model.parameters())
    assert parts["total"] == sum(v for k, v in parts.items() if k != "total")
    untied = GPT(GPTConfig(vocab_size=50, **MODEL_PRESETS["tiny"], **ARCHITECTURES["modern"]))
    assert parameter_breakdown(untied)["lm_head"] == 50 * 32
    assert parameter_breakdown(untied)["position_embedding"] == 0  # rotary has no table


@pytest.mark.parametrize("arch", ["classic", "modern"])
def test_gpt_forward_shapes_and_initial_loss_near_uniform(arch):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=65, **MODEL_PRESETS["tiny"], **ARCHITECTURES[arch])
    model = GPT(cfg)
    idx = torch.randint(0, 65, (3, 32))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 32, 65)
    assert abs(loss.item() - math.log(65)) < 0.6  # small init: close to a uniform guess
    last, none = model(idx, last_only=True)
    assert last.shape == (3, 1, 65) and none is None
    torch.testing.assert_close(last[:, 0], logits[:, -1])


def test_gpt_is_causal_and_unmasked_variant_is_not():
    torch.manual_seed(0)
    for causal in (True, False):
        model = GPT(GPTConfig(vocab_size=20, **MODEL_PRESETS["tiny"], causal=causal)).eval()
        a = torch.randint(0, 20, (1, 16))
        b = a.clone()
        b[0, -1] = (a[0, -1] + 1) % 20  # change only the last token
        la, _ = model(a)
        lb, _ = model(b)
        same_prefix = torch.allclose(la[0, :-1], lb[0, :-1], atol=1e-6)
        assert same_prefix == causal  # the past must not see the future, unless unmasked


def test_context_longer_than_block_size_is_refused():
    model = GPT(GPTConfig(vocab_size=10, **MODEL_PRESETS["tiny"]))
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_bigram_is_a_table_of_next_token_logits():
    model = build_model(GPTConfig(vocab_size=7, model_type="bigram"))
    assert isinstance(model, BigramLanguageModel)
    assert parameter_breakdown(model)["total"] == 49
    idx = torch.tensor([[1, 2, 3]])
    logits, _ = model(idx)
    torch.testing.assert_close(logits[0, 1], model.token_embedding_table.weight[2])


def test_the_rms_norm_divides_by_the_root_mean_square_learns_nothing_and_normalises_the_embedding_too():
    torch.manual_seed(0)
    cfg = GPTConfig(**{**MODEL_PRESETS["tiny"], **ARCHITECTURES["modern"], "norm": "rms", "embed_norm": True,
                       "vocab_size": 20})
    model = GPT(cfg).eval()
    assert parameter_breakdown(model)["layernorm"] == 0 and count_parameters(cfg)["layernorm"] == 0
    x = torch.randn(2, 5, 32) * 3 + 1  # a mean the RMS norm keeps and a LayerNorm would remove
    y = model.transformer.h[0].ln_1(x)
    torch.testing.assert_close(y, x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt())
    idx = torch.randint(0, 20, (1, 8))
    seen = []
    model.transformer.ln_emb.register_forward_hook(lambda m, i, o: seen.append((i[0], o)))
    model(idx)
    (emb, out), = seen
    torch.testing.assert_close(emb, model.transformer.wte(idx))  # rotary: the norm reads the token embedding
    torch.testing.assert_close(out, emb / emb.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt())


def test_a_config_saved_before_the_norm_switches_keeps_its_layernorm_and_no_embedding_norm():
    old = {k: v for k, v in GPTConfig(**ARCHITECTURES["modern"]).to_dict().items() if k not in ("norm", "embed_norm")}
    cfg = GPTConfig.from_dict(old)
    assert (cfg.norm, cfg.embed_norm) == ("layer", False)
    model = GPT(cfg)
    assert isinstance(model.transformer.ln_f, torch.nn.LayerNorm) and "ln_emb" not in model.transformer
    with pytest.raises(ConfigError, match="norm"):
        GPTConfig(norm="batch")
