"""Issue 13, findings 7, 9, 11, 13 and 14: a stranger's checkpoint is checked before anything is allocated.

Each file here is what an attacker (or a damaged download) could upload: its header and its embedded
config are checked, against the server's limits too, before the model is built or a weight is read.
"""

import base64
import json
import os
import time

import pytest

from gpt import checkpoint as ckpt
from gpt.checkpoint_check import check_checkpoint
from gpt.errors import CheckpointError, GPTError, TokenizerError
from gpt.limits import Limits
from gpt.model import GPTConfig, build_model
from gpt.tokenizer import CharTokenizer
from gpt.tokenizers import tokenizer_from_spec

TEXT = "hello world, a small corpus.\n" * 4


def save_run(folder, **model_kw):
    tok = CharTokenizer.from_text(TEXT)
    cfg = GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=16, **model_kw)
    ckpt.save_checkpoint(folder, build_model(cfg), cfg, tok, step=3, train={"batch_size": 4, "max_iters": 10})
    return folder / ckpt.WEIGHTS


def split(path):
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def rewrite(path, header, data=None, out=None):
    old_header, old_data = split(path)
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    out = out or path.with_name("hostile.safetensors")
    out.write_bytes(len(raw).to_bytes(8, "little") + raw + (old_data if data is None else data))
    return out


def with_meta(path, change):
    header, _ = split(path)
    meta = json.loads(header["__metadata__"]["gpt_config"])
    change(meta)
    header["__metadata__"]["gpt_config"] = json.dumps(meta)
    return rewrite(path, header)


@pytest.fixture
def weights(tmp_path):
    return save_run(tmp_path / "run")


def refused_quickly(fn, match):
    t0 = time.perf_counter()
    with pytest.raises(GPTError, match=match) as info:
        fn()
    assert time.perf_counter() - t0 < 30  # seconds even on a loaded machine; building the model took minutes
    assert "/" not in str(info.value).replace("n_embd / n_head", "")  # never a server path
    return str(info.value)


# --- finding 7 and 9: the config is held against the limits before anything is built ------------

@pytest.mark.parametrize("change, match", [
    (lambda m: m["model"].update(block_size=10**9), "block_size"),
    (lambda m: m["model"].update(block_size=2 * 10**7), "block_size"),
    (lambda m: m["model"].update(n_layer=10**6), "n_layer"),
    (lambda m: m["model"].update(block_size=10**9, pos_emb="rope"), "block_size"),
    (lambda m: m["train"].update(batch_size=200_000), "GPT_MAX_BATCH_SIZE"),
    (lambda m: m["train"].update(sample_tokens=10**9), "sample_tokens"),
    (lambda m: m["train"].update(sample_tokens=2_000, eval_interval=0), "eval_interval"),
    (lambda m: m["train"].update(max_iters="abc"), "max_iters"),
])
def test_an_uploaded_config_over_the_limits_is_refused_before_anything_is_built(weights, monkeypatch, change, match):
    hostile = with_meta(weights, change)
    monkeypatch.setattr("gpt.checkpoint_check.build_model", lambda *a: pytest.fail("a model was built"))
    refused_quickly(lambda: check_checkpoint(hostile, Limits()), match)
    monkeypatch.undo()
    refused_quickly(lambda: ckpt.load_checkpoint(hostile, limits=Limits()), match)


@pytest.mark.parametrize("change", [
    lambda m: m["model"].update(block_size=10**9),
    lambda m: m["model"].update(block_size=10**6, pos_emb="rope"),
    lambda m: m["model"].update(n_layer=10**6),
    lambda m: m["model"].update(n_layer=900),
])
def test_without_limits_the_loader_still_allocates_only_what_the_file_holds(weights, change):
    # the CLI loads the user's own files without a server's limits: the shapes must still match the file
    refused_quickly(lambda: ckpt.load_checkpoint(with_meta(weights, change)), "n_layer|block_size|shape|missing|rotary|layers")


def test_a_checkpoint_within_the_limits_loads(weights):
    loaded = ckpt.load_checkpoint(weights, limits=Limits())
    assert loaded.step == 3 and loaded.model_config.n_layer == 1


