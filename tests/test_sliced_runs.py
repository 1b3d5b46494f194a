"""The Train tab on ZeroGPU: Start, the timer's slices, Stop, Continue, refusals (gpt.ui.zerogpu, gpt.jobs.sliced).

The handlers are called as the page calls them, with the stand-in's GPU
processes (or, for ZeroGPU's refusals, a function that raises what `spaces`
raises); the last test mounts the piece on a small page in a real browser.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from gpt import checkpoint as ckpt
from gpt.errors import TrainingError
from gpt.jobs import JobManager
from gpt.jobs.sliced import SliceReport
from gpt.slices import read_step_losses, train_slice
from gpt.ui.zerogpu import SliceHandlers
from gpt.zerogpu import SliceKilled, SliceSettings, StandIn
from helpers_app import TINY, addition, tiny_request, wait_until

pytestmark = pytest.mark.timeout(300)
SLIDERS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "batch_size", "lr", "max_iters", "max_seconds")
SHORT = SliceSettings(duration_s=3.0, margin_s=1.0)


def start_inputs(max_iters: int) -> list:
    """What the Train tab's Start sends after the asker's id (corpus, upload, pasted, tokenizer, BPE size, preset,
    model, architecture, the nine sliders, share)."""
    values = {**TINY, "max_iters": max_iters}
    return ["addition", None, None, "char", 2048, "tiny", "gpt", "classic", *(values[k] for k in SLIDERS), False]


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_ZEROGPU", "1")
    m = JobManager(tmp_path, device="cpu")
    yield m
    m.shutdown()


def chain(h: SliceHandlers, owner: str, chaining: bool, limit: int = 40) -> list[str]:
    """Tick as the page's timer does until the chain ends; the status lines it showed."""
    lines = []
    for _ in range(limit):
        if not chaining:
            return lines
        line, chaining = h.tick(owner, chaining)
        lines.append(line)
    raise AssertionError("the chain of slices did not end")


def test_start_chains_gpu_slices_until_the_run_finishes_and_the_page_sees_each_one(manager):
    h = SliceHandlers(manager, StandIn(train_slice, SHORT.duration_s), SHORT)
    line, chaining = h.start("me", *start_inputs(max_iters=1500))
    assert chaining and "trains on the GPU in slices of 3 s" in line
    name = manager.runs.current_run("me")
    seen, done = [], threading.Event()

    def watch():  # the Train tab's poll, once a tenth of a second
        while not done.is_set():
            s = h.status(name, "me")
            seen.append((s.state, s.message, s.step))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        lines = chain(h, "me", chaining)
    finally:
        done.set()
        watcher.join()
    status = h.status(name, "me")
    assert status.state == "finished" and status.step == 1500 and h.runs.record(name)["slices"] >= 2
    assert "Finished: step 1,500, in" in lines[-1]
    assert all("trained to step" in line for line in lines[:-1])
    live = [m for state, m, _ in seen if state == "running"]
    assert any(m.startswith("GPU slice 1, ") and m.endswith(" s of GPU left in this slice") for m in live)
    assert any(m.startswith("GPU slice 2, ") for m in live)
    steps = [s for s, _ in h.step_losses(name)]
    assert steps == list(range(1, 1501))  # the per-step curve: every step once, across all slices
    metric_steps = [r["step"] for r in status.metrics]
    assert metric_steps == sorted(set(metric_steps)) and metric_steps[0] == 0 and metric_steps[-1] == 1500


def test_stop_during_a_slice_saves_and_ends_the_chain(manager):
    h = SliceHandlers(manager, StandIn(train_slice, 60), SliceSettings(60, 5))
    _, chaining = h.start("me", *start_inputs(max_iters=20_000))
    name = manager.runs.current_run("me")
    out = {}
    ticking = threading.Thread(target=lambda: out.update(result=h.tick("me", chaining)))
    ticking.start()
    wait_until(lambda: len(read_step_losses(manager.runs.run_path(name))) > 20, what="the slice to train")
    line, chaining = h.stop("me")
    assert "Stopping" in line and not chaining
    ticking.join(60)
    line, chaining = out["result"]
    assert "Stopped at step" in line and not chaining
    status = h.status(name, "me")
    assert status.state == "stopped" and 0 < status.step < 20_000
    assert h.tick("me", True)[1] is False  # a stopped run is not sliced again by the timer


def quota_refused(order):
    raise RuntimeError("You have exceeded your GPU quota (59s left vs. 60s requested). Please retry in 0:05:00")


def test_a_spent_quota_pauses_the_run_with_zero_gpus_sentence_and_continue_tries_again(manager):
    h = SliceHandlers(manager, quota_refused, SHORT)
    _, chaining = h.start("me", *start_inputs(max_iters=100))
    line, chaining = h.tick("me", chaining)
    assert not chaining and "ZeroGPU lent no GPU for slice 1" in line and "exceeded your GPU quota" in line
    name = manager.runs.current_run("me")
    assert h.status(name, "me").state == "paused"
    h.runs.gpu_fn = StandIn(train_slice, SHORT.duration_s)  # the quota came back
    line, chaining = h.resume("me")
    assert chaining and "Continuing" in line
    chain(h, "me", chaining)
    assert h.status(name, "me").state == "finished"


def test_slices_cut_off_twice_without_saving_stop_the_chain_with_a_sentence(manager):
    def killed(order):
        raise SliceKilled("The GPU slice ran past its 3 s and was stopped.")

    h = SliceHandlers(manager, killed, SHORT)
    _, chaining = h.start("me", *start_inputs(max_iters=100))
    line, chaining = h.tick("me", chaining)
    assert chaining and "cut off at its deadline" in line
    line, chaining = h.tick("me", chaining)
    assert not chaining and "both cut off before they could save anything new" in line


