import math
import threading

import pytest
import torch

from gpt.engine import KVCache, SamplingSettings, draw, filtered_probs, generate, generate_stream, sample_next_token
from gpt.errors import SamplingError
from gpt.model import GPT, GPTConfig, build_model


def sharp_model(vocab=40, block_size=24, arch_kw=None, dtype=torch.float64):
    """A random GPT with larger weights, so greedy choices are varied and far from ties."""
    torch.manual_seed(3)
    cfg = GPTConfig(vocab_size=vocab, block_size=block_size, n_layer=2, n_head=2, n_embd=32, **(arch_kw or {}))
    model = GPT(cfg).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(12.0)
    return model.eval()


@pytest.mark.parametrize("window", ["slide", "crop"])
@pytest.mark.parametrize("arch", [{}, {"pos_emb": "rope", "qk_norm": True, "activation": "relu2", "tie_weights": False}])
def test_greedy_with_cache_equals_without_past_block_size(window, arch):
    model = sharp_model(arch_kw=arch)
    settings = SamplingSettings(max_new_tokens=3 * 24 + 5, temperature=0)  # well past block_size
    cached = generate(model, [1, 2, 3], settings, use_cache=True, window=window)
    uncached = generate(model, [1, 2, 3], settings, use_cache=False, window=window)
    assert len(cached) == 77
    assert len(set(cached)) >= 3  # a varied sequence, not one repeated token
    assert cached == uncached


def test_greedy_cache_equality_in_float32_on_the_default_window():
    model = sharp_model(dtype=torch.float32)
    settings = SamplingSettings(max_new_tokens=60, temperature=0)
    assert generate(model, [5], settings, use_cache=True) == generate(model, [5], settings, use_cache=False)


def test_same_seed_same_sample_and_different_seed_differs():
    model = sharp_model()
    s = lambda seed: SamplingSettings(max_new_tokens=50, temperature=1.0, top_k=20, top_p=0.95, seed=seed)
    assert generate(model, [1], s(7)) == generate(model, [1], s(7))
    assert generate(model, [1], s(7), use_cache=False) == generate(model, [1], s(7), use_cache=True)
    assert generate(model, [1], s(7)) != generate(model, [1], s(8))


def test_cache_holds_one_position_per_new_token():
    model = sharp_model()
    cache = KVCache.for_model(model)
    model(torch.tensor([[1, 2, 3, 4]]), kv_cache=cache)
    assert cache.pos == 4
    logits_step, _ = model(torch.tensor([[5]]), kv_cache=cache)
    assert cache.pos == 5
    full, _ = model(torch.tensor([[1, 2, 3, 4, 5]]))
    torch.testing.assert_close(logits_step[0, -1], full[0, -1])


def test_stop_request_ends_the_stream_early():
    model = sharp_model()
    stop = threading.Event()
    out = []
    for i, tok in enumerate(generate_stream(model, [1], SamplingSettings(max_new_tokens=500, temperature=1.0, seed=1),
                                            should_stop=stop.is_set)):
        out.append(tok)
        if i == 9:
            stop.set()
    assert len(out) == 10


def test_filtered_probs_match_softmax_over_temperature_with_filters():
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]])
    p = filtered_probs(logits, temperature=0.5)
    torch.testing.assert_close(p, torch.softmax(logits / 0.5, dim=-1))
    k2 = filtered_probs(logits, temperature=1.0, top_k=2)
    expected = torch.softmax(torch.tensor([[2.0, 1.0]]), dim=-1)
    torch.testing.assert_close(k2[0, :2], expected[0])
    assert k2[0, 2:].sum() == 0
    base = torch.softmax(logits, dim=-1)[0]
    nucleus = filtered_probs(logits, temperature=1.0, top_p=0.8)[0]
    # the smallest prefix of tokens, likeliest first, whose mass reaches 0.8
    n_keep = int((torch.cumsum(base, 0) < 0.8).sum()) + 1
    assert (nucleus[:n_keep] > 0).all() and (nucleus[n_keep:] == 0).all()
    torch.testing.assert_close(nucleus[:n_keep], base[:n_keep] / base[:n_keep].sum())


def test_draws_follow_the_probabilities_and_never_pick_a_zero():
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    gen = torch.Generator().manual_seed(0)
    draws = torch.cat([draw(probs, gen) for _ in range(20_000)], dim=1)  # (2, 20000)
    freq = torch.bincount(draws[0], minlength=5).float() / draws.size(1)
    torch.testing.assert_close(freq, probs[0], atol=0.015, rtol=0)  # 4+ standard errors
    assert freq[1] == 0 and freq[4] == 0 and (draws[1] == 4).all()
    edge = torch.tensor([[0.5, 0.5, 0.0]])  # a uniform number at the very top still lands on a real token
    assert draw(edge, torch.Generator().manual_seed(1)).item() in (0, 1)


def test_temperature_zero_is_greedy_and_low_temperature_sharpens():
    logits = torch.tensor([[0.1, 3.0, 0.2]])
    assert sample_next_token(logits, temperature=0).item() == 1
    assert filtered_probs(logits, 0.1)[0, 1] > filtered_probs(logits, 1.0)[0, 1] > filtered_probs(logits, 5.0)[0, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=-0.5), "0 or more"),
        (dict(temperature=float("nan")), "must be a number"),
        (dict(top_k=0), "top-k"),
        (dict(top_k=-3), "top-k"),
        (dict(top_p=0.0), "top-p"),
        (dict(top_p=1.5), "top-p"),
        (dict(max_new_tokens=0), "at least 1"),
        (dict(max_new_tokens=10**6), "cap"),
    ],
)
def test_bad_sampling_settings_get_clear_messages(kwargs, message):
    with pytest.raises(SamplingError, match=message):
        SamplingSettings(**kwargs).validate(vocab_size=65)


def test_top_k_above_vocab_is_clamped_with_a_note():
    s = SamplingSettings(top_k=500)
    notes = s.validate(vocab_size=65)
    assert s.top_k == 65 and "65" in notes[0]


def test_bigram_generates_without_cache():
    torch.manual_seed(0)
    model = build_model(GPTConfig(vocab_size=11, block_size=8, model_type="bigram"))
    out = generate(model, [1], SamplingSettings(max_new_tokens=30, temperature=1.0, seed=0))
    assert len(out) == 30 and all(0 <= t < 11 for t in out)


def crop_reference(model, prompt: list[int], n: int) -> list[int]:
    """nanoGPT's generate, written out: before every token the context is the last block_size tokens."""
    tokens = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            ctx = torch.tensor([tokens[-model.config.block_size:]])  # idx[:, -block_size:]
            logits, _ = model(ctx)
            tokens.append(int(logits[0, -1].argmax()))
    return tokens[len(prompt):]


@pytest.mark.parametrize("use_cache", [True, False])
def test_crop_keeps_the_last_block_size_tokens_like_nanogpt(use_cache):
    model = sharp_model(block_size=16)
    settings = SamplingSettings(max_new_tokens=60, temperature=0)  # past the window for 44 tokens
    reference = crop_reference(model, [1, 2, 3], 60)
    assert len(set(reference)) >= 3
    assert generate(model, [1, 2, 3], settings, use_cache=use_cache, window="crop") == reference
