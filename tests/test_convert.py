"""Models in and out: transformers' GPT-2 and nanoGPT, checked against the other side's own code.

transformers is the independent implementation: a run exported to it gives
its logits and greedy text, and a nanoGPT checkpoint is built from a random
transformers GPT-2 the way nanoGPT's train.py saves one. Pickles are only read
through torch.load(weights_only=True) and a no-globals unpickler: hostile
files are refused and their payload never runs.
"""

import io
import json
import math
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.bpe import pretrained
from gpt.convert import hf_to_run, nanogpt_to_run, run_to_hf, run_to_nanogpt, unzip_safely, zip_folder
from gpt.convert.__main__ import main as convert_main
from gpt.convert.hf_tokenizer import tokenizer_json
from gpt.engine import SamplingSettings, generate
from gpt.errors import ConvertError, GPTError
from gpt.model import ARCHITECTURES, GPT, GPTConfig, build_model
from gpt.tokenizer import CharTokenizer
from gpt.tokenizers import build_tokenizer

from helpers_convert import TEXT, random_run

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
GPT2_RANKS = bool(os.environ.get("GPT_GPT2_RANKS"))
needs_gpt2 = pytest.mark.skipif(not GPT2_RANKS, reason="GPT-2's ranks are offline (run .ci/fetch_gpt2_ranks.py)")


def logits_of(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        out = model(torch.tensor([ids]))
    return (out.logits if hasattr(out, "logits") else out[0])[0]  # (T, vocab)


def hf_load(path):
    return transformers.AutoModelForCausalLM.from_pretrained(path).eval(), transformers.AutoTokenizer.from_pretrained(path)


# --- to transformers -----------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{}, {"bias": False}, {"tie_weights": False}, {"activation": "gelu_tanh"}],
                         ids=["classic", "no-bias", "untied", "gelu-tanh"])
def test_hf_export_gives_our_logits_and_greedy_text_in_transformers(tmp_path, kw):
    run = random_run(tmp_path / "run", **kw)
    run_to_hf(run, tmp_path / "hf")
    model, tok = hf_load(tmp_path / "hf")
    ours = ckpt.load_checkpoint(run)
    ids = ours.tokenizer.encode("Before we proceed")
    assert tok("Before we proceed").input_ids == ids
    assert torch.allclose(logits_of(model, ids), logits_of(ours.model, ids), atol=1e-4)
    greedy = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)[0, len(ids):].tolist()
    assert greedy == generate(ours.model, ids, SamplingSettings(max_new_tokens=12, temperature=0))
    assert len(set(greedy)) >= 3  # a varied continuation, not one repeated token


