"""Every function behind the web page, without a browser or a server.

The job manager (queue, limits, one run per person, one writer per folder,
interrupted and failed runs), the estimates, the corpus and token preview,
the runs table, checkpoint upload and download, sampling, and the Gradio
handlers called as plain functions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.errors import CheckpointError, ConfigError, DataError, GPTError, TokenizerError, TrainingError
from gpt.model import GPTConfig, count_parameters
from gpt.jobs import JobManager, RunRequest, RunStatus
from gpt.jobs import folder as folders
from gpt.jobs import zerogpu
from gpt import corpus as corpora
from gpt import estimate as est
from gpt.jobs import sampling as gen
from gpt.ui import frames as plots, library, pickers, runtime
from gpt import device as devices
from gpt.limits import Limits
from gpt.ui.token_html import preview_html

from helpers_app import SLIDERS, TINY, addition, tiny_request, wait_until

pytestmark = pytest.mark.timeout(120)
BIG = Limits(max_concurrent_jobs=1, max_params=5_000_000, max_iters=1_000_000, max_upload_mb=5, max_new_tokens=500)


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", BIG, device="cpu")
    yield m
    m.shutdown()


def finished(m: JobManager, owner: str, max_iters: int = 20, **kw) -> str:
    job = m.start(owner, addition(), tiny_request(max_iters, **kw))
    m.wait(job.name, 60)
    assert job.state == "finished", job.error
    return job.name


def long_run(m: JobManager, owner: str, **kw):
    """A run that trains until stopped, once it has taken a few steps."""
    job = m.start(owner, addition(), tiny_request(1_000_000, **kw))
    return job


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- requests, limits, runtime -------------------------------------------------------------


def test_request_configs_take_the_preset_and_overrides():
    model, train = RunRequest(preset="fast", max_iters=300, max_seconds=0).configs(65, "cpu")
    assert (model.n_layer, model.n_embd, model.pos_emb) == (4, 128, "rope")  # fast = small shape, modern
    assert train.optimizer == "muon" and train.max_seconds is None and train.max_iters == 300
    assert train.eval_interval == 30  # about ten points on the validation curve
    model, train = RunRequest(preset="fast", architecture="classic", n_layer=2, model_type="bigram").configs(13)
    assert (model.pos_emb, model.n_layer, model.model_type, model.vocab_size) == ("learned", 2, "bigram", 13)
    assert train.max_seconds == 130  # None keeps the preset's limit


def test_request_with_an_impossible_shape_is_a_sentence():
    with pytest.raises(ConfigError, match="divisible"):
        RunRequest(preset="tiny", n_embd=30, n_head=4).configs(65)
    with pytest.raises(ConfigError, match="Unknown preset"):
        RunRequest(preset="huge").configs(65)
    assert RunRequest.from_dict({**TINY, "junk": 1}).n_layer == 1


def test_limits_come_from_the_environment_with_clear_errors():
    lim = Limits.from_env({"GPT_MAX_CONCURRENT_JOBS": "3", "GPT_MAX_PARAMS": "1_000", "GPT_MAX_ITERS": "50",
                           "GPT_MAX_UPLOAD_MB": "2", "GPT_MAX_NEW_TOKENS": "10"})
    assert (lim.max_concurrent_jobs, lim.max_params, lim.max_iters, lim.max_new_tokens) == (3, 1000, 50, 10)
    assert lim.max_upload_bytes == 2 * 1024 * 1024
    with pytest.raises(ConfigError, match="GPT_MAX_PARAMS"):
        lim.check_params(5000)
    with pytest.raises(ConfigError, match="GPT_MAX_ITERS"):
        lim.check_iters(51)
    with pytest.raises(ConfigError, match="GPT_MAX_UPLOAD_MB"):
        lim.check_upload(3 * 1024 * 1024)
    with pytest.raises(ConfigError, match="whole number"):
        Limits.from_env({"GPT_MAX_PARAMS": "lots"})
    with pytest.raises(ConfigError, match="at least 1"):
        Limits.from_env({"GPT_MAX_CONCURRENT_JOBS": "0"})
    assert Limits.from_env({}).max_concurrent_jobs == 1


def test_one_run_at_a_time_on_a_cpu_and_two_on_a_gpu_unless_the_environment_says(tmp_path, monkeypatch):
    monkeypatch.delenv("GPT_MAX_CONCURRENT_JOBS", raising=False)
    assert JobManager(tmp_path / "a", device="cpu").limits.max_concurrent_jobs == 1
    assert JobManager(tmp_path / "b", device="cuda").limits.max_concurrent_jobs == 2
    monkeypatch.setenv("GPT_MAX_CONCURRENT_JOBS", "3")
    assert JobManager(tmp_path / "c", device="cpu").limits.max_concurrent_jobs == 3


def test_zero_gpu_trains_on_the_cpu_and_says_so(monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert zerogpu.zero_gpu() and zerogpu.training_device() == "cpu"
    text = runtime.describe_runtime(Limits())
    assert "ZeroGPU" in text and "CPU" in text
    monkeypatch.setenv("SPACES_ZERO_GPU", "")
    assert not zerogpu.zero_gpu()
    assert "ZeroGPU" not in runtime.describe_runtime(Limits(max_concurrent_jobs=2))


def test_the_page_keeps_a_core_and_its_own_threads_use_one(monkeypatch):
    import threading

    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.delenv("GPT_NUM_THREADS", raising=False)
        assert devices.leave_a_core_for_the_page() == max(1, (os.cpu_count() or 1) - 1)
        monkeypatch.setenv("GPT_NUM_THREADS", "7")
        assert devices.leave_a_core_for_the_page() == 7
        seen = []  # a thread the page starts later (a request's worker) decodes on one intra-op thread
        worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        worker.start()
        worker.join()
        assert seen == [1] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# --- estimates ------------------------------------------------------------------------------


def test_estimates_count_parameters_memory_and_time(monkeypatch):
    monkeypatch.setattr(est, "_speed", {})
    cfg = GPTConfig(vocab_size=65, n_layer=4, n_head=4, n_embd=128, block_size=64)
    n = est.parameters(cfg)
    assert n == count_parameters(cfg)["total"]
    mem = est.training_memory_bytes(cfg, 12)
    assert mem > 16 * n  # weights, grads and two AdamW moments at least
    assert est.training_memory_bytes(cfg, 24) > mem  # activations grow with the batch
    assert est.training_memory_bytes(cfg, 12, "muon") < mem  # one moment on the hidden matrices
    bigram = GPTConfig(vocab_size=65, model_type="bigram")
    assert est.parameters(bigram) == 65 * 65 and est.training_memory_bytes(bigram, 8) > 0
    t1 = est.training_seconds(cfg, 12, 100, 50, 10)
    t2 = est.training_seconds(cfg, 12, 200, 50, 10)
    assert 0 < t1 < t2
    assert est.training_seconds(cfg, 12, 10_000, 250, 20, max_seconds=30) == 30
    est.observe("cpu", 1e15)  # a machine measured to be very fast makes estimates short
    assert est.training_seconds(cfg, 12, 200, 50, 10) < t2


def test_human_formats():
    assert est.human_count(804_224) == "804.2k" and est.human_count(10_700_000) == "10.70M"
    assert est.human_count(65) == "65"
    assert est.human_seconds(130) == "2 min 10 s" and est.human_seconds(5) == "5 s"
    assert est.human_seconds(3700).startswith("1 h") and est.human_seconds(None) == "-"
    assert est.human_bytes(512) == "512 B" and est.human_bytes(3 * 1024 * 1024) == "3.0 MB"


# --- corpus and preview ---------------------------------------------------------------------


def test_corpus_choices_load_with_sentences_for_problems(tmp_path):
    assert corpora.load("addition").source == "addition"
    f = tmp_path / "My Poems!.txt"
    f.write_text("roses are red\n" * 50, encoding="utf-8")
    c = corpora.load("upload", upload_path=str(f))
    assert (c.name, c.source) == ("my-poems", "text")
    assert corpora.load("paste", pasted="hello world " * 40).name == "pasted"
    with pytest.raises(DataError, match="empty"):
        corpora.load("paste", pasted="")
    with pytest.raises(DataError, match="Choose a .txt"):
        corpora.load("upload")
    with pytest.raises(DataError, match="limit"):
        corpora.load("paste", pasted="x" * 2000, max_bytes=1000)
    with pytest.raises(DataError, match="Unknown corpus"):
        corpora.load("wikipedia")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01binary")
    with pytest.raises(DataError, match="binary"):
        corpora.load("upload", upload_path=str(tmp_path / "bin.txt"))


def test_dataset_cache_and_statistics():
    c = addition()
    ds = corpora.dataset(c, "char")
    again = corpora.dataset(corpora.Corpus("again", c.text, "addition"), "char")  # same text: encoded once
    assert again.tokenizer is ds.tokenizer and again.train_data is ds.train_data and again.name == "again"
    s = corpora.stats(ds)
    assert s["vocabulary"] == 13 and s["tokens"] == s["characters"] == len(c.text)
    assert s["train_tokens"] + s["val_tokens"] == s["tokens"]
    md = corpora.stats_markdown(ds)
    assert "| characters |" in md and f"{len(c.text):,}" in md


def test_preview_colours_tokens_and_shows_ids_and_problems():
    tok = corpora.dataset(addition(), "char").tokenizer
    html = preview_html(tok, "12+3=15\n")
    assert html.count('class="tok"') == 8 and "\u23ce" in html  # the newline is visible
    assert 'title="token id' in html and "background:#" in html
    assert "8 tokens" in html
    bad = preview_html(tok, "<b>x</b>")
    assert "tok-error" in bad and "never saw" in bad and "<b>" not in bad  # escaped, a sentence
    long = preview_html(tok, "1+1=2\n" * 50, max_tokens=10)
    assert "more" in long
    assert corpora.sample_sentence("First line\nsecond line\n" * 20, limit=30) == "First line\nsecond line"


# --- the job manager ------------------------------------------------------------------------


def test_a_run_trains_to_the_end_and_is_listed(manager):
    name = finished(manager, "alice")
    path = manager.root / name
    assert name.startswith("addition-char-")
    assert (path / ckpt.WEIGHTS).exists() and not (path / ".writer.lock").exists()
    st = manager.runs.status(name, "alice")
    assert st.state == "finished" and st.step == 20 and st.fraction == 1.0
    assert [r["step"] for r in st.metrics] == [0, 10, 20]
    assert st.val_bpc > 0 and st.best_val_loss == min(r["val_loss"] for r in st.metrics)
    assert len(manager.runs.step_losses(name)) == 20 and st.latest_sample
    rows = manager.runs.list_runs("alice")
    assert rows[0].name == name and rows[0].mine and rows[0].params > 0
    assert manager.runs.current_run("alice") == name
    assert json.loads((path / "app.json").read_text())["owner"] == "alice"


def test_queue_position_with_one_slot_and_stop(manager):
    a = long_run(manager, "alice")
    wait_until(lambda: a.state == "running" and a.trainer is not None and a.trainer.step > 2, what="alice trains")
    b = manager.start("bob", addition(), tiny_request(20))
    assert b.state == "queued" and manager.queue_position(b.name) == 1 and manager.queue_position(b.name) == 1
    c = manager.start("carol", addition(), tiny_request(20))
    assert manager.queue_position(c.name) == 2
    assert manager.runs.status(c.name, "carol").queue_position == 2
    assert "position <b>2</b>" in plots.progress_html(manager.runs.status(c.name, "carol"))
    manager.stop("alice", a.name)
    manager.wait(a.name, 30)
    assert a.state == "stopped"
    manager.wait(b.name, 60)
    assert b.state == "finished", b.error
    manager.wait(c.name, 60)
    assert c.state == "finished"


def test_a_second_run_by_the_same_person_is_refused(manager):
    a = long_run(manager, "alice")
    with pytest.raises(TrainingError, match="already have a run"):
        manager.start("alice", addition(), tiny_request(20))
    assert len(manager.runs.run_names()) == 1  # no folder left by the refusal
    manager.stop("alice", a.name)
    manager.wait(a.name, 30)
    finished(manager, "alice")  # once stopped, a new run is fine


def test_limits_refuse_before_queueing(tmp_path):
    m = JobManager(tmp_path, Limits(max_params=1_000, max_iters=50), device="cpu")
    with pytest.raises(ConfigError, match="GPT_MAX_PARAMS"):
        m.start("alice", addition(), tiny_request(20))
    m = JobManager(tmp_path, Limits(max_iters=50), device="cpu")
    with pytest.raises(ConfigError, match="GPT_MAX_ITERS"):
        m.start("alice", addition(), tiny_request(100))
    with pytest.raises(ConfigError, match="divisible"):
        m.start("alice", addition(), tiny_request(20, n_embd=30, n_head=4))
    with pytest.raises(TrainingError, match="loading"):
        m.start("", addition(), tiny_request(20))
    assert m.runs.run_names() == []


def test_stop_then_resume_continues_from_the_checkpoint(manager):
    job = long_run(manager, "alice", max_seconds=0)
    wait_until(lambda: job.trainer is not None and job.trainer.step >= 5, what="a few steps")
    manager.stop("alice", job.name)
    manager.wait(job.name, 30)
    assert job.state == "stopped"
    saved = ckpt.load_checkpoint(manager.root / job.name).step
    assert saved >= 5
    again = manager.resume("alice", job.name)
    assert again.resume
    wait_until(lambda: again.trainer is not None and again.trainer.step > saved, what="resumed steps")
    manager.stop("alice", job.name)
    manager.wait(job.name, 30)
    assert ckpt.read_metrics(manager.root / job.name)[0]["step"] == 0  # one curve across the resume


def test_resume_of_a_finished_run_trains_more(manager):
    name = finished(manager, "alice", max_iters=10)
    job = manager.resume("alice", name, more_iters=10)
    manager.wait(name, 60)
    assert job.state == "finished", job.error
    assert manager.runs.status(name, "alice").step == 20


def test_cancelling_a_queued_run_trains_nothing_and_leaves_it_to_its_owner_marked_cancelled(manager):
    a = long_run(manager, "alice")
    b = manager.start("bob", addition(), tiny_request(20))
    manager.stop("bob", b.name)
    manager.wait(b.name, 10)
    assert b.state == "stopped" and not (manager.root / b.name / "model.safetensors").exists()
    assert manager.runs.summary(b.name, "bob").end_reason == "cancelled by you while it waited in the queue"
    manager.stop("alice", a.name)


def test_delete_is_refused_while_training_or_sampling_and_for_others(manager):
    a = long_run(manager, "alice")
    wait_until(lambda: a.trainer is not None and a.trainer.step > 0, what="training")
    with pytest.raises(TrainingError, match="stop it before deleting"):
        manager.delete("alice", a.name)
    with pytest.raises(GPTError, match="There is no run named"):  # alice's private run does not exist for bob
        manager.delete("bob", a.name)
    with pytest.raises(GPTError, match="There is no run named"):
        manager.stop("bob", a.name)
    manager.stop("alice", a.name)
    manager.wait(a.name, 30)
    with manager.sampling(a.name):
        with pytest.raises(TrainingError, match="sampling"):
            manager.delete("alice", a.name)
    manager.delete("alice", a.name)
    assert not (manager.root / a.name).exists() and manager.runs.current_run("alice") is None
    with pytest.raises(CheckpointError, match="no run named"):
        manager.delete("alice", a.name)


def test_an_exception_in_the_training_thread_fails_that_run_only(manager, monkeypatch):
    from gpt.train import Trainer

    def boom(self):
        raise RuntimeError("the GPU caught fire")

    monkeypatch.setattr(Trainer, "_loop", boom)
    job = manager.start("alice", addition(), tiny_request(20))
    manager.wait(job.name, 30)
    assert job.state == "failed" and job.error == "RuntimeError: the GPU caught fire"
    st = manager.runs.status(job.name, "alice")
    assert st.state == "failed" and "GPU caught fire" in st.message
    assert ckpt.read_status(manager.root / job.name)["state"] == "failed"
    assert "GPU caught fire" in plots.progress_html(st)
    monkeypatch.undo()
    finished(manager, "alice")  # the manager goes on serving


def test_a_problem_while_preparing_fails_the_run_with_its_sentence(manager, monkeypatch):
    text = corpora.Corpus("pasted", "abc" * 100, "text")  # a too-short text is refused at Start (test_classroom)

    def cannot_encode(*a, **k):
        raise DataError("The corpus 'pasted' could not be encoded.")

    monkeypatch.setattr("gpt.jobs.manager.corpora.dataset", cannot_encode)
    job = manager.start("alice", text, tiny_request(20))
    manager.wait(job.name, 30)
    assert job.state == "failed" and job.error == "The corpus 'pasted' could not be encoded."
    assert (manager.root / job.name / "corpus.txt").read_text() == "abc" * 100  # pasted text is kept for resume


def test_runs_left_running_by_a_dead_app_are_interrupted_and_resumable(manager):
    name = finished(manager, "alice", max_iters=10)
    path = manager.root / name
    ckpt.write_status(path, "running", step=10)
    status = json.loads((path / ckpt.STATUS).read_text())
    status["pid"] = dead_pid()
    (path / ckpt.STATUS).write_text(json.dumps(status))
    (path / ".writer.lock").write_text(str(status["pid"]))  # the dead app's lock, left behind
    restarted = JobManager(manager.root, BIG, device="cpu")
    assert restarted.runs.summary(name).state == "interrupted"
    assert ckpt.read_status(path)["state"] == "interrupted"
    job = restarted.resume("alice", name, more_iters=10)
    restarted.wait(name, 60)
    assert job.state == "finished", job.error


def test_a_run_another_process_writes_is_not_touched(manager):
    name = finished(manager, "alice", max_iters=10)
    path = manager.root / name
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ckpt.write_status(path, "running", step=10)
        status = json.loads((path / ckpt.STATUS).read_text())
        status["pid"] = other.pid
        (path / ckpt.STATUS).write_text(json.dumps(status))
        JobManager(manager.root, BIG, device="cpu")  # a restart must not call it interrupted
        assert manager.runs.summary(name).state == "running elsewhere"
        with pytest.raises(TrainingError, match="another process"):
            manager.resume("alice", name)
    finally:
        other.kill()
        other.wait()


def test_one_writer_per_run_folder(manager, tmp_path):
    path = manager.root / "locked"
    path.mkdir(parents=True)
    manager.acquire_lock(path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (path / ".writer.lock").write_text(str(holder.pid))
        with pytest.raises(TrainingError, match="already being written"):
            manager.acquire_lock(path)
    finally:
        holder.kill()
        holder.wait()
    (path / ".writer.lock").write_text(str(dead_pid()))
    manager.acquire_lock(path)  # a stale lock is taken over
    assert (path / ".writer.lock").read_text() == str(os.getpid())
    folders.release_lock(path)
    assert not (path / ".writer.lock").exists()


def test_who_sees_what(manager):
    mine = finished(manager, "alice", max_iters=10)
    shared = finished(manager, "alice", max_iters=10, shared=True)
    shipped = manager.root / "shipped-run"
    shutil_copy_run(manager.root / mine, shipped)  # a folder without app.json, as the CLI makes
    bob = {r.name: r for r in manager.runs.list_runs("bob")}
    assert mine not in bob and shared in bob and "shipped-run" in bob
    assert bob["shipped-run"].owner is None and bob["shipped-run"].whose == "shipped"
    assert bob[shared].whose == "shared"
    assert {r.name for r in manager.runs.list_runs("alice")} == {mine, shared, "shipped-run"}
    with pytest.raises(TrainingError, match="ships with the app"):
        manager.resume("alice", "shipped-run")
    with pytest.raises(TrainingError, match="someone else"):
        manager.delete("bob", shared)
    with pytest.raises(CheckpointError):
        manager.runs.visible("bob", "../etc")


def shutil_copy_run(src: Path, dst: Path) -> None:
    dst.mkdir()
    for f in (ckpt.WEIGHTS, ckpt.CONFIG, ckpt.METRICS, ckpt.STATUS):
        (dst / f).write_bytes((src / f).read_bytes())


# --- checkpoints in and out -------------------------------------------------------------------


def test_upload_takes_safetensors_and_never_unpickles(manager, tmp_path, monkeypatch):
    name = finished(manager, "alice", max_iters=10)
    good = tmp_path / "my model.safetensors"
    good.write_bytes((manager.root / name / ckpt.WEIGHTS).read_bytes())

    def no_unpickling(*a, **k):
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr("pickle.load", no_unpickling)
    monkeypatch.setattr("pickle.loads", no_unpickling)
    evil = tmp_path / "evil.safetensors"
    torch.save({"weights": torch.zeros(3)}, evil)
    with pytest.raises(CheckpointError, match="pickles are never loaded"):
        library.import_checkpoint(manager, "bob", str(evil))
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"whatever")
    with pytest.raises(CheckpointError, match="not a .safetensors file"):
        library.import_checkpoint(manager, "bob", str(pt))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        library.import_checkpoint(manager, "bob", str(cut))
    assert {r.name for r in manager.runs.list_runs("bob")} == set()  # nothing was kept
    run = library.import_checkpoint(manager, "bob", str(good))
    assert run.startswith("my-model")
    info = manager.runs.summary(run, "bob")
    assert info.mine and info.state == "finished" and info.params > 0 and info.step == 10
    assert not manager.runs.visible("alice", run)


def test_upload_size_limit(tmp_path):
    m = JobManager(tmp_path / "runs", Limits(max_upload_mb=1), device="cpu")
    big = tmp_path / "big.safetensors"
    big.write_bytes(b"\0" * (2 * 1024 * 1024))
    with pytest.raises(ConfigError, match="GPT_MAX_UPLOAD_MB"):
        library.import_checkpoint(m, "bob", str(big))


def test_download_is_one_self_contained_file(manager):
    name = finished(manager, "alice", max_iters=10)
    path = library.download_file(manager, "alice", name)
    assert Path(path).name == f"{name}.safetensors"
    loaded = ckpt.load_checkpoint(path)  # config travels in the file's metadata
    assert loaded.step == 10 and loaded.tokenizer.vocab_size == 13
    with pytest.raises(CheckpointError):
        library.download_file(manager, "bob", name)


def test_table_rows_and_labels(manager):
    name = finished(manager, "alice", max_iters=10)
    runs = manager.runs.list_runs("alice")
    rows = library.table_rows(runs)
    assert rows[0][:4] == [name, "yours", "addition", "char (13)"] and rows[0][-1] == "finished"
    assert len(rows[0]) == len(library.TABLE_HEADERS)
    assert pickers.sampleable(runs) == runs
    assert pickers.run_label(runs[0]).startswith(f"{name} · yours")


# --- sampling ---------------------------------------------------------------------------------


def test_sample_request_settings_from_page_values():
    s = gen.SampleRequest("r", max_new_tokens=300.0, temperature=0.5, top_k=0, top_p=1.0, seed=-1).settings()
    assert (s.max_new_tokens, s.top_k, s.top_p, s.seed) == (300, None, None, None)
    s = gen.SampleRequest("r", top_k=40.0, top_p=0.9, seed=7).settings()
    assert (s.top_k, s.top_p, s.seed) == (40, 0.9, 7)


def test_sampling_a_finished_run_streams_text_with_notes(manager):
    name = finished(manager, "alice", max_iters=10)
    cache = gen.ModelCache()
    loaded = gen.open_run(manager, cache, "alice", name)
    assert not loaded.live and gen.open_run(manager, cache, "alice", name) is loaded  # cached
    req = gen.SampleRequest(name, prompt="", max_new_tokens=30, top_k=500, seed=1)
    prepared = gen.prepare(loaded, req, 100)
    assert any("top-k 500" in n for n in prepared.notes) and any("empty" in n for n in prepared.notes)
    texts = list(gen.stream(loaded, prepared, interval=0))
    assert texts[0] == "" and len(texts[-1]) >= 25 and all(b.startswith(a) for a, b in zip(texts, texts[1:]))
    long_prompt = gen.SampleRequest(name, prompt="1+1=2\n" * 10, max_new_tokens=5)
    assert any("only its last" in n for n in gen.prepare(loaded, long_prompt, 100).notes)
    with pytest.raises(TokenizerError, match="never saw"):
        gen.prepare(loaded, gen.SampleRequest(name, prompt="hello", max_new_tokens=10), 100)
    with pytest.raises(GPTError, match="cap"):
        gen.prepare(loaded, gen.SampleRequest(name, max_new_tokens=101), 100)
    stop = threading.Event()
    stop.set()
    one = gen.prepare(loaded, gen.SampleRequest(name, "1", 50), 100)
    assert list(gen.stream(loaded, one, should_stop=stop.is_set))[-1] == "1"
    with pytest.raises(CheckpointError):
        gen.open_run(manager, cache, "bob", name)


def test_sampling_a_run_while_it_trains(manager):
    job = long_run(manager, "alice")
    wait_until(lambda: job.state == "running" and job.trainer is not None and job.trainer.step > 3, what="steps")
    loaded = gen.open_run(manager, gen.ModelCache(), "alice", job.name)
    assert loaded.live
    prepared = gen.prepare(loaded, gen.SampleRequest(job.name, "1", 10), 100)
    assert any("still training" in n for n in prepared.notes)
    assert len(list(gen.stream(loaded, prepared))[-1]) == 11
    manager.stop("alice", job.name)


# --- plots --------------------------------------------------------------------------------------


def test_loss_frame_keeps_every_series_and_numbers():
    steps = [(i, 4.0 - i / 1000) for i in range(1000)]
    assert len(plots.downsample(steps, 100)) == 100
    assert plots.downsample(steps[:4], 100) == [(0.0, 4.0), (1.0, 3.999), (2.0, 3.998), (3.0, 3.997)]
    df = plots.loss_frame([], [])
    assert set(df["series"]) == set(plots.LOSS_SERIES) and df["loss"].isna().all()
    df = plots.loss_frame([{"step": 0, "train_loss": 4.0, "val_loss": 4.1}], steps)
    assert str(df["step"].dtype) == "float64" and str(df["loss"].dtype) == "float64"
    assert (df["series"] == "train (each step)").sum() == plots.MAX_STEP_POINTS
    cmp = plots.compare_frame({"a": [{"step": 0, "val_bpc": 2.0}], "b": [{"step": 0, "val_bpc": 1.5}, {"step": 5}]})
    assert list(cmp["run"]) == ["a", "b"]


def test_a_plot_is_sent_blank_until_it_has_a_point():
    from gpt.ui import frames

    assert frames.drawn(frames.loss_frame([], [])) is None  # NaN rows only: a chart laid out for no data
    assert frames.drawn(frames.compare_frame({})) is None
    curve = frames.loss_frame([], [(1, 6.1)])
    assert frames.drawn(curve) is curve and set(curve["series"]) == set(frames.LOSS_SERIES)


def test_progress_html_for_each_state():
    assert "Start training" in plots.progress_html(None)
    base = dict(name="r", owner=None, mine=True, shared=False, corpus="addition", tokenizer="char", model_type="gpt",
                params=30000, processes=1, best_val_loss=None, has_weights=True, created=0.0, updated=0.0,
                step=50, max_iters=100, fraction=0.5, tokens_per_sec=1234.0, eta_s=12, elapsed_s=10,
                n_params=30000, loss=2.5, val_loss=2.6, val_bpc=3.7, message="", queue_position=None)
    html = plots.progress_html(RunStatus(**base, state="running"))
    assert "step <b>50</b> / 100" in html and "1,234 tokens/s" in html and "about 12 s left" in html and "width:50.0%" in html
    assert "width:100.0%" in plots.progress_html(RunStatus(**base, state="finished"))
    assert "batch loss 2.500" in html
    rl = plots.progress_html(RunStatus(**{**base, "loss": -0.04}, state="running", kind="rl"))
    assert "policy-gradient loss -0.040" in rl and "batch loss" not in rl  # not an error that went below zero


# --- the handlers, called as plain functions -----------------------------------------------------


@pytest.fixture
def handlers(manager):
    from types import SimpleNamespace

    from gpt.ui.checkpoints_tab import CheckpointHandlers
    from gpt.jobs.sampling import ModelCache
    from gpt.ui.generate_tab import GenerateHandlers
    from gpt.ui.train_tab import TrainHandlers

    return SimpleNamespace(m=manager, train=TrainHandlers(manager), generate=GenerateHandlers(manager, ModelCache()),
                           checkpoints=CheckpointHandlers(manager))




def test_preset_and_estimate_handlers(handlers):
    from gpt.presets import PRESETS
    from gpt.ui.train_tab import preset_values

    for name in PRESETS:
        assert len(handlers.train.apply_preset(name)) == 10
    assert preset_values("fast")["architecture"] == "modern" and preset_values("fast")["max_seconds"] == 130
    md, ends = handlers.train.estimate(13, "tiny", "gpt", "classic", *SLIDERS)
    assert "parameters" in md and "memory" in md and "128 tokens per step" in md
    assert ends.startswith("Ends after **20 steps**")  # beside Start: the limit that ends the run
    timed = handlers.train.estimate(13, "tiny", "gpt", "classic", 1, 2, 16, 16, 0.0, 8, 3e-3, 1_000_000, 5)[1]
    assert timed == "Ends at its **5 s time limit**, before 1,000,000 steps."
    assert "divisible" in handlers.train.estimate(13, "tiny", "gpt", "classic", 1, 3, 16, 16, 0.0, 8, 3e-3, 20, 0)[0]
    assert "over this server's limit" in handlers.train.estimate(50_000, "tiny", "gpt", "classic", 12, 12, 768, 512,
                                                                 0.0, 8, 3e-3, 20, 0)[0]


def test_ten_minutes_on_a_slow_machine_shows_its_smaller_shape_and_says_why(handlers, monkeypatch):
    """The preset's sliders are the shape this machine trains well in ten minutes, and the estimate says why
    it is not 6 x 192; on a fast machine, or with a shape of one's own, nothing is said."""
    monkeypatch.setitem(est._speed, handlers.m.device, 1e9)
    arch, *sliders = handlers.train.apply_preset("ten-minutes")
    assert sliders[:3] == [4, 4, 128] and sliders[-1] == 590
    assert sliders[4:6] == [0.0, 20]  # and the two-minutes recipe's training that goes with that shape
    md = handlers.train.estimate(512, "ten-minutes", "gpt", arch, *sliders)[0]
    assert "ten-minutes took 4 x 128 for this machine: 6 x 192 would read too little text" in md
    mine = handlers.train.estimate(512, "ten-minutes", "gpt", arch, 5, 5, 160, *sliders[3:])[0]
    assert "took" not in mine and "parameters" in mine  # a shape chosen by hand
    monkeypatch.setitem(est._speed, handlers.m.device, 1e13)
    arch, *sliders = handlers.train.apply_preset("ten-minutes")
    assert sliders[:3] == [6, 6, 192] and "took" not in handlers.train.estimate(512, "ten-minutes", "gpt", arch, *sliders)[0]


