import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.errors import CheckpointError
from gpt.model import ARCHITECTURES, GPTConfig, build_model
from gpt.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parent.parent
TEXT = "the quick brown fox jumps over the lazy dog\n" * 20


def saved_run(tmp_path, arch="classic", model_type="gpt"):
    tok = CharTokenizer.from_text(TEXT)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16,
                    model_type=model_type, **ARCHITECTURES[arch])
    torch.manual_seed(0)
    model = build_model(cfg)
    path = tmp_path / "run"
    ckpt.save_checkpoint(path, model, cfg, tok, step=7, corpus="fox")
    return path, model, tok


@pytest.mark.parametrize("arch, model_type", [("classic", "gpt"), ("modern", "gpt"), ("classic", "bigram")])
def test_round_trip_gives_identical_logits(tmp_path, arch, model_type):
    path, model, tok = saved_run(tmp_path, arch, model_type)
    loaded = ckpt.load_checkpoint(path)
    idx = torch.tensor([tok.encode("the fox")])
    torch.testing.assert_close(loaded.model(idx)[0], model.eval()(idx)[0])
    assert loaded.step == 7 and loaded.meta["corpus"] == "fox"
    assert {f.name: f.stat().st_mode & 0o777 for f in path.iterdir()} == {  # others may read it (a server, a download)
        ckpt.WEIGHTS: 0o644, ckpt.CONFIG: 0o644}
    assert loaded.tokenizer.encode("lazy dog") == tok.encode("lazy dog")
    # the weights file alone is a complete checkpoint (what a user downloads)
    alone = ckpt.load_checkpoint(path / ckpt.WEIGHTS)
    torch.testing.assert_close(alone.model(idx)[0], model(idx)[0])


@pytest.mark.parametrize("name", ["..", "../evil", "a/b", "/etc/passwd", "", ".hidden", "x" * 65, "bad name", "naïve", "a..b"])
def test_run_names_cannot_escape(tmp_path, name):
    with pytest.raises(CheckpointError, match="not allowed"):
        ckpt.run_dir(name, root=tmp_path)


def test_good_run_name_stays_inside_root(tmp_path):
    assert ckpt.run_dir("my-run_1.0", root=tmp_path) == (tmp_path / "my-run_1.0").resolve()


def test_pickle_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.safetensors"
    with open(bad, "wb") as f:
        pickle.dump({"model": Evil()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="pickle"):
        ckpt.load_checkpoint(bad)
    zipped = tmp_path / "torchsave.safetensors"
    torch.save({"w": torch.zeros(3)}, zipped)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        ckpt.load_checkpoint(zipped)
    assert not marker.exists()


def test_truncated_and_corrupt_files_get_clear_errors(tmp_path):
    path, _, _ = saved_run(tmp_path)
    blob = (path / ckpt.WEIGHTS).read_bytes()
    (path / ckpt.WEIGHTS).write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        ckpt.load_checkpoint(path)
    (path / ckpt.WEIGHTS).write_bytes(blob[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        ckpt.load_checkpoint(path)
    (path / ckpt.WEIGHTS).write_bytes(blob[:8] + b"{not json" + blob[17:])
    with pytest.raises(CheckpointError, match="corrupt header"):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="missing"):
        ckpt.load_checkpoint(tmp_path / "nothing-here")


def _rewrite_embedded_meta(path, change):
    from safetensors.torch import load_file, save_file

    meta = ckpt.read_meta(path / ckpt.WEIGHTS)
    change(meta)
    tensors = load_file(path / ckpt.WEIGHTS)
    save_file(tensors, path / ckpt.WEIGHTS, metadata={"gpt_config": json.dumps(meta)})
    (path / ckpt.CONFIG).write_text(json.dumps(meta))


def test_vocab_size_that_does_not_match_the_weights(tmp_path):
    path, _, _ = saved_run(tmp_path)

    def grow(meta):
        meta["model"]["vocab_size"] += 5
        meta["tokenizer"]["chars"] += "ABCDE"

    _rewrite_embedded_meta(path, grow)
    with pytest.raises(CheckpointError, match="does not match the weights|shape"):
        ckpt.load_checkpoint(path)


def test_tokenizer_and_model_vocab_disagree(tmp_path):
    path, _, _ = saved_run(tmp_path)
    _rewrite_embedded_meta(path, lambda m: m["tokenizer"].update(chars=m["tokenizer"]["chars"][:-1]))
    with pytest.raises(CheckpointError, match="do not belong together"):
        ckpt.load_checkpoint(path)


def test_newer_format_version_is_refused(tmp_path):
    path, _, _ = saved_run(tmp_path)
    _rewrite_embedded_meta(path, lambda m: m.update(format_version=ckpt.FORMAT_VERSION + 1))
    with pytest.raises(CheckpointError, match="newer than this program"):
        ckpt.load_checkpoint(path)


def test_torn_config_json_falls_back_to_the_embedded_copy(tmp_path):
    path, model, tok = saved_run(tmp_path)
    (path / ckpt.CONFIG).write_text('{"step": 3, "mod')
    assert ckpt.load_checkpoint(path).step == 7


def test_unwritable_folder_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path, model, tok = saved_run(tmp_path)
    before = (path / ckpt.WEIGHTS).read_bytes()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint is unchanged"):
        ckpt.save_checkpoint(path, model, model.config, tok, step=99)
    assert (path / ckpt.WEIGHTS).read_bytes() == before
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]  # no litter
    assert ckpt.load_checkpoint(path).step == 7


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_folder_gives_clear_error(tmp_path):  # pragma: no cover - CI runs as root
    path, model, tok = saved_run(tmp_path)
    path.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="Cannot write"):
            ckpt.save_checkpoint(path, model, model.config, tok, step=8)
    finally:
        path.chmod(0o700)


def test_metrics_skip_a_torn_last_line(tmp_path):
    ckpt.append_metrics(tmp_path, {"step": 1, "val_loss": 2.0})
    with open(tmp_path / ckpt.METRICS, "a") as f:
        f.write('{"step": 2, "val_lo')
    assert ckpt.read_metrics(tmp_path) == [{"step": 1, "val_loss": 2.0}]


SAVER = """
import sys, torch
from gpt import checkpoint as ckpt
from gpt.model import GPTConfig, build_model
from gpt.tokenizer import CharTokenizer
tok = CharTokenizer.from_text("abcdefgh")
cfg = GPTConfig(vocab_size=8, block_size=64, n_layer=4, n_head=4, n_embd=128)
model = build_model(cfg)
step = 0
while True:
    step += 1
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(step % 1000 / 1000)
    ckpt.save_checkpoint(sys.argv[1], model, cfg, tok, step=step)
    if step == 1:  # the kills below land during later saves, however slowly a busy machine made the first
        print("ready", flush=True)
"""


def test_sigkill_during_saves_leaves_a_loadable_checkpoint(tmp_path):
    """Kill a process that saves in a tight loop, many times, at varied moments."""
    run = tmp_path / "run"
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(run)], cwd=ROOT, stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.4 + 0.13 * attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded = ckpt.load_checkpoint(run)  # must never raise
        value = loaded.model.transformer.h[0].mlp.c_fc.weight.flatten()[0].item()
        assert value == pytest.approx(loaded.step % 1000 / 1000)  # weights and step belong together
