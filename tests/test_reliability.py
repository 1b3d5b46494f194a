"""Every bad input gets a sentence, faults lose nothing: the rows of docs/reliability.md.

Three levels, as each row needs:
- the logic (gpt/ and the Gradio handlers called as plain functions);
- the app: one server in this process (so a test can inject a fault into a
  training thread), driven through its named API by `gradio_client`, and the
  upload route over plain HTTP;
- faults that need a real process to die (SIGKILL) are in test_app_faults.py,
  the load test in test_load.py.

Rows already covered elsewhere are listed with their tests in docs/reliability.md;
the tests here fill the gaps and check each protection end to end.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import struct
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.data import DEFAULT_MAX_BYTES, Dataset, addition_corpus, read_text_file
from gpt.errors import CheckpointError, ConfigError, DataError, GPTError, SamplingError, TrainingError
from gpt.model import GPTConfig, build_model
from gpt.jobs.folder import mark_interrupted
from gpt.jobs import JobManager
from gpt.tokenizer import CharTokenizer
from gpt.train import Trainer
from gpt.train import TrainConfig
from gpt.jobs import sampling as gen
from gpt.ui import frames as plots
from gpt.limits import Limits

from helpers_app import SLIDERS, addition, launch_app, tiny_request, wait_until

pytestmark = pytest.mark.timeout(120)
LIMITS = Limits(max_concurrent_jobs=1, max_params=2_000_000, max_iters=20_000, max_batch_size=64, max_upload_mb=1,
                max_new_tokens=5_000)


# --- shared pieces ---------------------------------------------------------------------------------


def make_run(folder: Path, steps: int = 5) -> Path:
    """A small finished run on the addition corpus, with no app.json: everyone may sample it."""
    text = addition_corpus(n=3000)
    ds = Dataset(text, CharTokenizer.from_text(text), name="addition")
    cfg = GPTConfig(vocab_size=ds.tokenizer.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
    train = TrainConfig(batch_size=8, max_iters=steps, eval_interval=steps, eval_iters=1, sample_tokens=0, device="cpu")
    assert Trainer(cfg, train, ds, folder, meta={"corpus": "addition", "data_source": "addition"}).run() == "finished"
    return folder


def loaded_model() -> gen.Loaded:
    tok = CharTokenizer.from_text("abc def\n")
    torch.manual_seed(0)
    model = build_model(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()
    return gen.Loaded(model, tok, step=0, live=False)


def evil_pickle_payload(marker: Path):
    class Evil:  # unpickling this runs a shell command that creates `marker`
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return {"model": Evil(), "weights": torch.zeros(2)}


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", LIMITS, device="cpu")
    yield m
    m.shutdown()


@pytest.fixture
def handlers(manager):
    from types import SimpleNamespace

    from gpt.ui.checkpoints_tab import CheckpointHandlers
    from gpt.jobs.sampling import ModelCache
    from gpt.ui.generate_tab import GenerateHandlers
    from gpt.ui.train_tab import TrainHandlers

    return SimpleNamespace(m=manager, train=TrainHandlers(manager), generate=GenerateHandlers(manager, ModelCache()),
                           checkpoints=CheckpointHandlers(manager))


# --- corpus ------------------------------------------------------------------------------------------


def test_upload_limit_defaults_to_50_mb_and_the_message_says_50(tmp_path):
    assert Limits().max_upload_mb == 50 and Limits.from_env({}).max_upload_bytes == 50 * 2**20
    if "GPT_MAX_UPLOAD_MB" not in os.environ:
        assert DEFAULT_MAX_BYTES == 50 * 2**20
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:  # sparse: 50 MB + 1 byte on paper, nothing on disk
        f.truncate(50 * 2**20 + 1)
    with pytest.raises(DataError, match=r"big.txt is 50.0 MB, over the 50 MB limit \(GPT_MAX_UPLOAD_MB\)"):
        read_text_file(big, max_bytes=50 * 2**20)
    with pytest.raises(ConfigError, match=r"is 50.0 MB, over this server's limit of 50 MB"):
        Limits().check_upload(50 * 2**20 + 1)


def test_a_corpus_too_short_for_either_split_names_the_split():
    tok = CharTokenizer.from_text("ab")
    with pytest.raises(DataError, match="training split has 1 tokens but a block size of 8 needs at least 9"):
        Dataset("ab", tok).check_block_size(8)
    text = "abcdefghij" * 3
    with pytest.raises(DataError, match="validation split has 3 tokens .* smaller block size"):
        Dataset(text, CharTokenizer.from_text(text)).check_block_size(8)


def test_bad_corpora_through_the_train_handler(handlers, tmp_path):
    """The page's Start button with each bad corpus: a sentence in the status line, nothing queued."""
    png = tmp_path / "photo.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(300))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1") * 100)
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (LIMITS.max_upload_bytes + 1))
    cases = [(("paste", None, ""), "empty"), (("paste", None, " \n\t "), "only whitespace"),
             (("upload", str(png), None), "binary file"), (("upload", str(latin), None), "not UTF-8"),
             (("upload", str(big), None), "over the 1 MB limit"),
             (("paste", None, "x" * (LIMITS.max_upload_bytes + 1)), "over the 1 MB limit")]
    for (choice, upload, pasted), message in cases:
        with pytest.warns(UserWarning):
            msg = handlers.train.start("alice", choice, upload, pasted, "char", 2048, "tiny", "gpt", "classic",
                                 *SLIDERS, False)
        assert "msg-error" in msg and message in msg, (choice, msg)
        stats, _, _ = handlers.train.describe_corpus(choice, upload, pasted, "char", 2048, "")  # said once: no toast
        assert message in stats or (message == "empty" and stats.startswith("Paste a text above"))
    assert handlers.m.runs.run_names() == []