def test_hf_folder_holds_a_gpt2_config_with_the_exact_activation_and_a_model_card(tmp_path):
    run_to_hf(random_run(tmp_path / "run"), tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["n_positions"] == config["n_ctx"] == 32
    assert config["activation_function"] == "gelu"  # F.gelu's exact erf form; "gelu_new" is GPT-2's tanh form
    assert {"generation_config.json", "tokenizer.json", "README.md"} <= {p.name for p in (tmp_path / "hf").iterdir()}
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "best validation loss: 2.5000" in card and f"perplexity {math.exp(2.5):.2f}" in card and "steps: 7" in card


def test_char_tokenizer_round_trips_the_whole_corpus_in_transformers(tmp_path, shakespeare_text):
    tok = CharTokenizer.from_text(shakespeare_text)
    run_to_hf(random_run(tmp_path / "run", tok), tmp_path / "hf")
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ids = hf_tok.encode(shakespeare_text)
    assert ids == tok.encode(shakespeare_text)
    assert hf_tok.decode(ids) == shakespeare_text


def test_trained_bpe_tokenizer_json_gives_tiktokens_ids(shakespeare_text):
    tok = build_tokenizer("bpe", shakespeare_text[:100_000], vocab_size=512)
    hf = tokenizers.Tokenizer.from_str(json.dumps(tokenizer_json(tok)))
    text = shakespeare_text[:200_000]  # half of it never seen in training
    assert hf.encode(text).ids == tok.encode(text)
    assert hf.decode(tok.encode(text)) == text


@needs_gpt2
def test_gpt2_tokenizer_json_gives_tiktokens_ids_on_the_corpus(shakespeare_text):
    tok = pretrained("gpt2", compact=False)
    hf = tokenizers.Tokenizer.from_str(json.dumps(tokenizer_json(tok)))
    text = shakespeare_text[:300_000] + " naïve café 😀"  # "<|endoftext|>" in text: transformers reads it as the special token
    assert hf.encode(text).ids == tok.encode(text)


@needs_gpt2
def test_compact_gpt2_exports_at_gpt2s_own_ids_with_our_logits_there(tmp_path):
    tok = pretrained("gpt2", TEXT)
    run_to_hf(random_run(tmp_path / "run", tok), tmp_path / "hf")
    model, hf_tok = hf_load(tmp_path / "hf")
    ours = ckpt.load_checkpoint(tmp_path / "run")
    text = "Before we proceed"
    full_ids = hf_tok(text).input_ids
    assert [tok.kept.index(i) for i in full_ids] == tok.encode(text)
    theirs, mine = logits_of(model, full_ids), logits_of(ours.model, tok.encode(text))
    assert theirs.shape[-1] == 50257
    assert torch.allclose(theirs[:, tok.kept], mine[:, : len(tok.kept)], atol=1e-4)  # every used token: our logit
    assert torch.allclose(theirs[:, 0], mine[:, tok.unk_id], atol=1e-4)  # an unused id carries the fallback's


@pytest.mark.parametrize("change, missing", [  # every switch: tests/test_export_fit.py
    ({"causal": False}, ["causal mask"]),
    ({"model_type": "bigram"}, ["bigram"]),
])
def test_what_gpt2_cannot_express_is_refused_by_name(tmp_path, change, missing):
    run = random_run(tmp_path / "run", **change)
    for export in (run_to_hf, run_to_nanogpt):
        with pytest.raises(ConvertError) as err:
            export(run, tmp_path / "out")
        assert all(word in str(err.value) for word in missing), str(err.value)
    assert not (tmp_path / "out").exists()


def test_ours_to_hf_to_ours_gives_the_same_logits(tmp_path):
    run = random_run(tmp_path / "run", bias=False)
    hf_to_run(run_to_hf(run, tmp_path / "hf"), tmp_path / "back")
    back, ours = ckpt.load_checkpoint(tmp_path / "back"), ckpt.load_checkpoint(run)
    ids = ours.tokenizer.encode(TEXT[:30])
    assert back.tokenizer.spec() == ours.tokenizer.spec()
    assert torch.equal(logits_of(back.model, ids), logits_of(ours.model, ids))


@needs_gpt2
def test_a_save_pretrained_gpt2_imports_exactly_and_fine_tunes_from_the_cli(tmp_path, shakespeare_text):
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_positions=32, n_embd=16, n_layer=2, n_head=2)  # GPT-2's vocab and gelu_new
    theirs = transformers.GPT2LMHeadModel(config).eval()
    theirs.save_pretrained(tmp_path / "gpt2-tiny")
    hf_to_run(tmp_path / "gpt2-tiny", tmp_path / "run")
    ours = ckpt.load_checkpoint(tmp_path / "run")
    ids = ours.tokenizer.encode("ROMEO: what light")
    assert ours.model_config.activation == "gelu_tanh" and ours.tokenizer.vocab_size == 50257
    assert torch.allclose(logits_of(theirs, ids), logits_of(ours.model, ids), atol=1e-4)

    from gpt.train.cli import main as train_main

    corpus = tmp_path / "my.txt"
    corpus.write_text(shakespeare_text[:20_000], encoding="utf-8")
    assert train_main(["--init-from", str(tmp_path / "gpt2-tiny"), "--data", str(corpus), "--max-iters", "3",
                       "--eval-interval", "3", "--eval-iters", "1", "--batch-size", "4", "--sample-tokens", "0",
                       "--out", str(tmp_path / "tuned"), "--preset", "tiny"]) == 0
    tuned = ckpt.load_checkpoint(tmp_path / "tuned")
    assert tuned.step == 3 and tuned.tokenizer.spec() == ours.tokenizer.spec()
    assert not torch.equal(logits_of(tuned.model, ids), logits_of(ours.model, ids))
    rows = ckpt.read_metrics(tmp_path / "tuned")
    assert rows[0]["step"] == 0 and rows[0]["val_ppl"] == pytest.approx(math.exp(rows[0]["val_loss"]))