def test_corpus_handlers(handlers):
    upload, paste = handlers.train.corpus_inputs("paste")
    assert paste["visible"] is True and upload["visible"] == "hidden"  # the file box stays in the page, unseen
    assert handlers.train.corpus_inputs("upload")[0]["visible"] is True
    assert handlers.train.vocab_input("bpe")["visible"]
    stats, html, vocab = handlers.train.describe_corpus("addition", None, None, "char", 2048, "")
    assert "addition" in stats and 'class="tok"' in html and vocab == 13
    stats, html, vocab = handlers.train.describe_corpus("addition", None, None, "char", 2048, "7+8=15")
    assert html.count('class="tok"') == 6
    stats, html, vocab = handlers.train.describe_corpus("upload", None, None, "char", 2048, "")
    assert "msg-error" not in stats and "Choose a .txt file" in stats and vocab == {"__type__": "update"}
    stats, html, vocab = handlers.train.describe_corpus("paste", None, "", "char", 2048, "")  # nothing typed yet
    assert stats.startswith("Paste a text above") and "msg-error" not in stats


def test_other_corpora_and_tokenizers_through_the_handlers(handlers, tmp_path, monkeypatch):
    f = tmp_path / "notes.txt"
    f.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    stats, html, vocab = handlers.train.describe_corpus("upload", str(f), None, "char", 2048, "")
    assert "notes" in stats and vocab == len(set("the cat sat on the mat. "))
    stats, html, vocab = handlers.train.describe_corpus("paste", None, "to be or not to be " * 100, "bpe", 260, "")
    assert "bpe" in stats and 256 < vocab <= 260
    if os.environ.get("GPT_GPT2_RANKS"):
        stats, html, vocab = handlers.train.describe_corpus("addition", None, None, "gpt2", 2048, "12+34=46")
        assert "gpt2" in stats and 'class="tok"' in html
    monkeypatch.setenv("GPT_GPT2_RANKS", str(tmp_path / "missing.tiktoken"))  # as offline: no vocabulary file
    offline_text = "a text never encoded before in this test session. " * 40
    stats, _, _ = handlers.train.describe_corpus("paste", None, offline_text, "gpt2", 2048, "")  # said once: no toast
    assert "GPT_GPT2_RANKS" in stats
    with pytest.warns(UserWarning):
        msg = handlers.train.start("alice", "paste", None, offline_text, "gpt2", 2048, "tiny", "gpt", "classic", *SLIDERS, False)
    assert "GPT_GPT2_RANKS" in msg and handlers.m.runs.run_names() == []  # refused at once, nothing queued