# --- sampling: one convention for the page and the API -----------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-1.0), "0 or more"),
    (dict(temperature=float("nan")), "must be a number"),
    (dict(temperature=float("inf")), "must be a number"),
    (dict(top_k=-1), r"Top-k must be 0 \(off\)"),
    (dict(top_k=2.5), "Top-k must be a whole number"),
    (dict(top_k=float("nan")), "Top-k must be a whole number"),
    (dict(top_p=0.0), r"top-p must be in \(0, 1\]"),
    (dict(top_p=-0.5), r"top-p must be in \(0, 1\]"),
    (dict(top_p=1.5), r"top-p must be in \(0, 1\]"),
    (dict(top_p=float("nan")), r"top-p must be in \(0, 1\]"),
    (dict(max_new_tokens=0), "at least 1"),
    (dict(max_new_tokens=12.5), "whole number"),
    (dict(max_new_tokens=101), r"cap of 100 \(GPT_MAX_NEW_TOKENS\); ask for 100 or fewer"),
    (dict(seed=float("nan")), "seed must be a whole number"),
])
def test_bad_sampling_values_from_the_page_or_api_are_refused(kwargs, message):
    with pytest.raises(SamplingError, match=message):
        gen.prepare(loaded_model(), gen.SampleRequest("r", **{"max_new_tokens": 10, **kwargs}), 100)


def test_off_values_and_clamps_are_the_same_on_the_page_and_api():
    loaded = loaded_model()
    s = gen.prepare(loaded, gen.SampleRequest("r", "", 10, 0.8, top_k=0, top_p=1.0, seed=-1), 100).settings
    assert (s.top_k, s.top_p, s.seed) == (None, None, None)  # 0 / 1 / -1: off
    prepared = gen.prepare(loaded, gen.SampleRequest("r", "", 10, 0.8, top_k=500, top_p=0.9, seed=3), 100)
    assert prepared.settings.top_k == loaded.tokenizer.vocab_size
    assert any("top-k 500 is above the vocabulary" in n for n in prepared.notes)
    greedy = gen.SampleRequest("r", "abc", 20, temperature=0.0)  # no seed: greedy needs none
    a, b = (list(gen.stream(loaded, gen.prepare(loaded, greedy, 100), interval=0))[-1] for _ in range(2))
    assert a == b and len(a) == 23


