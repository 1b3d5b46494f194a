"""Where a default run can go. A student's default run leaves for transformers: the Train tab's preset, its
tokenizer and the default corpus, trained a few steps by `python -m gpt.train` with no flags but the length, exports
to `NanoChatForCausalLM`, which transformers builds from the exported folder alone (nothing from the hub) and which
gives our logits. `--arch classic` over the default preset is the classic block whole, norms included, so it
crosses to GPT-2 and nanoGPT."""

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.convert import run_to_hf, summary, verdicts
from gpt.model import ARCHITECTURES
from gpt.presets import DEFAULT_PRESET, PRESETS
from gpt.tokenizer import CharTokenizer
from gpt.train import configs_from
from gpt.train.cli import main as train_main

PROMPT = "ROMEO:\nBut soft, what light through yonder window breaks?\n"


def test_classic_over_the_default_preset_is_the_classic_block_whole_and_crosses_everywhere():
    model_cfg, _ = configs_from(DEFAULT_PRESET, 65, dict(ARCHITECTURES["classic"]), {})
    assert (model_cfg.norm, model_cfg.embed_norm) == ("layer", False)
    assert all(getattr(model_cfg, k) == v for k, v in ARCHITECTURES["classic"].items())
    found = verdicts(model_cfg, CharTokenizer.from_text("First Citizen:\n"))
    assert (found["hf"].carrier, found["nanogpt"].carrier) == ("GPT-2", "nanoGPT")


def test_a_default_run_downloads_as_a_transformers_model_whose_logits_equal_ours(tmp_path):
    transformers = pytest.importorskip("transformers")
    run, out = tmp_path / "run", tmp_path / "hf"
    assert train_main(["--max-iters", "2", "--eval-interval", "2", "--eval-iters", "1", "--sample-tokens", "0",
                       "--out", str(run)]) == 0
    saved = ckpt.load_checkpoint(run)
    default = PRESETS[DEFAULT_PRESET]["model"]
    assert all(getattr(saved.model_config, k) == v for k, v in default.items())  # the default recipe, untouched
    assert all(default[k] == v for k, v in ARCHITECTURES["modern"].items())

    # the Checkpoints tab's line, from the run's settings alone
    assert summary(verdicts(saved.model_config, saved.tokenizer)) == (
        "This run can download as a transformers model (NanoChat); nanoGPT cannot express its rotary positions, "
        "QK-norm, RMSNorm, norm after the embedding, relu2 activation or untied LM head.")

    run_to_hf(run, out)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(theirs).__name__ == "NanoChatForCausalLM"
    ids = transformers.AutoTokenizer.from_pretrained(out)(PROMPT * 10).input_ids
    assert ids == saved.tokenizer.encode(PROMPT * 10)
    ids = ids[: saved.model_config.block_size]  # the whole context: rotary positions up to the last one
    assert len(ids) == saved.model_config.block_size
    with torch.no_grad():
        want = saved.model.eval()(torch.tensor([ids]))[0][0]  # (T, vocab)
        got = theirs(torch.tensor([ids])).logits[0]
    assert want.shape == got.shape == (len(ids), saved.tokenizer.vocab_size)
    assert (got - want).abs().max().item() <= 1e-5 + 1e-6 * want.abs().max().item()
    assert got.argmax(-1).tolist() == want.argmax(-1).tolist()