def test_train_handlers_start_poll_refuse_stop(handlers, manager):
    args = ("addition", None, None, "char", 2048, "tiny", "gpt", "classic")
    msg = handlers.train.start("alice", *args, 1, 2, 16, 16, 0.0, 8, 3e-3, 1_000_000, 0, False)
    assert "started" in msg
    name = manager.runs.current_run("alice")
    progress, plot, *_ = handlers.train.first_point("alice", None, [name], timeout=60)  # what the page runs after Start
    assert "val loss" in progress and 0 in set(plot[plot["series"] == "val (eval)"]["step"])  # before any tick
    wait_until(lambda: manager.runs.status(name).step > 2, what="steps")
    progress, plot, sample, stop_btn, resume_btn, compare, msg, sig = handlers.train.poll("alice", None, [name])
    assert name in progress and "running" in progress
    no_run_yet = [None] * len(sig)  # what the page's poll saw before Start: the sentence Start wrote stays
    assert handlers.train.poll("alice", no_run_yet, [name])[6] == gr_skip()
    assert isinstance(plot, pd.DataFrame) and set(plot["series"]) == set(plots.LOSS_SERIES)
    assert stop_btn["interactive"] and not resume_btn["interactive"]
    assert compare is None or set(compare["run"]) == {name}
    with pytest.warns(UserWarning, match="already have a run"):
        assert "already have a run" in handlers.train.start("alice", *args, *SLIDERS, False)
    assert "queued" in handlers.train.start("bob", *args, *SLIDERS, False)
    t0 = time.monotonic()
    assert "queue" in handlers.train.first_point("bob", None, timeout=60)[0]  # behind alice: no waiting for a point
    assert time.monotonic() - t0 < 30
    assert "Stopping" in handlers.train.stop("alice")
    manager.wait(name, 30)
    progress, *_, resume_btn, _, msg, sig = handlers.train.poll("alice", sig)
    assert "stopped" in progress and resume_btn["interactive"] and msg == ""  # the old refusal is gone
    assert handlers.train.poll("alice", sig) == (gr_skip(),) * 7 + (sig,)  # nothing changed: nothing is sent
    manager.wait(manager.runs.current_run("bob"), 60)
    assert handlers.train.poll("nobody", None)[0] == plots.progress_html(None)
    with pytest.warns(UserWarning):
        assert "msg-error" in handlers.train.stop("alice")  # nothing to stop