def test_the_generate_handler_says_what_it_changed_and_what_is_wrong(handlers, manager):
    """The page's Generate button: notes beside the text, problems as a red sentence (and a toast)."""
    shutil.copytree(make_run(manager.root.parent / "made"), manager.root / "shared-run")
    done = lambda out: out[-1][1]  # noqa: E731 - the status line after the last token
    assert "The prompt is empty, so the sample starts from a newline" in done(
        list(handlers.generate.generate("alice", "shared-run", "", 10, 0.8, 0, 1.0, 1)))
    assert "only its last 16 tokens are used" in done(
        list(handlers.generate.generate("alice", "shared-run", "1+1=2\n" * 10, 10, 0.8, 0, 1.0, 1)))
    assert "top-k 200 is above the vocabulary size 13" in done(
        list(handlers.generate.generate("alice", "shared-run", "1", 10, 0.8, 200, 1.0, 1)))
    for args, message in [(("hello", 10, 0.8, 0, 1.0), "'h'"), (("1", 10, -1.0, 0, 1.0), "0 or more"),
                          (("1", 10, 0.8, -2, 1.0), "Top-k must be 0 (off)"), (("1", 10, 0.8, 0, 0.0), "top-p"),
                          (("1", 5_001, 0.8, 0, 1.0), "GPT_MAX_NEW_TOKENS")]:
        with pytest.warns(UserWarning):
            out = list(handlers.generate.generate("alice", "shared-run", *args, 1))
        assert out == [("", out[0][1])] and "msg-error" in out[0][1] and message in out[0][1], (args, out)


