"""Issue 13, finding 13: a real full disk, a read-only folder and a kill -9 mid-save.

Where this machine lets the test mount a tmpfs (as root), the disk is really full (3 MB) and the
folder really read-only; elsewhere the same errors are raised where the real ones would be.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors import SafetensorError

from gpt import checkpoint as ckpt
from gpt.errors import CheckpointError
from gpt.model import GPTConfig, build_model
from gpt.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parent.parent
TOK = CharTokenizer.from_text("abcdefgh")
SMALL = GPTConfig(vocab_size=8, n_layer=1, n_head=1, n_embd=8, block_size=8)
BIG = GPTConfig(vocab_size=8, n_layer=4, n_head=4, n_embd=256, block_size=8)  # ~12 MB: over a 3 MB disk


def _mount(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or os.environ.get("GPT_TESTS_SIMULATE_FAULTS"):  # the second: to test the simulation
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    folder = tmp_path / "disk"
    real = _mount(folder, "size=3m")
    if not real:
        def full(*a, **k):  # what safetensors raises when the disk fills
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        real_save = ckpt.save_file
        monkeypatch.setattr(ckpt, "save_file", lambda t, p, metadata=None: full() if sum(
            v.numel() for v in t.values()) > 100_000 else real_save(t, p, metadata=metadata))
    yield folder
    if real:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_is_a_sentence_and_the_last_good_checkpoint_survives(small_disk):
    run = small_disk / "run"
    ckpt.save_checkpoint(run, build_model(SMALL), SMALL, TOK, step=1)
    with pytest.raises(CheckpointError) as info:
        ckpt.save_checkpoint(run, build_model(BIG), BIG, TOK, step=2)
    message = str(info.value)
    assert message == ("Saving model.safetensors failed: the disk is full (No space left on device). "
                       "The previous checkpoint is unchanged.")  # was: SafetensorError: ... os error 28
    assert str(small_disk) not in message
    assert ckpt.load_checkpoint(run).step == 1
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "model.safetensors"]  # no half save left


def test_a_read_only_folder_is_a_sentence_without_a_server_path(tmp_path, monkeypatch):
    folder = tmp_path / "readonly"
    real = _mount(folder, "ro,size=1m")
    if not real:
        def refuse(*a, **k):
            raise PermissionError(13, "Permission denied", str(folder / ".model.safetensors.x.tmp"))
        monkeypatch.setattr(ckpt.tempfile, "mkstemp", refuse)
    try:
        with pytest.raises(CheckpointError) as info:
            ckpt.save_checkpoint(folder / "run" if not real else folder, build_model(SMALL), SMALL, TOK, step=1)
        message = str(info.value)
        assert "not writable" in message and str(tmp_path) not in message and "/" not in message
    finally:
        if real:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_stale_temp_files_of_killed_saves_are_cleaned_and_nothing_else(tmp_path):
    run = tmp_path / "runs" / "r"
    ckpt.save_checkpoint(run, build_model(SMALL), SMALL, TOK, step=1)
    ours, theirs, fresh = run / ".model.safetensors.k2j3h4g5.tmp", run / ".tmpAb3dE9", run / ".config.json.zz99yy88.tmp"
    keep = [run / "notes.tmp", run / ".tmp-notes", tmp_path / "runs" / "corpus.txt"]
    for p in (ours, theirs, fresh, *keep):
        p.write_bytes(b"half a save")
    for p in (ours, theirs, *keep):
        _age(p, 3600)
    assert sorted(ckpt.clean_stale_temp_files(tmp_path / "runs")) == sorted([ours.name, theirs.name])
    assert fresh.exists() and all(p.exists() for p in keep)  # a save in progress elsewhere is left alone
    assert ckpt.load_checkpoint(run).step == 1
    assert ckpt.clean_stale_temp_files(tmp_path / "runs", older_than_s=0) == [fresh.name]
    assert ckpt.clean_stale_temp_files(tmp_path / "missing") == []


SAVER = """
import sys, torch
from safetensors.torch import save_file
from gpt import checkpoint as ckpt
ckpt.atomic_write(ckpt.Path(sys.argv[1]) / ckpt.WEIGHTS, lambda tmp: save_file({"w": torch.ones(60_000_000)}, tmp))
"""


def test_a_kill_during_a_real_save_leaves_files_that_start_up_cleans(tmp_path):
    run = tmp_path / "runs" / "r"
    ckpt.save_checkpoint(run, build_model(SMALL), SMALL, TOK, step=1)
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(run)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(p.name.startswith(".tmp") for p in run.iterdir()):
            time.sleep(0.01)  # safetensors writes its own .tmpXXXXXX, then renames it onto ours
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    left = [p.name for p in run.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".tmp")]
    assert left, "the kill came too late to leave a half save"
    assert sorted(ckpt.clean_stale_temp_files(tmp_path / "runs", older_than_s=0)) == sorted(left)
    assert ckpt.load_checkpoint(run).step == 1