def gr_skip():
    return {"__type__": "update"}


def test_generate_and_checkpoint_handlers(handlers, manager, tmp_path):
    name = finished(manager, "alice", max_iters=10)
    runs = handlers.generate.sample_runs("alice")
    assert runs["value"] == name and (pickers.run_label(manager.runs.summary(name, "alice")), name) in runs["choices"]
    out = list(handlers.generate.generate("alice", name, "1+", 20, 0.8, 5, 0.9, 3))
    assert out[-1][0].startswith("1+") and "Done" in out[-1][1]
    assert handlers.generate.stop_generation("alice") == gr_skip()  # it had finished: its "Done" line stays
    # a click that beats the tab's own list (opening the tab refreshes it) samples the run the list will show
    assert list(handlers.generate.generate("alice", None, "1+", 20, 0.8, 5, 0.9, 3))[-1] == out[-1]
    with pytest.warns(UserWarning):
        assert "Choose a run" in list(handlers.generate.generate("bob", None, "1+", 20, 0.8, 5, 0.9, 3))[-1][1]
    with pytest.warns(UserWarning):
        out = list(handlers.generate.generate("alice", name, "hello", 20, 0.8, 0, 1.0, -1))
    assert out == [("", out[0][1])] and "never saw" in out[0][1]  # a sentence, not a traceback
    assert handlers.generate.stop_generation("alice") == gr_skip()  # nothing was generating
    texts = []
    for text, status in handlers.generate.generate("alice", name, "1+", 500, 0.8, 0, 1.0, 4):  # Stop: one path
        texts.append(text)
        if len(texts) == 3:
            handlers.generate.stop_generation("alice")  # the event the decode loop reads before each step
    assert status.startswith("Stopped: ") and len(text) - 2 < 500 and text.startswith(texts[1])
    table, dropdown = handlers.checkpoints.runs_table("alice")
    assert list(table.columns) == library.TABLE_HEADERS and table.iloc[0, 0] == name and dropdown["value"] == name
    assert handlers.checkpoints.prepare_download("alice", name)["value"].endswith(f"{name}.safetensors")
    assert handlers.checkpoints.prepare_download("alice", None)["interactive"] is False
    evil = tmp_path / "evil.safetensors"
    torch.save({"w": torch.zeros(2)}, evil)
    with pytest.warns(UserWarning):
        msg, *_ = handlers.checkpoints.upload("alice", str(evil))
    assert "never loaded" in msg
    with pytest.warns(UserWarning):
        msg, *_ = handlers.checkpoints.delete("bob", name, armed=name)
    assert "There is no run named" in msg  # alice's private run does not exist for bob
    msg, table, _, armed, button = handlers.checkpoints.delete("alice", name)  # the first click only asks
    assert f"Delete **{name}** for good?" in msg and "cannot be recovered" in msg and armed == name
    assert button["value"] == f"Yes, delete {name}" and name in manager.runs.run_names()
    msg, table, _, armed, button = handlers.checkpoints.delete("alice", name, armed)
    assert "Deleted" in msg and len(table) == 0 and armed is None and button["value"] == "Delete"
