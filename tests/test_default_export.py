"""Where a default run can go: `--arch classic` over the default (modern) preset is the classic block whole, norms
included, so it crosses to GPT-2 and nanoGPT."""

from gpt.convert import verdicts
from gpt.model import ARCHITECTURES, GPTConfig
from gpt.presets import DEFAULT_PRESET
from gpt.tokenizer import CharTokenizer
from gpt.train import configs_from


def test_classic_over_the_default_preset_is_the_classic_block_whole_and_crosses_everywhere():
    model_cfg, _ = configs_from(DEFAULT_PRESET, 65, dict(ARCHITECTURES["classic"]), {})
    assert (model_cfg.norm, model_cfg.embed_norm) == ("layer", False)
    assert all(getattr(model_cfg, k) == v for k, v in ARCHITECTURES["classic"].items())
    found = verdicts(model_cfg, CharTokenizer.from_text("First Citizen:\n"))
    assert (found["hf"].carrier, found["nanogpt"].carrier) == ("GPT-2", "nanoGPT")