# --- finding 14: malformed headers and metadata are sentences -------------------------------------

def _first(header):
    return next(k for k in header if k != "__metadata__")


@pytest.mark.parametrize("edit, match", [
    (lambda h: [1, 2, 3], "not a JSON object"),
    (lambda h: b"[" * 100_000 + b"]" * 100_000, "corrupt header"),
    (lambda h: {**h, "__metadata__": [1]}, "__metadata__"),
    (lambda h: {**h, "__metadata__": {"gpt_config": 5}}, "__metadata__"),
    (lambda h: {**h, _first(h): {**h[_first(h)], "data_offsets": [-4, 8]}}, "bad data offsets"),
    (lambda h: {**h, _first(h): {**h[_first(h)], "data_offsets": [8, 4]}}, "bad data offsets"),
    (lambda h: {**h, _first(h): {**h[_first(h)], "data_offsets": ["0", 4]}}, "bad data offsets"),
    (lambda h: {**h, _first(h): {**h[_first(h)], "data_offsets": [0, 10**15]}}, "bytes of data"),
    (lambda h: {**h, _first(h): {**h[_first(h)], "dtype": "Q7"}}, "unknown dtype"),
    (lambda h: {**h, _first(h): {**h[_first(h)], "shape": ["a"]}}, "shape"),
    (lambda h: {**h, _first(h): {**h[_first(h)], "shape": [10**9, 10**9]}}, "bytes of data"),
    (lambda h: {**h, _first(h): "x"}, "not an object"),
])
def test_malformed_safetensors_headers_are_sentences(weights, edit, match):
    header, _ = split(weights)
    refused_quickly(lambda: ckpt.load_checkpoint(rewrite(weights, edit(header))), match)


def test_overlapping_tensors_are_refused(weights):
    header, _ = split(weights)
    names = [k for k in header if k != "__metadata__"]
    a, b = header[names[0]], header[names[1]]
    if a["data_offsets"][1] - a["data_offsets"][0] == b["data_offsets"][1] - b["data_offsets"][0]:
        b["data_offsets"] = list(a["data_offsets"])
    else:
        b["data_offsets"] = [a["data_offsets"][0], a["data_offsets"][0] + b["data_offsets"][1] - b["data_offsets"][0]]
    refused_quickly(lambda: ckpt.load_checkpoint(rewrite(weights, header)), "overlap")


def test_integer_weights_are_refused(weights):
    header, data = split(weights)
    name = _first(header)
    header[name]["dtype"] = "I32"  # same size as F32: only the dtype check can catch it
    refused_quickly(lambda: ckpt.load_checkpoint(rewrite(weights, header, data)), "not as floating point")


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(model=[1, 2]), "'model' setting must be a JSON object"),
    (lambda m: m.update(tokenizer="char"), "'tokenizer' setting must be a JSON object"),
    (lambda m: m.update(step="abc"), "step must be a whole number"),
    (lambda m: m.update(step=-1), "step"),
    (lambda m: m["tokenizer"].update(chars=5), "character tokenizer's description"),
    (lambda m: m.update(format_version="1"), "format_version '1' is not a whole number"),
    (lambda m: m.update(format_version=[1]), "format_version"),
    (lambda m: m.update(train=[1]), "'train' setting must be a JSON object"),
    (lambda m: m["model"].update(n_head="two"), "n_head"),
    (lambda m: m["model"].pop("n_head") and m["model"].update(bogus=1), "Unknown model settings: bogus"),
    (lambda m: m.update(elapsed_s="long"), "elapsed_s"),
])
def test_malformed_config_metadata_is_a_sentence(weights, change, match):
    message = refused_quickly(lambda: ckpt.load_checkpoint(with_meta(weights, change)), match)
    assert "newer than this program" not in message


def test_a_config_that_is_not_json_is_a_sentence(weights):
    header, _ = split(weights)
    header["__metadata__"]["gpt_config"] = "{not json"
    refused_quickly(lambda: ckpt.read_meta(rewrite(weights, header)), "not JSON")