def test_hf_import_refuses_a_pickle_and_other_architectures(tmp_path):
    run_to_hf(random_run(tmp_path / "run"), tmp_path / "hf")
    (tmp_path / "hf" / "model.safetensors").rename(tmp_path / "hf" / "pytorch_model.bin")
    with pytest.raises(ConvertError, match="pytorch_model.bin is a pickle"):
        hf_to_run(tmp_path / "hf", tmp_path / "a")
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"model_type": "mistral"}))
    with pytest.raises(ConvertError, match="only GPT-2"):
        hf_to_run(tmp_path / "hf", tmp_path / "b")


# --- nanoGPT -------------------------------------------------------------------------------------


def nanogpt_checkpoint(folder: Path, theirs, vocab: int, prefix: str = "_orig_mod.", chars: str | None = None) -> Path:
    """ckpt.pt as nanoGPT's train.py writes it (torch.compile'd: '_orig_mod.'), weights from a transformers GPT-2.

    nanoGPT's names are GPT-2's with nn.Linear instead of Conv1D (so the four matrices transposed),
    lm_head.weight stored although tied; best_val_loss is a tensor, config its train.py globals.
    """
    opt = torch.optim.AdamW(theirs.parameters(), lr=1e-3)  # one step, so the checkpoint has optimizer state
    theirs(torch.zeros(1, 4, dtype=torch.long)).logits.sum().backward()
    opt.step()
    sd = {}
    for k, v in theirs.state_dict().items():
        if k.endswith((".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")):
            v = v.t()
        sd[prefix + k] = v.clone()
    c = theirs.config
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": sd, "optimizer": opt.state_dict(), "iter_num": 250, "best_val_loss": torch.tensor(1.4697),
                "model_args": dict(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, block_size=c.n_positions,
                                   bias=True, vocab_size=vocab, dropout=0.0),
                "config": {"dataset": "shakespeare_char", "batch_size": 64, "learning_rate": 1e-3, "max_iters": 5000,
                           "eval_interval": 250, "compile": True}}, folder / "ckpt.pt")
    if chars is not None:  # data/shakespeare_char/prepare.py
        meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": {ch: i for i, ch in enumerate(chars)}}
        with open(folder / "meta.pkl", "wb") as f:
            pickle.dump(meta, f)
    return folder


def random_hf_gpt2(vocab: int, activation: str = "gelu"):
    torch.manual_seed(1)
    config = transformers.GPT2Config(vocab_size=vocab, n_positions=32, n_embd=16, n_layer=2, n_head=2,
                                     activation_function=activation)
    return transformers.GPT2LMHeadModel(config).eval()


def test_a_nanogpt_char_checkpoint_imports_with_the_same_logits_samples_and_resumes(tmp_path, shakespeare_text):
    chars = "".join(sorted(set(shakespeare_text)))
    theirs = random_hf_gpt2(len(chars))
    nanogpt_checkpoint(tmp_path / "out-shakespeare-char", theirs, len(chars), chars=chars)
    nanogpt_to_run(tmp_path / "out-shakespeare-char", tmp_path / "run")
    ours = ckpt.load_checkpoint(tmp_path / "run")
    ids = ours.tokenizer.encode("ROMEO:\nBut soft")
    assert torch.allclose(logits_of(theirs, ids), logits_of(ours.model, ids), atol=1e-5)
    assert ours.step == 250 and ours.meta["best_val_loss"] == pytest.approx(1.4697)
    assert len(generate(ours.model, ids, SamplingSettings(max_new_tokens=40, seed=1))) == 40

    from gpt.train.cli import main as train_main

    assert train_main(["--resume", "--out", str(tmp_path / "run"), "--data", "shakespeare", "--max-iters", "252"]) == 0
    assert ckpt.load_checkpoint(tmp_path / "run").step == 252


