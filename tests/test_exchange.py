"""The Checkpoints tab's exchange panel, without a browser: who may export what, and uploads made safe.

Each upload becomes a run of the uploader alone; a hostile pickle, a zip that
tries to leave its folder and a model over the server's limit are refused
with a sentence, and nothing is left behind.
"""

import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt import convert
from gpt.errors import ConfigError, ConvertError
from gpt.jobs import JobManager
from gpt.jobs import folder as folders
from gpt.limits import Limits
from gpt.ui import exchange

from gpt.ladder import RUNGS

from helpers_convert import TEXT, random_run, switches_of


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", Limits(), device="cpu")
    random_run(m.root / "alice-run")
    folders.write_app_info(m.root / "alice-run", {"owner": "alice", "shared": False})
    random_run(m.root / "modern", pos_emb="rope", qk_norm=True, activation="relu2", tie_weights=False, bias=False)
    random_run(m.root / "rotary-gelu", pos_emb="rope", qk_norm=True, activation="gelu", tie_weights=False, bias=False)
    yield m
    m.shutdown()


def runs_of(m: JobManager) -> list[str]:
    return sorted(p.name for p in m.root.iterdir() if p.is_dir())


def test_a_run_downloads_in_both_formats_and_only_to_those_who_may_see_it(manager, tmp_path):
    hf = exchange.export_zip(manager, "alice", "alice-run", "hf")
    with zipfile.ZipFile(hf) as z:
        assert {"alice-run-transformers/config.json", "alice-run-transformers/model.safetensors",
                "alice-run-transformers/tokenizer.json", "alice-run-transformers/README.md"} <= set(z.namelist())
    with zipfile.ZipFile(exchange.export_zip(manager, "alice", "alice-run", "nanogpt")) as z:
        assert sorted(z.namelist()) == ["alice-run-nanoGPT/ckpt.pt", "alice-run-nanoGPT/meta.pkl"]
    assert exchange.export_zip(manager, "alice", "alice-run", "hf") == hf  # made once per saved step
    with pytest.raises(ConvertError, match="no run named 'alice-run'"):
        exchange.export_zip(manager, "bob", "alice-run", "hf")


def test_choosing_a_run_says_what_each_format_cannot_hold_and_a_modern_run_crosses_as_qwen3(manager):
    hf, nano, plan, note = exchange.ExchangeHandlers(manager).prepare("bob", "rotary-gelu")
    assert hf["interactive"] is False and nano["interactive"] is False and note == ""
    assert plan.startswith("This run cannot download in another format: transformers' Qwen3 cannot express its gelu "
                           "activation, and nanoGPT cannot express its rotary positions")
    assert nano["label"] == "nanoGPT cannot hold this run"
    hf, nano, plan, note = exchange.ExchangeHandlers(manager).prepare("bob", "modern")
    assert hf["interactive"] and hf["value"].endswith(".zip") and nano["interactive"] is False and note == ""
    assert plan.startswith("This run can download as a transformers model (Qwen3); nanoGPT cannot express its rotary "
                           "positions")
    hf, nano, plan, note = exchange.ExchangeHandlers(manager).prepare("alice", "alice-run")
    assert hf["interactive"] and nano["interactive"] and note == ""
    assert plan == "This run can download as a transformers model (GPT-2) and as a nanoGPT checkpoint."


@pytest.mark.parametrize("number", sorted(RUNGS))
def test_every_ladder_rung_says_where_it_can_go_before_a_click_and_never_fails_after(tmp_path, number):
    m = JobManager(tmp_path / "runs", Limits(), device="cpu")
    random_run(m.root / f"ladder-rung{number}", **switches_of(RUNGS[number].model))
    hf, nano, plan, note = exchange.ExchangeHandlers(m).prepare("bob", f"ladder-rung{number}")
    m.shutdown()
    assert plan.startswith("This run ") and note == "" and "Something went wrong" not in plan + note
    for fmt, button in (("hf", hf), ("nanogpt", nano)):
        carrier = crossings_of(number)[fmt].carrier
        assert button["interactive"] is bool(carrier)
        if carrier:
            assert button["value"].endswith(".zip")  # the download is ready: the click cannot fail
        else:
            assert button["value"] is None and "cannot hold this run" in button["label"]


def crossings_of(number: int):
    from gpt.convert import verdicts
    from gpt.model import GPTConfig
    from gpt.tokenizer import CharTokenizer

    tok = CharTokenizer.from_text(TEXT)
    return verdicts(GPTConfig(**dict(RUNGS[number].model, vocab_size=tok.vocab_size)), tok)