def test_a_double_click_starts_one_run(manager):
    """Five Start requests from one person at the same moment: one run, four sentences, no stray folder."""
    barrier, results = threading.Barrier(5), []

    def click():
        barrier.wait()
        try:
            results.append(manager.start("alice", addition(), tiny_request(20)))
        except GPTError as err:
            results.append(err)

    threads = [threading.Thread(target=click) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    jobs = [r for r in results if not isinstance(r, Exception)]
    assert len(jobs) == 1 and all(isinstance(r, TrainingError) and "already have a run" in str(r)
                                  for r in results if r not in jobs)
    assert manager.runs.run_names() == [jobs[0].name]
    manager.wait(jobs[0].name, 60)


# --- model and training settings ---------------------------------------------------------------------


def test_bad_shapes_sizes_and_limits_through_the_train_handler(handlers):
    def start(*sliders, preset="tiny"):
        with pytest.warns(UserWarning):
            return handlers.train.start("alice", "addition", None, None, "char", 2048, preset, "gpt", "classic", *sliders,
                                  False)

    layers, heads, width, block, dropout, batch, lr, iters, secs = SLIDERS
    assert "divisible by n_head" in start(layers, 4, 30, block, dropout, batch, lr, iters, secs)
    assert "n_layer must be a positive whole number" in start(0, heads, width, block, dropout, batch, lr, iters, secs)
    assert "n_embd must be a positive whole number" in start(layers, heads, -16, block, dropout, batch, lr, iters, secs)
    assert "batch_size must be a positive whole number" in start(layers, heads, width, block, dropout, 0, lr, iters,
                                                                 secs)
    assert "learning rate must be a positive number" in start(layers, heads, width, block, dropout, batch, -1.0, iters,
                                                              secs)
    assert "GPT_MAX_BATCH_SIZE" in start(layers, heads, width, block, dropout, 65, lr, iters, secs)
    assert "GPT_MAX_ITERS" in start(layers, heads, width, block, dropout, batch, lr, 20_010, secs)
    assert "GPT_MAX_PARAMS" in start(6, 6, 384, 256, 0.0, 8, lr, 100, 0, preset="medium")
    assert handlers.m.runs.run_names() == []


def test_a_learning_rate_that_makes_the_loss_nan_stops_the_run_and_keeps_the_checkpoint(manager, handlers):
    job = manager.start("alice", addition(), tiny_request(2000, lr=1e6))
    manager.wait(job.name, 60)
    assert job.state == "failed" and "NaN" in job.error and "learning rate (1e+06)" in job.error
    path = manager.root / job.name
    assert ckpt.read_status(path)["state"] == "failed"
    kept = ckpt.load_checkpoint(path)  # the last good checkpoint loads, with finite weights
    assert kept.step == 0 and all(torch.isfinite(p).all() for p in kept.model.parameters())
    st = manager.runs.status(job.name, "alice")
    assert st.state == "failed" and "try a tenth of it" in plots.progress_html(st)
    out = list(handlers.generate.generate("alice", job.name, "1+", 10, 0.8, 0, 1.0, 1))
    assert out[-1][0].startswith("1+") and "Done" in out[-1][1]  # and it can still be sampled


def test_weights_that_turn_nan_are_never_saved_over_a_good_checkpoint(tmp_path):
    text = addition_corpus(n=3000)
    ds = Dataset(text, CharTokenizer.from_text(text))
    cfg = GPTConfig(vocab_size=ds.tokenizer.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
    t = Trainer(cfg, TrainConfig(batch_size=8, max_iters=100, eval_interval=5, eval_iters=1, sample_tokens=0,
                                 device="cpu"), ds, tmp_path / "run")

    def poison(progress):  # as a NaN that slipped past a loss check (the GPU checks every 10 steps)
        if progress["step"] == 7:
            with torch.no_grad():
                t.model.lm_head.weight.fill_(float("nan"))
            t.request_stop()  # the stop path saves: it must refuse

    t.add_callback("on_step", poison)
    assert t.run() == "failed" and "NaN" in t.error and "step 5" in t.error
    kept = ckpt.load_checkpoint(tmp_path / "run")
    assert kept.step == 5 and all(torch.isfinite(p).all() for p in kept.model.parameters())


# --- checkpoints -------------------------------------------------------------------------------------


def test_pickles_are_refused_at_upload_and_never_unpickled(handlers, tmp_path):
    marker = tmp_path / "pwned"
    files = {}
    files["zip.safetensors"] = lambda p: torch.save(evil_pickle_payload(marker), p)  # torch.save's zip format
    files["legacy.safetensors"] = lambda p: torch.save(evil_pickle_payload(marker), p,
                                                       _use_new_zipfile_serialization=False)
    for proto in (2, 4, 5):
        files[f"pickle{proto}.safetensors"] = lambda p, proto=proto: p.write_bytes(
            pickle.dumps(evil_pickle_payload(marker), protocol=proto))
    files["model.pt"] = lambda p: torch.save(evil_pickle_payload(marker), p)
    for name, write in files.items():
        path = tmp_path / name
        write(path)
        with pytest.warns(UserWarning):
            msg, _, _ = handlers.checkpoints.upload("bob", str(path))
        assert "msg-error" in msg and "never" in msg and ("pickle" in msg or "not a .safetensors" in msg), name
        with pytest.raises(CheckpointError):
            ckpt.load_checkpoint(path)
    assert not marker.exists()  # no pickle was ever loaded
    assert handlers.m.runs.run_names() == []


def test_corrupt_mismatched_and_newer_checkpoints_are_refused_at_upload(handlers, tmp_path):
    good = make_run(tmp_path / "good") / ckpt.WEIGHTS
    blob = good.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])

    def with_header(change):
        h = json.loads(json.dumps(header))
        change(h)
        raw = json.dumps(h).encode()
        return len(raw).to_bytes(8, "little") + raw + blob[8 + n:]

    def with_meta(change):
        def edit(h):
            meta = json.loads(h["__metadata__"]["gpt_config"])
            change(meta)
            h["__metadata__"]["gpt_config"] = json.dumps(meta)
        return with_header(edit)

    def grow_vocab(meta):
        meta["model"]["vocab_size"] += 5
        meta["tokenizer"]["chars"] += "ABCDE"

    first = next(k for k in header if k != "__metadata__")
    nan_payload = bytearray(blob)
    start = 8 + n + header[first]["data_offsets"][0]
    nan_payload[start:start + 4] = b"\x00\x00\xc0\x7f"  # a float32 NaN in the first weight
    cases = {
        "truncated": (blob[: len(blob) // 2], "truncated"),
        "header": (blob[:8] + b"{broken" + blob[15:], "corrupt header"),
        "offsets": (with_header(lambda h: h[first].update(data_offsets=[0, 3])), "bytes of data but its shape"),
        "nan": (bytes(nan_payload), "NaN or infinite values"),
        "vocab": (with_meta(grow_vocab), "does not match the weights|shape"),
        "newer": (with_meta(lambda m: m.update(format_version=ckpt.FORMAT_VERSION + 1)), "newer than this program"),
        "foreign": (with_header(lambda h: h.pop("__metadata__")), "no embedded gpt config"),
    }
    for name, (payload, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(payload)
        with pytest.warns(UserWarning):
            msg, _, _ = handlers.checkpoints.upload("bob", str(path))
        assert "msg-error" in msg and re.search(message, msg), (name, msg)
    assert handlers.m.runs.run_names() == []  # nothing kept
    msg, _, _ = handlers.checkpoints.upload("bob", str(good))
    assert "Uploaded as" in msg  # the intact file is accepted


def test_a_config_json_that_does_not_fit_the_weights_is_refused(tmp_path):
    path = make_run(tmp_path / "run")
    meta = json.loads((path / ckpt.CONFIG).read_text())
    meta["model"]["vocab_size"] += 5
    meta["tokenizer"]["chars"] += "ABCDE"
    (path / ckpt.CONFIG).write_text(json.dumps(meta))  # same step as the weights, so it is the one read
    with pytest.raises(CheckpointError, match=r"wte.weight' has shape \(13, 16\) but the config implies \(18, 16\)"):
        ckpt.load_checkpoint(path)


def test_an_interrupted_run_names_its_last_checkpoint_and_loses_the_half_save(tmp_path):
    path = make_run(tmp_path / "runs" / "r", steps=5)
    ckpt.write_status(path, "running", step=0, pid=2**22 + 7)  # written when it began; that app is gone
    (path / f".{ckpt.WEIGHTS}.abc.tmp").write_bytes(b"half a save")
    assert mark_interrupted(tmp_path / "runs", set()) == ["r"]
    status = ckpt.read_status(path)
    assert status["state"] == "interrupted" and status["step"] == 5 and "step 5" in status["message"]
    assert not list(path.glob(".*.tmp")) and ckpt.load_checkpoint(path).step == 5


# --- faults inside a run -----------------------------------------------------------------------------


def test_disk_full_during_a_save_fails_the_run_and_keeps_the_old_checkpoint(manager, handlers, monkeypatch):
    real_save = ckpt.save_file
    weights_saves = []

    def fills_the_disk(tensors, filename, metadata=None):
        if ckpt.WEIGHTS in Path(filename).name:
            weights_saves.append(filename)
        if len(weights_saves) <= 1:  # the first checkpoint fits, and the next optimizer file
            return real_save(tensors, filename, metadata=metadata)
        with open(filename, "wb") as f:
            f.write(b"\0" * 1000)  # part of the weights, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", fills_the_disk)
    job = manager.start("alice", addition(), tiny_request(100))
    manager.wait(job.name, 60)
    path = manager.root / job.name
    assert job.state == "failed", job.error
    assert "No space left on device" in job.error and "previous checkpoint is unchanged" in job.error
    status = ckpt.read_status(path)
    assert status["state"] == "failed" and "No space left on device" in status["message"]
    st = manager.runs.status(job.name, "alice")
    assert "No space left on device" in st.message and "No space left" in plots.progress_html(st)
    assert len(weights_saves) == 2 and ckpt.load_checkpoint(path).step == 0 and not list(path.glob(".*.tmp"))
    monkeypatch.undo()
    out = list(handlers.generate.generate("alice", job.name, "1+", 10, 0.8, 0, 1.0, 1))
    assert "Done" in out[-1][1]  # the old checkpoint samples
    again = manager.start("alice", addition(), tiny_request(10))  # and the app goes on
    manager.wait(again.name, 60)
    assert again.state == "finished", again.error


# --- the app, through gradio_client --------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "shared-run")
    demo, url = launch_app(root, GPT_MAX_CONCURRENT_JOBS=1, GPT_MAX_PARAMS=2_000_000, GPT_MAX_ITERS=20_000,
                           GPT_MAX_BATCH_SIZE=64, GPT_MAX_UPLOAD_MB=1, GPT_MAX_NEW_TOKENS=5_000)
    yield demo, url
    demo.manager.shutdown()
    demo.close()


@pytest.fixture(scope="module")
def client(app):
    return pytest.importorskip("gradio_client").Client(app[1], verbose=False)


def refused(call, **kw) -> str:
    """The sentence an endpoint answers a bad request with (gr.Error), checked not to be a traceback."""
    with pytest.raises(Exception) as err:
        call(**kw)
    text = str(err.value)
    assert "Traceback" not in text and text.strip(), text
    return text


def ended(client, run: str, token: str, stop: bool = False, timeout: float = 60) -> dict:
    """Wait until `run` is no longer queued, preparing or running (asking it to stop first if `stop`)."""
    if stop:
        try:
            client.predict(run=run, token=token, api_name="/stop_run")
        except Exception:  # noqa: BLE001 - it ended meanwhile
            pass
    return wait_until(lambda: (lambda s: s if s["state"] not in ("queued", "preparing", "running") else None)(
        client.predict(run=run, token=token, api_name="/run_status")), timeout=timeout, every=0.2, what=f"{run} to end")


def test_client_bad_corpora(client, app):
    start = lambda **kw: client.predict(**{"corpus": "text", "preset": "tiny", **kw}, api_name="/start_run")  # noqa: E731
    assert "empty" in refused(start, text="")
    assert "only whitespace" in refused(start, text="   \n\t  ")
    assert "over the 1 MB limit" in refused(start, text="ab\n" * 400_000)
    assert "Unknown corpus" in refused(start, corpus="wikipedia")
    before = client.predict(api_name="/list_runs")
    too_short = refused(start, text="abc" * 10)  # refused at once, with the sentence, and no run is made
    assert "too short" in too_short and "block size" in too_short
    assert client.predict(api_name="/list_runs") == before


def test_an_upload_over_the_limit_is_refused_by_the_server(app):
    url = app[1]
    boundary = "----reliability"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + b"a" * (2 * 2**20) + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{url}gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 413 and "maximum allowed size" in err.value.read().decode()


def test_client_prompts(client):
    gen_ = lambda **kw: client.predict(**{"run": "shared-run", "max_new_tokens": 12, "seed": 1, **kw},  # noqa: E731
                                       api_name="/generate")
    assert len(gen_(prompt="")) >= 10  # an empty prompt starts from a newline
    text = refused(gen_, prompt="hello 1+1")
    assert "never saw" in text and "'h'" in text and "'e'" in text and "'l'" in text and "'o'" in text
    long = "12+34=46\n" * 10  # 90 tokens, the context is 16
    assert gen_(prompt=long).startswith(long)


def test_client_sampling_values(client, app):
    gen_ = lambda **kw: client.predict(**{"run": "shared-run", "prompt": "1", "max_new_tokens": 12, **kw},  # noqa: E731
                                       api_name="/generate")
    assert gen_(temperature=0) == gen_(temperature=0)  # greedy: no seed needed
    assert "0 or more" in refused(gen_, temperature=-1)
    assert "Top-k must be 0 (off)" in refused(gen_, top_k=-3)
    assert "Top-k must be a whole number" in refused(gen_, top_k=2.5)
    assert gen_(top_k=0, seed=2) == gen_(top_k=13, seed=2)  # 0 is off: the same as keeping all 13 tokens
    assert len(gen_(top_k=10_000, seed=2)) == 13  # above the vocabulary: clamped
    for p in (0, -0.1, 1.5):
        assert "top-p must be in (0, 1]" in refused(gen_, top_p=p)
    assert "GPT_MAX_NEW_TOKENS" in refused(gen_, max_new_tokens=5_001)
    assert "at least 1" in refused(gen_, max_new_tokens=0)
    # NaN cannot be written in JSON by gradio_client; a hand-made request can, and gets a sentence too
    for values in ([float("nan"), 0, 1.0], [0.8, 0, float("nan")]):
        assert "must" in raw_call(app[1], "generate", ["shared-run", "1", 12, values[0], values[1], values[2], 1, ""])


def raw_call(url: str, api: str, data: list) -> str:
    """POST /gradio_api/call/<api> with a body gradio_client would refuse to write; returns the error event text."""
    body = json.dumps({"data": data}, allow_nan=True).encode()
    req = urllib.request.Request(f"{url}gradio_api/call/{api}", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(req, timeout=30).read())["event_id"]
    stream = urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event_id}", timeout=60).read().decode()
    assert "event: error" in stream, stream
    assert "Traceback" not in stream
    return stream


def test_client_an_error_in_the_middle_of_a_sample_is_a_sentence(client, monkeypatch):
    import gpt.batching
    import gpt.decode_process

    # the loop in this process, where the broken step below is seen (the decode process's errors come back as
    # the same exceptions: tests/test_decode_process.py)
    monkeypatch.setattr(gpt.decode_process, "process", lambda: None)

    real, steps = gpt.batching.decode_step, []

    def breaks_after_a_token(*args, **kwargs):  # the decode loop's step: one token, then it fails
        steps.append(1)
        if len(steps) > 1:
            raise RuntimeError("the sampler broke")
        return real(*args, **kwargs)

    monkeypatch.setattr(gpt.batching, "decode_step", breaks_after_a_token)
    text = refused(client.predict, run="shared-run", prompt="1", max_new_tokens=12, api_name="/generate")
    assert "went wrong on the server" in text  # a sentence for the person; the details go to the server's log
    assert "RuntimeError" not in text and "Unexpected error" not in text and "Traceback" not in text


def test_client_model_settings(client):
    start = lambda **kw: client.predict(**{"corpus": "addition", "preset": "tiny", **kw}, api_name="/start_run")  # noqa: E731
    assert "divisible by n_head" in refused(start, n_embd=30, n_head=4)
    assert "n_layer must be a positive whole number" in refused(start, n_layer=-1)
    assert "block_size must be a positive whole number" in refused(start, block_size=-8)
    assert "learning rate must be a positive number" in refused(start, lr=-0.1)
    assert "GPT_MAX_BATCH_SIZE" in refused(start, batch_size=1000)
    assert "GPT_MAX_PARAMS" in refused(start, preset="medium")
    assert "GPT_MAX_ITERS" in refused(start, max_iters=20_001)
    assert "max_iters must be a positive whole number" in refused(start, max_iters=-5)


def test_client_nan_learning_rate(client):
    st = client.predict(corpus="addition", preset="tiny", max_iters=2000, lr=1e6, api_name="/start_run")
    final = ended(client, st["name"], st["token"])
    assert final["state"] == "failed" and "NaN" in final["message"] and "learning rate" in final["message"]
    assert "last good checkpoint (step 0) is kept" in final["message"]
    assert client.predict(run=st["name"], prompt="1", max_new_tokens=5, token=st["token"],
                          api_name="/generate").startswith("1")
    client.predict(run=st["name"], token=st["token"], api_name="/delete_run")


BAD_NAMES = ["../x", "/etc/passwd", "naïve", "run\n", ""]  # every other bad name: test_checkpoint.py


def test_client_run_names_never_leave_the_runs_folder(client, app):
    root = app[0].manager.root
    outside = sorted(p.name for p in root.parent.iterdir())
    for name in BAD_NAMES:
        for api, extra in (("/run_status", {}), ("/delete_run", {}), ("/stop_run", {}), ("/resume_run", {}),
                           ("/generate", {"prompt": "1", "max_new_tokens": 5})):
            text = refused(client.predict, run=name, api_name=api, **extra)
            assert "not allowed" in text or (name == "" and "Choose a run" in text) or "no run named" in text, (
                api, name, text)
        if name:
            assert "not allowed" in refused(client.predict, corpus="addition", preset="tiny", name=name,
                                            api_name="/start_run")
    assert sorted(p.name for p in root.parent.iterdir()) == outside  # nothing made or removed beside the root
    assert (root / "shared-run" / ckpt.WEIGHTS).exists()


def test_client_a_config_json_that_does_not_fit_its_weights(client, app):
    root = app[0].manager.root
    shutil.copytree(root / "shared-run", root / "mismatch")
    meta = json.loads((root / "mismatch" / ckpt.CONFIG).read_text())
    meta["model"]["vocab_size"] += 5
    meta["tokenizer"]["chars"] += "ABCDE"
    (root / "mismatch" / ckpt.CONFIG).write_text(json.dumps(meta))
    text = refused(client.predict, run="mismatch", prompt="1", api_name="/generate")
    assert "does not match the weights" in text or "config implies" in text
    shutil.rmtree(root / "mismatch")


def test_client_one_run_per_person_a_queue_and_no_deleting_busy_runs(client, app):
    alice, bob = client, type(client)(app[1], verbose=False)  # two people
    ta = alice.predict(api_name="/new_token")  # who alice is, before she double-clicks
    clicks = [alice.submit(corpus="addition", preset="tiny", max_iters=20_000, max_seconds=0, token=ta,
                           api_name="/start_run")
              for _ in range(2)]  # two at the same moment
    outcomes = []
    for job in clicks:
        try:
            outcomes.append(job.result())
        except Exception as err:  # noqa: BLE001
            outcomes.append(err)
    started = [o for o in outcomes if isinstance(o, dict)]
    assert len(started) == 1 and "already have a run" in str(next(o for o in outcomes if o not in started))
    a = started[0]
    wait_until(lambda: alice.predict(token=ta, run=a["name"], api_name="/run_status")["step"] > 0, timeout=60, what="training")
    assert "already have a run" in refused(alice.predict, token=ta, corpus="addition", preset="tiny", api_name="/start_run")
    b = bob.predict(corpus="addition", preset="tiny", max_iters=20, api_name="/start_run")
    tb = b["token"]
    assert b["state"] == "queued" and b["queue_position"] == 1  # over the server-wide limit: it waits its turn
    assert "stop it before deleting" in refused(alice.predict, token=ta, run=a["name"], api_name="/delete_run")
    assert "There is no run named" in refused(bob.predict, token=tb, run=a["name"], api_name="/delete_run")
    assert "stop it before deleting" in refused(bob.predict, token=tb, run=b["name"], api_name="/delete_run")
    assert ".writer.lock" in os.listdir(app[0].manager.root / a["name"])  # one writer, this app
    assert ended(alice, a["name"], ta, stop=True)["state"] == "stopped"
    assert ended(bob, b["name"], tb)["state"] == "finished"  # its turn came once the slot was free

    job = alice.submit(token=ta, run=a["name"], prompt="1", max_new_tokens=5_000, temperature=1.0, api_name="/generate")
    wait_until(lambda: len(job.outputs()) >= 2 or job.done(), timeout=30, what="the sample to stream")
    assert "sampling" in refused(alice.predict, token=ta, run=a["name"], api_name="/delete_run")  # 5,000 tokens take seconds
    assert not job.done()
    job.cancel()

    def deleted():
        try:
            return alice.predict(token=ta, run=a["name"], api_name="/delete_run") == {"deleted": a["name"]}
        except Exception as err:  # noqa: BLE001 - still sampling until the cancelled stream closes
            assert "sampling" in str(err)
            return False

    wait_until(deleted, timeout=30, every=0.2, what="the run to be deletable")
    assert bob.predict(token=tb, run=b["name"], api_name="/delete_run") == {"deleted": b["name"]}


def test_client_an_exception_in_a_training_thread(client, app, monkeypatch):
    def boom(self):
        raise RuntimeError("the training thread fell over")

    monkeypatch.setattr(Trainer, "_loop", boom)
    st = client.predict(corpus="addition", preset="tiny", max_iters=50, api_name="/start_run")
    final = ended(client, st["name"], st["token"])
    assert final["state"] == "failed" and final["message"] == "RuntimeError: the training thread fell over"
    monkeypatch.undo()
    row = {r["name"]: r for r in client.predict(token=st["token"], api_name="/list_runs")}[st["name"]]
    assert row["state"] == "failed" and "fell over" in row["message"]
    assert client.predict(run="shared-run", prompt="1", max_new_tokens=5, api_name="/generate").startswith("1")
    again = client.predict(corpus="addition", preset="tiny", max_iters=20, api_name="/start_run")
    assert ended(client, again["name"], again["token"])["state"] == "finished"  # the app goes on serving
