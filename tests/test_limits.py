"""Issue 13, findings 6, 8, 9, 10 and 14: every limit is checked by arithmetic, before anything is built,
for new, resumed and uploaded runs alike, and every bad value is a sentence naming its field."""


import pytest

from gpt import model as model_module
from gpt.errors import ConfigError
from gpt.limits import Limits
from gpt.model import GPTConfig
from gpt.train import TrainConfig


@pytest.fixture
def nothing_is_built(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a model was built to check a limit")

    monkeypatch.setattr(model_module, "build_model", refuse)
    monkeypatch.setattr(model_module.GPT, "__init__", refuse)


def test_a_thousand_layers_are_refused_without_building_anything(nothing_is_built):
    """By arithmetic: the fixture makes building any model fail, so a refusal here never built one."""
    with pytest.raises(ConfigError, match="GPT_MAX_LAYERS"):
        Limits().check_model(GPTConfig(n_layer=1000))
    with pytest.raises(ConfigError, match="GPT_MAX_PARAMS"):
        Limits(max_layers=1024).check_model(GPTConfig(n_layer=1000, n_embd=768, n_head=12))


def test_absurd_depths_never_become_a_config():
    for n_layer in (200_000, 10**30, 1e30):
        with pytest.raises(ConfigError, match="n_layer"):
            GPTConfig(n_layer=n_layer)


def test_the_block_size_limit_is_the_pages_slider_max_for_the_api_and_uploads_too():
    assert Limits().max_block_size == 512
    Limits().check_model(GPTConfig(block_size=512))
    with pytest.raises(ConfigError, match=r"block_size is 100,000 tokens.*GPT_MAX_BLOCK_SIZE"):
        Limits().check_model(GPTConfig(block_size=100_000))


def test_a_million_distinct_characters_are_refused_by_the_vocabulary_limit():
    # 17.8M parameters passed the 25M limit, then its (batch x context x vocabulary) logits took 8 GB
    config = GPTConfig(vocab_size=1_100_000, n_layer=1, n_head=1, n_embd=16, block_size=64)
    with pytest.raises(ConfigError, match="GPT_MAX_VOCAB"):
        Limits().check_run(config, TrainConfig())


def test_the_logits_count_in_the_memory_limit():
    config = GPTConfig(vocab_size=60_000, n_layer=1, n_head=1, n_embd=16, block_size=512)
    Limits().check_model(config)  # few parameters, an allowed vocabulary
    with pytest.raises(ConfigError, match=r"needs about .* GB of memory.*GPT_MAX_TRAIN_MEMORY_MB"):
        Limits().check_run(config, TrainConfig(batch_size=64))


def test_the_presets_fit_the_default_limits():
    from gpt.presets import PRESETS, preset

    for name in PRESETS:
        p = preset(name)
        Limits().check_run(GPTConfig(vocab_size=65, **p["model"]), TrainConfig.from_dict(p["train"]))


@pytest.mark.parametrize("train, match", [
    (dict(batch_size=200_000), "GPT_MAX_BATCH_SIZE"),
    (dict(max_iters=10**6), "GPT_MAX_ITERS"),
    (dict(sample_tokens=2001), "sample_tokens.*GPT_MAX_NEW_TOKENS"),
    (dict(eval_iters=5000), "eval_iters.*GPT_MAX_EVAL_ITERS"),
])
def test_every_training_limit_holds_for_a_resumed_or_uploaded_config(train, match):
    # an uploaded checkpoint's "train" settings go through TrainConfig.from_dict, then check_train
    with pytest.raises(ConfigError, match=match):
        Limits().check_train(TrainConfig.from_dict({**TrainConfig().to_dict(), **train}))


@pytest.mark.parametrize("field, value", [
    ("batch_size", "abc"), ("batch_size", 2.5), ("max_iters", float("inf")), ("max_seconds", "abc"),
    ("max_seconds", float("nan")), ("lr", float("nan")), ("lr", [1]), ("eval_interval", 0), ("eval_iters", None),
    ("sample_tokens", 10**9), ("seed", 10**30), ("seed", -1), ("beta2", 2.0), ("optimizer", 3), ("dtype", "int8"),
    ("device", ["cpu"]), ("compile", "yes"), ("sample_prompt", 12), ("warmup_iters", -1),
])
def test_a_training_config_refuses_bad_values_naming_the_field(field, value):
    label = "learning rate" if field == "lr" else field
    with pytest.raises(ConfigError, match=label):
        TrainConfig(**{field: value})


def test_a_training_config_from_json_must_be_an_object():
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_dict("abc")


def test_each_limit_comes_from_its_environment_variable():
    env = dict(GPT_MAX_LAYERS="3", GPT_MAX_BLOCK_SIZE="64", GPT_MAX_VOCAB="100", GPT_MAX_TRAIN_MEMORY_MB="10",
               GPT_MAX_EVAL_ITERS="5")
    lim = Limits.from_env(env)
    assert (lim.max_layers, lim.max_block_size, lim.max_vocab, lim.max_train_memory_mb, lim.max_eval_iters) == (
        3, 64, 100, 10, 5)
    with pytest.raises(ConfigError, match="GPT_MAX_BLOCK_SIZE must be a whole number"):
        Limits.from_env(dict(GPT_MAX_BLOCK_SIZE="lots"))


def test_stop_ends_the_sample_shown_at_an_evaluation_at_once():
    # sample_tokens=1e9 with eval_interval=1 made a run nobody could stop: the sample never looked at Stop
    from gpt.train import Trainer
    from gpt import corpus as corpora

    ds = corpora.dataset(corpora.load("addition"), "char")
    cfg = GPTConfig(vocab_size=ds.tokenizer.vocab_size, n_layer=1, n_head=1, n_embd=8, block_size=16)
    trainer = Trainer(cfg, TrainConfig(batch_size=4, max_iters=5, sample_tokens=10_000, device="cpu"), ds)
    calls = []
    trainer.model.register_forward_hook(lambda *a: calls.append(1))
    trainer.request_stop()
    assert trainer.objective.sample_text(trainer) == ""
    assert calls == []  # not one token drawn after the Stop