def test_an_export_that_fails_unexpectedly_is_named_not_something_went_wrong(manager, monkeypatch):
    def broken(run, out):
        raise KeyError("relu")  # what a missing activation name did before exports were checked

    monkeypatch.setitem(exchange.FORMATS, "hf", ("transformers", broken))
    hf, nano, plan, note = exchange.ExchangeHandlers(manager).prepare("alice", "alice-run")
    assert hf["interactive"] is False and nano["interactive"]
    assert "transformers: " in note and "The export failed on the server" in note and "Something went wrong" not in note


def test_an_uploaded_transformers_zip_becomes_the_uploaders_own_run(manager):
    zipped = exchange.export_zip(manager, "alice", "alice-run", "hf")
    name = exchange.import_upload(manager, "bob", [zipped])
    info = json.loads((manager.root / name / folders.APP_FILE).read_text())
    assert info["owner"] == "bob" and info["shared"] is False
    assert manager.runs.visible("bob", name) and not manager.runs.visible("carol", name)
    back, ours = ckpt.load_checkpoint(manager.root / name), ckpt.load_checkpoint(manager.root / "alice-run")
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(back.model(ids)[0], ours.model(ids)[0])


def test_nanogpt_files_upload_loose_or_zipped(manager, tmp_path):
    out = convert.run_to_nanogpt(manager.root / "alice-run", tmp_path / "ng")
    loose = exchange.import_upload(manager, "bob", [str(out / "ckpt.pt"), str(out / "meta.pkl")])
    zipped = exchange.import_upload(manager, "bob", [exchange.export_zip(manager, "alice", "alice-run", "nanogpt")])
    for name in (loose, zipped):
        assert ckpt.load_checkpoint(manager.root / name).tokenizer.spec() == ckpt.load_checkpoint(
            manager.root / "alice-run").tokenizer.spec()


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_uploads_are_refused_and_leave_nothing(manager, tmp_path):
    before = runs_of(manager)
    marker = tmp_path / "pwned"
    torch.save({"model": {"w": Payload(marker)}, "model_args": {}}, tmp_path / "ckpt.pt")
    with pytest.raises(ConvertError, match="nothing in it ran"):
        exchange.import_upload(manager, "bob", [str(tmp_path / "ckpt.pt")])
    good = convert.run_to_nanogpt(manager.root / "alice-run", tmp_path / "ng")
    (tmp_path / "meta.pkl").write_bytes(pickle.dumps({"itos": Payload(marker)}))
    with pytest.raises(ConvertError, match="nothing in it ran"):
        exchange.import_upload(manager, "bob", [str(good / "ckpt.pt"), str(tmp_path / "meta.pkl")])
    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(escape, "w") as z:
        z.writestr("../../../escaped.json", "{}")
    with pytest.raises(ConvertError, match="holds none of"):
        exchange.import_upload(manager, "bob", [str(escape)])
    (tmp_path / "weights.bin").write_bytes(b"\x80\x02")
    with pytest.raises(ConvertError, match="not a .zip, .pt or .pkl"):
        exchange.import_upload(manager, "bob", [str(tmp_path / "weights.bin")])
    assert not marker.exists() and runs_of(manager) == before
    assert not list(tmp_path.glob("**/escaped.json"))


def test_uploads_over_the_limits_are_refused(tmp_path):
    m = JobManager(tmp_path / "runs", Limits(max_upload_mb=1, max_params=1_000), device="cpu")
    random_run(tmp_path / "src")
    out = convert.run_to_nanogpt(tmp_path / "src", tmp_path / "ng")
    with pytest.raises(ConfigError, match="over this server's limit of 0.0M"):
        exchange.import_upload(m, "bob", [str(out / "ckpt.pt"), str(out / "meta.pkl")])
    with pytest.raises(ConvertError, match="a character model needs its meta.pkl too"):
        exchange.import_upload(m, "bob", [str(out / "ckpt.pt")])
    (tmp_path / "big.pt").write_bytes(b"\0" * (2 << 20))
    with pytest.raises(ConfigError, match="over this server's limit of 1 MB"):
        exchange.import_upload(m, "bob", [str(tmp_path / "big.pt")])
    assert runs_of(m) == []
    m.shutdown()


def test_start_from_gpt2_names_the_limit_then_says_plainly_when_offline(tmp_path, monkeypatch):
    m = JobManager(tmp_path / "a", Limits(), device="cpu")
    with pytest.raises(ConvertError, match="124M parameters, over this server's limit of 25M .GPT_MAX_PARAMS."):
        exchange.start_from_gpt2(m, "bob")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    big = JobManager(tmp_path / "b", Limits(max_params=200_000_000), device="cpu")
    message = exchange.ExchangeHandlers(big).gpt2("bob", progress=lambda *a, **k: None)
    assert "cannot reach huggingface.co" in message and "msg-error" in message
    assert runs_of(big) == []
    m.shutdown(), big.shutdown()
