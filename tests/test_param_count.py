"""Finding 6 of issue 13: parameters are counted by arithmetic, equal to the real model's count."""

import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt.errors import ConfigError
from gpt.model import ARCHITECTURES, GPTConfig, build_model, count_parameters, parameter_breakdown


def _switches():
    """Every boolean or choice switch GPTConfig has, whatever lessons add: drawn from its own fields."""
    from dataclasses import fields

    out = {}
    for f in fields(GPTConfig):
        if f.type in ("bool", bool):
            out[f.name] = st.booleans()
    choices = dict(pos_emb=["learned", "rope"], activation=["gelu", "relu2", "relu"], model_type=["gpt"] * 3 + ["bigram"],
                   ffn=["mlp", "linear", "none"], attn_scale=["head", "embd"], init=["gpt2", "torch"],
                   norm=["layer", "rms"])
    names = {f.name for f in fields(GPTConfig)}
    for name, options in choices.items():
        if name in names:
            out[name] = st.sampled_from([o for o in options if _accepted(name, o)])
    return out


def _accepted(name, value) -> bool:
    try:
        GPTConfig(**{name: value})
        return True
    except ConfigError:
        return False


@st.composite
def configs(draw):
    n_head = draw(st.integers(1, 4))
    head = draw(st.integers(1, 6)) * 2
    kw = {k: draw(v) for k, v in _switches().items()}
    return GPTConfig(vocab_size=draw(st.integers(1, 300)), block_size=draw(st.integers(1, 64)),
                     n_layer=draw(st.integers(1, 5)), n_head=n_head, n_embd=n_head * head, **kw)


@settings(max_examples=150, deadline=None)
@given(configs())
def test_the_arithmetic_count_equals_the_real_models_count_for_every_switch(config):
    with torch.device("meta"):
        real = parameter_breakdown(build_model(config))
    assert count_parameters(config) == real


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_the_count_of_each_named_architecture_matches(arch):
    config = GPTConfig(vocab_size=65, **ARCHITECTURES[arch])
    assert count_parameters(config) == parameter_breakdown(build_model(config))


def test_absurd_depths_are_counted_in_microseconds_not_minutes():
    t0 = time.perf_counter()
    n = count_parameters(GPTConfig(n_layer=1000))["total"]  # built layer by layer, this took seconds
    assert n > 1000 * 12 * 128 * 128
    assert time.perf_counter() - t0 < 0.05  # on the meta device, layer by layer: ~1 s


@pytest.mark.parametrize("field, value", [("n_layer", 10**30), ("n_layer", 1e30), ("n_layer", "abc"), ("n_layer", True),
                                          ("block_size", float("inf")), ("n_embd", float("nan")), ("vocab_size", [1]),
                                          ("dropout", "abc"), ("dropout", float("nan")), ("bias", "yes"),
                                          ("model_type", ["gpt"])])
def test_a_config_refuses_strings_nan_and_huge_numbers_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        GPTConfig(**{field: value})


def test_a_config_from_json_that_is_not_an_object_is_a_sentence():
    with pytest.raises(ConfigError, match="JSON object"):
        GPTConfig.from_dict([1, 2])