def test_only_the_owner_slices_a_run_and_one_slice_runs_at_a_time(manager):
    release, entered = threading.Event(), threading.Event()

    def held(order):
        entered.set()
        release.wait(30)
        raise SliceKilled("cut off")

    h = SliceHandlers(manager, held, SHORT)
    name = h.runs.begin("me", addition(), tiny_request(100))
    with pytest.raises(TrainingError, match="not yours"):
        h.runs.run_slice("someone-else", name)
    worker = threading.Thread(target=lambda: h.runs.run_slice("me", name))
    worker.start()
    entered.wait(30)
    try:
        with pytest.raises(TrainingError, match="already training a GPU slice"):
            h.runs.run_slice("me", name)
        with pytest.raises(TrainingError, match="already have a run in progress"):
            h.runs.begin("me", addition(), tiny_request(100))
        assert h.status(name, "me").state == "running"
    finally:
        release.set()
        worker.join(30)
    assert h.status(name, "me").state == "paused"


def test_continue_on_a_finished_run_trains_another_stretch(manager):
    h = SliceHandlers(manager, StandIn(train_slice, 30), SliceSettings(30, 5))
    name = h.runs.begin("me", addition(), tiny_request(40))
    assert h.runs.run_slice("me", name).state == "finished"
    line, chaining = h.resume("me", 60)
    assert chaining
    report = h.runs.run_slice("me", name)
    assert isinstance(report, SliceReport) and report.state == "finished" and report.step == 100


def test_after_a_restart_mid_slice_the_run_is_interrupted_and_continue_finishes_it(manager, tmp_path):
    h = SliceHandlers(manager, StandIn(train_slice, SHORT.duration_s), SHORT)
    _, chaining = h.start("me", *start_inputs(max_iters=1500))
    h.tick("me", chaining)
    name = manager.runs.current_run("me")
    path = manager.runs.run_path(name)
    saved = h.status(name, "me").step
    assert 0 < saved < 1500
    gone = StandIn(whoami, 30)()  # the pid of a process that has ended: the app, killed mid-slice
    ckpt.write_status(path, "running", "GPU slice 2", step=saved, pid=gone)
    restarted = SliceHandlers(JobManager(tmp_path, device="cpu"), StandIn(train_slice, SHORT.duration_s), SHORT)
    status = restarted.status(name, "me")
    assert status.state == "interrupted" and f"last checkpoint at step {saved}" in status.message
    assert restarted.tick("me", True)[1] is False  # not sliced again until its owner says so
    line, chaining = restarted.resume("me")
    assert chaining
    chain(restarted, "me", chaining)
    assert restarted.status(name, "me").state == "finished"
    assert [s for s, _ in restarted.step_losses(name)] == list(range(1, 1501))


def whoami() -> int:
    return os.getpid()


# --- the piece on a page, in a browser -------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI", "").lower() != "true",
                    reason=f"{CHROMIUM} is not installed")
def test_the_page_piece_in_a_browser_trains_in_slices_and_shows_the_slice_line(manager, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    import gradio as gr

    from gpt.ui import frames
    from gpt.ui import zerogpu as page_part
    from gpt.ui.page import Page
    from helpers_app import free_port

    monkeypatch.setattr(page_part, "SETTINGS", SHORT)  # what GPT_ZEROGPU_SLICE_S=3, GPT_ZEROGPU_MARGIN_S=1 give
    monkeypatch.setattr(page_part, "train_on_gpu", StandIn(train_slice, SHORT.duration_s))
    with gr.Blocks() as demo:
        who = gr.State("student")
        inputs = [gr.State(v) for v in start_inputs(max_iters=1500)]
        start = gr.Button("Start", elem_id="start-btn")
        stop, resume = gr.Button("Stop", elem_id="stop-btn"), gr.Button("Continue", elem_id="resume-btn")
        message, progress, iters = gr.Markdown(elem_id="train-msg"), gr.HTML(elem_id="progress"), gr.Number(0)
        h = page_part.wire(Page(manager=manager, models=None, who=who), start=start, stop=stop, resume=resume,
                           message=message, start_inputs=inputs, more_iters=iters)
        assert h is not None

        def poll(owner):  # the Train tab's poll, reading the sliced run through the handlers
            name = manager.runs.current_run(owner)
            return frames.progress_html(h.status(name, owner) if name else None)

        gr.Timer(0.3).tick(poll, who, progress, show_progress="hidden", concurrency_limit=None)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#start-btn").click()
            page.wait_for_function("document.querySelector('#progress').innerText.includes('s of GPU left')",
                                   timeout=60_000)
            assert "GPU slice 1, " in page.locator("#progress").inner_text()
            page.wait_for_function("document.querySelector('#train-msg').innerText.includes('Finished')",
                                   timeout=120_000)
            page.wait_for_function("document.querySelector('#progress').innerText.includes('finished')",
                                   timeout=10_000)  # the poll catches up within a tick
            browser.close()
    finally:
        demo.close()
    name = manager.runs.current_run("student")
    assert h.runs.record(name)["slices"] >= 2


def test_a_slice_holds_the_folders_writer_lock_so_others_can_see_it_is_busy(manager):
    from gpt.jobs import folder as folders

    seen = {}

    def look(order):
        seen["locked"] = folders.locked(Path(order.run_dir))
        raise SliceKilled("cut off")

    h = SliceHandlers(manager, look, SHORT)
    name = h.runs.begin("me", addition(), tiny_request(100))
    h.runs.run_slice("me", name)
    assert seen["locked"] and not folders.locked(manager.runs.run_path(name))