def test_ddp_prefixes_and_a_meta_given_apart_load_too(tmp_path):
    chars = "".join(sorted(set(TEXT)))
    theirs = random_hf_gpt2(len(chars))
    nanogpt_checkpoint(tmp_path / "ddp", theirs, len(chars), prefix="module._orig_mod.", chars=chars)
    (tmp_path / "ddp" / "meta.pkl").rename(tmp_path / "vocab.pkl")
    nanogpt_to_run(tmp_path / "ddp" / "ckpt.pt", tmp_path / "run", meta_pkl=tmp_path / "vocab.pkl")
    ours = ckpt.load_checkpoint(tmp_path / "run")
    assert torch.allclose(logits_of(theirs, [1, 2, 3]), logits_of(ours.model, [1, 2, 3]), atol=1e-5)


@needs_gpt2
def test_nanogpts_padded_gpt2_vocabulary_keeps_every_real_tokens_logit(tmp_path):
    theirs = random_hf_gpt2(50304)  # nanoGPT pads GPT-2's 50,257 to a multiple of 64
    nanogpt_checkpoint(tmp_path / "out", theirs, 50304)
    nanogpt_to_run(tmp_path / "out", tmp_path / "run")
    ours = ckpt.load_checkpoint(tmp_path / "run")
    ids = ours.tokenizer.encode("To be, or not")
    assert ours.tokenizer.vocab_size == 50257
    assert torch.allclose(logits_of(theirs, ids)[:, :50257], logits_of(ours.model, ids), atol=1e-5)


def strict_params(raw: dict) -> list:
    return list(GPT(GPTConfig(**raw["model_args"])).parameters())


def test_ours_to_nanogpt_to_ours_gives_the_same_logits_and_a_strict_nanogpt_load(tmp_path):
    run = random_run(tmp_path / "run", bias=False)
    run_to_nanogpt(run, tmp_path / "ng")
    raw = torch.load(tmp_path / "ng" / "ckpt.pt", weights_only=True)
    assert {"model", "model_args", "iter_num", "best_val_loss", "config", "optimizer"} <= set(raw)
    opt = torch.optim.AdamW([{"params": [p for p in strict_params(raw) if p.dim() >= 2]},
                             {"params": [p for p in strict_params(raw) if p.dim() < 2]}])
    opt.load_state_dict(raw["optimizer"])  # nanoGPT's train.py init_from='resume' loads it into groups like these
    assert raw["model_args"] == dict(n_layer=2, n_head=2, n_embd=16, block_size=32, bias=False, vocab_size=raw["model_args"]["vocab_size"], dropout=0.0)
    assert "lm_head.weight" in raw["model"] and raw["iter_num"] == 7 and raw["config"]["dataset"] == "run"
    strict = GPT(GPTConfig(**raw["model_args"]))  # nanoGPT's names are ours: sample.py's strict load, same keys
    strict.load_state_dict(raw["model"], strict=True)
    with open(tmp_path / "ng" / "meta.pkl", "rb") as f:
        meta = pickle.load(f)
    assert "".join(meta["itos"][i] for i in range(meta["vocab_size"])) == "".join(sorted(set(TEXT)))
    nanogpt_to_run(tmp_path / "ng", tmp_path / "back")
    back, ours = ckpt.load_checkpoint(tmp_path / "back"), ckpt.load_checkpoint(run)
    ids = ours.tokenizer.encode(TEXT[:30])
    assert torch.equal(logits_of(back.model, ids), logits_of(ours.model, ids))
    assert back.step == 7


