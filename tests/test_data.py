import hashlib

import pytest
import torch

from gpt import data
from gpt.data import Dataset, addition_corpus, load_corpus, read_text_file
from gpt.errors import DataError
from gpt.tokenizer import CharTokenizer


def make_dataset(text="hello world, " * 50):
    return Dataset(text, CharTokenizer.from_text(text), name="t")


def test_split_is_90_10_and_batches_are_shifted_windows():
    ds = make_dataset()
    assert len(ds.train_data) == int(0.9 * len(ds.data))
    assert len(ds.train_data) + len(ds.val_data) == len(ds.data)
    g = torch.Generator().manual_seed(0)
    x, y = ds.get_batch("train", 4, 8, generator=g)
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    # every row is a real window of the training data
    for row_x, row_y in zip(x, y):
        window = torch.cat([row_x, row_y[-1:]])
        found = any(torch.equal(ds.train_data[i : i + 9], window) for i in range(len(ds.train_data) - 8))
        assert found


def test_val_batches_come_from_the_val_split_only():
    text = "a" * 900 + "b" * 100  # val split is all 'b'
    ds = Dataset(text, CharTokenizer.from_text(text))
    x, _ = ds.get_batch("val", 8, 10)
    assert set(x.flatten().tolist()) == {ds.tokenizer.stoi["b"]}


def test_too_short_corpus_names_the_split_and_sizes():
    ds = make_dataset("abcdefghij" * 3)
    with pytest.raises(DataError, match=r"validation split has 3 tokens but a block size of 64 needs at least 65"):
        ds.check_block_size(64)


@pytest.mark.parametrize("text, message", [("", "empty"), ("   \n\t ", "only whitespace")])
def test_empty_and_blank_corpora_are_refused(text, message):
    from gpt import corpus as corpora

    with pytest.raises(DataError, match=message):
        corpora.load("paste", pasted=text)


def test_binary_non_utf8_and_oversized_files(tmp_path):
    png = tmp_path / "photo.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    with pytest.raises(DataError, match="binary"):
        read_text_file(png)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_text_file(latin)
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000)
    with pytest.raises(DataError, match="over the"):
        read_text_file(big, max_bytes=1000)
    assert read_text_file(big, max_bytes=5000) == "x" * 2000
    with pytest.raises(DataError, match="No text file"):
        read_text_file(tmp_path / "missing.txt")


def test_synthetic_addition_is_correct_arithmetic():
    lines = addition_corpus(n=200).splitlines()
    assert len(lines) == 200
    for line in lines:
        lhs, rhs = line.split("=")
        a, b = lhs.split("+")
        assert int(a) + int(b) == int(rhs)
    name, text = load_corpus("addition")
    assert name == "addition" and "+" in text


def test_unknown_corpus_gets_a_clear_message():
    with pytest.raises(DataError, match="Unknown corpus 'nope'"):
        load_corpus("nope")


def test_shakespeare_download_offline_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data, "SHAKESPEARE_URL", "http://127.0.0.1:9/input.txt")  # nothing listens there
    with pytest.raises(DataError, match=str(tmp_path / "tinyshakespeare.txt")):
        data.download_shakespeare(timeout=5)


def test_shakespeare_checksum_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_DATA_DIR", str(tmp_path))
    (tmp_path / "tinyshakespeare.txt").write_text("not shakespeare")
    with pytest.raises(DataError, match="sha256"):
        data.download_shakespeare()


def test_shared_shakespeare_matches_its_checksum(shakespeare_text):
    assert len(shakespeare_text) == 1_115_394
    assert hashlib.sha256(shakespeare_text.encode()).hexdigest() == data.SHAKESPEARE_SHA256
    assert load_corpus("shakespeare")[1] == shakespeare_text


def _no_network(*args, **kwargs):
    raise AssertionError("the network was used")


def test_shakespeare_ships_with_the_package_and_a_run_trains_offline(tmp_path, monkeypatch, capsys):
    import socket
    import urllib.request

    from gpt import checkpoint as ckpt
    from gpt.lesson.__main__ import main as lesson_main
    from gpt.train.cli import main as train_main

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("GPT_DATA_DIR", str(empty))
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    name, text = load_corpus("shakespeare")
    assert name == "shakespeare" and hashlib.sha256(text.encode()).hexdigest() == data.SHAKESPEARE_SHA256
    out = tmp_path / "run"
    assert train_main(["--data", "shakespeare", "--tokenizer", "char", "--preset", "tiny", "--max-iters", "4",
                       "--eval-interval", "4", "--eval-iters", "1", "--sample-tokens", "0", "--out", str(out)]) == 0
    rows = [r for r in ckpt.read_metrics(out) if r.get("val_loss") is not None]
    assert rows and rows[-1]["step"] == 4 and (out / ckpt.WEIGHTS).exists()
    assert lesson_main(["--data", "shakespeare", "--step", "data", "--no-code"]) == 0
    assert "First Citizen" in capsys.readouterr().out
    assert list(empty.iterdir()) == []  # nothing downloaded, nothing written beside the user's data


def test_a_copy_in_the_data_dir_wins_and_a_damaged_shipped_copy_falls_back_to_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_DATA_DIR", str(tmp_path))
    (tmp_path / "tinyshakespeare.txt").write_text("not shakespeare")
    with pytest.raises(DataError, match="sha256"):
        load_corpus("shakespeare")  # the user's copy is used, and held to the checksum
    (tmp_path / "tinyshakespeare.txt").unlink()
    damaged = tmp_path / "damaged.txt.gz"
    damaged.write_bytes(b"\x1f\x8b not gzip")
    monkeypatch.setattr(data, "SHIPPED_SHAKESPEARE", damaged)
    monkeypatch.setattr(data, "SHAKESPEARE_URL", "http://127.0.0.1:9/input.txt")  # nothing listens there
    with pytest.raises(DataError, match="Could not download Tiny Shakespeare"):
        data.shakespeare_text()


def test_the_shipped_corpus_is_not_left_out_of_the_checkout():
    """It ships with a clone: git must not ignore it (a `data/` rule once hid everything named data)."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (data.SHIPPED_SHAKESPEARE.parents[2] / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(data.SHIPPED_SHAKESPEARE)],
                             cwd=data.SHIPPED_SHAKESPEARE.parents[2], timeout=30)
    assert ignored.returncode == 1 and data.SHIPPED_SHAKESPEARE.stat().st_size < 500_000


def test_the_same_text_under_another_name_is_called_by_its_own_name():
    """The encoded-dataset cache is keyed by the text: a text pasted, then uploaded as tiny.txt, is encoded once,
    but the upload's statistics say 'tiny', not 'pasted'."""
    from gpt import corpus as corpora

    text = "A text a student pasted first and then uploaded as a file, word for word. " * 30
    pasted = corpora.dataset(corpora.Corpus("pasted", text, "text"), "char")
    uploaded = corpora.dataset(corpora.Corpus("tiny", text, "text"), "char")
    assert (pasted.name, uploaded.name) == ("pasted", "tiny")
    assert uploaded.data is pasted.data and uploaded.tokenizer is pasted.tokenizer  # encoded once
    assert corpora.stats_markdown(uploaded).startswith("**tiny** with")
    assert corpora.dataset(corpora.Corpus("pasted", text, "text"), "char").name == "pasted"