# --- finding 11: a hostile trained-BPE description never reaches tiktoken's regex engine ---------------

HOSTILE_PATTERN = r"(.|..)+(?=\x00)\1x|."  # tiktoken panics (PanicException, a BaseException) on it


def _bpe_spec(**over):
    spec = {"type": "bpe", "pattern": None, "tokens": [base64.b64encode(b"he").decode(), base64.b64encode(b"hel").decode()],
            "version": 1, "kept_ids": None}
    from gpt.bpe import GPT4_PATTERN

    spec["pattern"] = GPT4_PATTERN
    spec.update(over)
    return spec


def test_a_trained_bpe_spec_we_wrote_rebuilds():
    tok = tokenizer_from_spec(_bpe_spec())
    assert tok.vocab_size == 258 and tok.decode(tok.encode("hello")) == "hello"


@pytest.mark.parametrize("over, match", [
    (dict(pattern=HOSTILE_PATTERN), "split pattern this program never writes"),
    (dict(pattern=5), "split pattern"),
    (dict(tokens="abc"), "must be a list"),
    (dict(tokens=[base64.b64encode(b"x" * 5000).decode()]), "5,000 bytes"),
    (dict(tokens=[base64.b64encode(b"a").decode()]), "of 1 bytes"),
    (dict(tokens=[base64.b64encode(b"he").decode()] * 2), "repeats a token"),
    (dict(tokens=[base64.b64encode(b"abc").decode()]), "not a merge of two earlier tokens"),
    (dict(tokens=[7]), "base64"),
    (dict(tokens=["@@@"]), "not base64"),
    (dict(tokens=[base64.b64encode(b"he").decode()] * 20_000), "20,000 tokens"),
    (dict(kept_ids=[5, 3]), "kept_ids"),
    (dict(kept_ids=[0, 10**9]), "kept_ids"),
])
def test_hostile_trained_bpe_descriptions_are_refused_with_a_sentence(over, match):
    with pytest.raises(TokenizerError, match=match):
        tokenizer_from_spec(_bpe_spec(**over))


def test_whatever_escapes_tiktoken_becomes_a_sentence():
    import tiktoken

    from gpt.bpe import BPETokenizer

    ranks = {bytes([b]): b for b in range(256)}
    enc = tiktoken.Encoding(name="x", pat_str=HOSTILE_PATTERN, mergeable_ranks=ranks, special_tokens={})
    tok = BPETokenizer(enc, {"type": "bpe", "pattern": HOSTILE_PATTERN, "tokens": []}, kept=list(range(256)))  # as if
    # the pattern check had been bypassed
    for call in (tok.encode, tok.pieces):
        with pytest.raises(TokenizerError, match="BPE tokenizer failed"):
            call("hello world " * 3)


def test_an_uploaded_checkpoint_with_a_hostile_split_pattern_is_refused(weights):
    def to_bpe(meta):
        meta["tokenizer"] = _bpe_spec(pattern=HOSTILE_PATTERN)
        meta["model"]["vocab_size"] = 258

    refused_quickly(lambda: check_checkpoint(with_meta(weights, to_bpe), Limits()), "split pattern")


# --- finding 13: a FIFO or a folder where the weights should be ------------------------------------------

def test_a_fifo_or_a_folder_as_the_weights_is_refused_not_waited_on(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / ckpt.WEIGHTS)
    refused_quickly(lambda: ckpt.load_checkpoint(run), "not a regular file")
    refused_quickly(lambda: ckpt.read_meta(run / ckpt.WEIGHTS), "not a regular file")
    (tmp_path / "dir.safetensors").mkdir()
    refused_quickly(lambda: ckpt.read_meta(tmp_path / "dir.safetensors"), "is a folder")


def test_a_fifo_as_config_json_is_skipped_not_waited_on(weights):
    (weights.parent / ckpt.CONFIG).unlink()
    os.mkfifo(weights.parent / ckpt.CONFIG)
    t0 = time.perf_counter()
    assert ckpt.load_checkpoint(weights.parent).step == 3
    assert time.perf_counter() - t0 < 30  # a read of the FIFO would wait forever