class Payload:
    """Unpickling this creates the marker file: what a hostile checkpoint would do instead."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_ckpt_pt_carrying_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "evil"
    folder.mkdir()
    torch.save({"model": {"x": Payload(marker)}, "model_args": {}}, folder / "ckpt.pt")
    with pytest.raises(ConvertError, match="refused and nothing in it ran"):
        nanogpt_to_run(folder, tmp_path / "run")
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_a_meta_pkl_carrying_a_payload_is_refused_and_never_runs(tmp_path):
    chars = "".join(sorted(set(TEXT)))
    nanogpt_checkpoint(tmp_path / "out", random_hf_gpt2(len(chars)), len(chars))
    marker = tmp_path / "pwned"
    (tmp_path / "out" / "meta.pkl").write_bytes(pickle.dumps({"itos": Payload(marker)}))
    with pytest.raises(ConvertError, match="open, which a vocabulary never needs.*nothing in it ran"):
        nanogpt_to_run(tmp_path / "out", tmp_path / "run")
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [(b"not a checkpoint", "not a PyTorch checkpoint"),
                                              (None, "no 'model' and 'model_args'")])
def test_files_that_are_not_nanogpt_checkpoints_get_a_sentence(tmp_path, content, message):
    path = tmp_path / "ckpt.pt"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ConvertError, match=message):
        nanogpt_to_run(path, tmp_path / "run")


# --- archives, the download, the command line ----------------------------------------------------


def test_unzip_keeps_only_model_files_by_name_and_stops_a_bomb(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("../../escaped.txt", "x")
        z.writestr("/abs/ckpt.pt", "weights")
        z.writestr("folder/../meta.pkl", "meta")
    out = unzip_safely(evil, tmp_path / "out", max_bytes=1 << 20)
    assert sorted(p.name for p in out.iterdir()) == ["ckpt.pt", "meta.pkl"]
    assert not (tmp_path / "escaped.txt").exists() and not Path("/abs/ckpt.pt").exists()
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.safetensors", b"\0" * (8 << 20))  # 8 MB of zeros, a few kB zipped
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ConvertError, match="more than 1 MB"):
        unzip_safely(bomb, tmp_path / "bomb-out", max_bytes=1 << 20)
    with pytest.raises(ConvertError, match="not a .zip"):
        unzip_safely(tmp_path / "out" / "ckpt.pt", tmp_path / "x", max_bytes=1 << 20)


def test_zip_of_an_export_unzips_to_the_same_files(tmp_path):
    run_to_hf(random_run(tmp_path / "run"), tmp_path / "hf")
    z = zip_folder(tmp_path / "hf", tmp_path / "hf.zip")
    out = unzip_safely(z, tmp_path / "back", max_bytes=50 << 20)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (out / name).read_bytes() == (tmp_path / "hf" / name).read_bytes()


def test_download_gpt2_says_plainly_when_offline(monkeypatch):
    import time

    from gpt.convert import hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.monotonic()
    with pytest.raises(ConvertError, match="cannot reach huggingface.co .HF_HUB_OFFLINE"):
        hub.download_gpt2()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "_reachable", lambda *a, **k: "Name or service not known")
    with pytest.raises(ConvertError, match="Name or service not known"):
        hub.download_gpt2()
    assert time.monotonic() - t < 2


def test_the_command_line_exports_imports_and_explains(tmp_path, capsys):
    run = random_run(tmp_path / "run")
    assert convert_main([str(run), "--to", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert convert_main([str(run), "--to", "nanogpt", "--out", str(tmp_path / "ng")]) == 0
    assert "data/run/meta.pkl" in capsys.readouterr().out
    assert convert_main(["--from", "nanogpt", str(tmp_path / "ng"), "--out", str(tmp_path / "a")]) == 0
    assert convert_main(["--from", "hf", str(tmp_path / "hf"), "--out", str(tmp_path / "b")]) == 0
    assert convert_main(["--from", "nanogpt", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_init_from_over_the_parameter_limit_is_refused_and_leaves_no_run(tmp_path, monkeypatch, capsys):
    from gpt.train.cli import main as train_main

    run_to_hf(random_run(tmp_path / "run"), tmp_path / "hf")
    monkeypatch.setenv("GPT_MAX_PARAMS", "1000")
    (tmp_path / "text.txt").write_text(TEXT * 100, encoding="utf-8")  # the characters the model knows
    args = ["--init-from", str(tmp_path / "hf"), "--data", str(tmp_path / "text.txt"), "--max-iters", "2",
            "--out", str(tmp_path / "t")]
    assert train_main(args) == 2
    assert "GPT_MAX_PARAMS" in capsys.readouterr().err
    assert not (tmp_path / "t" / ckpt.WEIGHTS).exists()
    monkeypatch.delenv("GPT_MAX_PARAMS")
    assert train_main(args + ["--eval-iters", "1", "--sample-tokens", "0"]) == 0  # the same command, once allowed
