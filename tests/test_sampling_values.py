"""Issue 13, finding 14: SamplingSettings.validate is the one check of every sampling value's type and range,
so the page, the API and the CLI can call it alone; from_values applies their one convention."""

import pytest

from gpt.engine import SamplingSettings
from gpt.errors import SamplingError

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("field, value, match", [
    ("temperature", 1e26, "Temperature must be at most 100"),
    ("temperature", INF, "Temperature must be a number"),
    ("temperature", "hot", "Temperature must be a number"),
    ("temperature", [1], "Temperature must be a number"),
    ("temperature", True, "Temperature must be a number"),
    ("seed", 10**30, r"seed must be a whole number from 0 to 2\*\*63 - 1"),
    ("seed", 1e30, "seed must be a whole number"),
    ("seed", 2**63, "seed must be a whole number"),
    ("seed", "7", "seed must be a whole number"),
    ("seed", 2.5, "seed must be a whole number"),
    ("top_k", "40", "top-k must be a whole number"),
    ("top_k", [40], "top-k must be a whole number"),
    ("top_k", NAN, "top-k must be a whole number"),
    ("top_p", "0.9", r"top-p must be in \(0, 1\]"),
    ("top_p", NAN, r"top-p must be in \(0, 1\]"),
    ("top_p", INF, r"top-p must be in \(0, 1\]"),
    ("max_new_tokens", "abc", "Maximum new tokens must be a whole number"),
    ("max_new_tokens", INF, "Maximum new tokens must be a whole number"),
    ("max_new_tokens", [5], "Maximum new tokens must be a whole number"),
    ("max_new_tokens", 10**30, "above this server's cap"),
])
def test_every_field_is_checked_for_type_and_range(field, value, match):
    with pytest.raises(SamplingError, match=match):
        SamplingSettings(**{field: value}).validate(vocab_size=65, max_new_tokens_cap=1000)


def test_a_message_never_echoes_a_huge_value():
    with pytest.raises(SamplingError) as info:
        SamplingSettings(temperature="x" * 1_000_000).validate(65)
    assert len(str(info.value)) < 200


def test_valid_values_come_back_in_their_proper_types():
    s = SamplingSettings(max_new_tokens=300.0, temperature=1, top_k=40.0, top_p=1, seed=7.0)
    assert s.validate(65) == []
    assert (s.max_new_tokens, s.temperature, s.top_k, s.top_p, s.seed) == (300, 1.0, 40, 1.0, 7)
    assert all(type(v) is t for v, t in zip((s.max_new_tokens, s.temperature, s.top_k, s.seed), (int, float, int, int)))
    assert SamplingSettings(seed=2**63 - 1).validate(65) == []


def test_from_values_applies_the_one_convention_of_page_api_and_cli():
    s = SamplingSettings.from_values(300, 0.8, top_k=0, top_p=1.0, seed=-1)
    assert (s.top_k, s.top_p, s.seed) == (None, None, None)  # 0 / 1 / negative: off, off, random
    s = SamplingSettings.from_values(300, 0.8, top_k=40.0, top_p=0.9, seed=7)
    assert (s.top_k, s.top_p, s.seed) == (40, 0.9, 7)
    for kw, match in [(dict(top_k=-3), r"Top-k must be 0 \(off\)"), (dict(top_k="abc"), "Top-k must be a whole number"),
                      (dict(seed="abc"), "seed must be a whole number"), (dict(seed=NAN), "seed must be a whole number")]:
        with pytest.raises(SamplingError, match=match):
            SamplingSettings.from_values(300, 0.8, **kw)
