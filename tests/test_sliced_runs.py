"""The Train tab on ZeroGPU: Start, the timer's slices, Stop, Resume, refusals (gpt.jobs.slice_runner, gpt.ui.slice_timer).

A run there is an ordinary run of the one run service (`JobManager`), whose
runner trains it in GPU slices. The page's handlers are called as the page
calls them (the Train tab's Start, Stop, Resume and the slice timer's tick),
with the stand-in's GPU processes (or, for ZeroGPU's refusals, a function that
raises what `spaces` raises); the browser test mounts the pieces on a small
page in a real Chromium.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import gradio as gr
import pytest

from gpt import checkpoint as ckpt
from gpt.errors import GPTError, TrainingError
from gpt.jobs import JobManager
from gpt.jobs.slice_runner import SliceReport, SliceRunner
from gpt.jobs.slices import train_slice
from gpt.jobs.zerogpu import SliceKilled, SliceSettings, StandIn
from gpt.ui.slice_timer import SliceTimer
from gpt.ui.train_tab import TrainHandlers
from helpers_app import TINY, addition, tiny_request, wait_until

pytestmark = pytest.mark.timeout(300)
SLIDERS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "batch_size", "lr", "max_iters", "max_seconds")
SHORT = SliceSettings(duration_s=3.0, margin_s=1.0)


def start_inputs(max_iters: int) -> list:
    """What the Train tab's Start sends after the asker's id (corpus, upload, pasted, tokenizer, BPE size, preset,
    model, architecture, the nine sliders, share)."""
    values = {**TINY, "max_iters": max_iters}
    return ["addition", None, None, "char", 2048, "tiny", "gpt", "classic", *(values[k] for k in SLIDERS), False]


class SlicedPage:
    """The Train tab on ZeroGPU as the page calls it: the usual Start/Stop/Resume, and the slice timer's tick."""

    def __init__(self, manager: JobManager):
        self.m, self.train, self.timer = manager, TrainHandlers(manager), SliceTimer(manager)

    def start(self, owner: str, max_iters: int) -> str:
        return self.train.start(owner, *start_inputs(max_iters))

    def tick(self, owner: str) -> str | None:
        """The timer: the slice's sentence, or None when there was nothing to slice (Gradio's skip)."""
        out = self.timer.tick(owner)
        return None if out == gr.skip() else out

    def chain(self, owner: str, limit: int = 400) -> list[str]:
        """Tick as the page's timer does until no slice follows; the status lines it showed."""
        lines = []
        for _ in range(limit):
            line = self.tick(owner)
            if line is None:
                return lines
            lines.append(line)
        raise AssertionError("the chain of slices did not end")

    def status(self, name: str, owner: str):
        return self.m.runs.status(name, owner)


def sliced(root, gpu_fn, settings=SHORT) -> JobManager:
    return JobManager(root, device="cpu", runner=SliceRunner(gpu_fn, settings))


@pytest.fixture
def root(tmp_path):
    return tmp_path


@pytest.fixture
def managers():
    made = []
    yield made
    for m in made:
        m.shutdown()


def page_for(managers, root, gpu_fn, settings=SHORT) -> SlicedPage:
    m = sliced(root, gpu_fn, settings)
    managers.append(m)
    return SlicedPage(m)


def test_start_chains_gpu_slices_until_the_run_finishes_and_the_page_sees_each_one(managers, root):
    h = page_for(managers, root, StandIn(train_slice, SHORT.duration_s))
    line = h.start("me", max_iters=1500)
    assert "trains on the GPU in slices of 3 s" in line and "while a page of yours is open (a reload goes on)" in line
    name = h.m.runs.current_run("me")
    seen, done = [], threading.Event()

    def watch():  # the Train tab's poll, once a tenth of a second
        while not done.is_set():
            s = h.status(name, "me")
            seen.append((s.state, s.message, s.step))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        lines = h.chain("me")
    finally:
        done.set()
        watcher.join()
    status = h.status(name, "me")
    assert status.state == "finished" and status.step == 1500 and h.m.runner.record(name)["slices"] >= 2
    assert "Finished: step 1,500, in" in lines[-1]
    assert all("trained to step" in line for line in lines[:-1])
    live = [m for state, m, _ in seen if state == "running"]
    assert any(m.startswith("GPU slice 1, ") and m.endswith(" s of GPU left in this slice") for m in live)
    assert any(m.startswith("GPU slice 2, ") for m in live)
    steps = [s for s, _ in h.m.runs.step_losses(name)]
    assert steps == list(range(1, 1501))  # the per-step curve: every step once, across all slices
    metric_steps = [r["step"] for r in status.metrics]
    assert metric_steps == sorted(set(metric_steps)) and metric_steps[0] == 0 and metric_steps[-1] == 1500


def test_stop_during_a_slice_saves_and_ends_the_chain(managers, root):
    h = page_for(managers, root, StandIn(train_slice, 60), SliceSettings(60, 5))
    h.start("me", max_iters=20_000)
    name = h.m.runs.current_run("me")
    out = {}
    ticking = threading.Thread(target=lambda: out.update(result=h.tick("me")))
    ticking.start()
    wait_until(lambda: len(h.m.runs.step_losses(name)) > 20, what="the slice to train")
    line = h.train.stop("me")
    assert "Stopping" in line
    ticking.join(60)
    assert "Stopped at step" in out["result"]
    status = h.status(name, "me")
    assert status.state == "stopped" and 0 < status.step < 20_000
    assert h.tick("me") is None  # a stopped run is not sliced again by the timer


def test_a_stop_clicked_as_the_slice_ends_stops_the_run_instead_of_being_lost(managers, root):
    """Stop lands while the slice saves its last step and returns 'paused' (its budget, not the click, ended it):
    the run is stopped, not left paused with no slice to follow."""
    clicked = {}

    def slice_then_click_stop(order):
        result = train_slice(order)  # in this process: the 2 s budget ends it
        clicked["line"] = h.train.stop("me")  # the slice is still under way for the page
        return result

    h = page_for(managers, root, slice_then_click_stop)
    h.start("me", max_iters=20_000)
    name = h.m.runs.current_run("me")
    line = h.tick("me")
    assert "Stopping" in clicked["line"] and "Stopped at step" in line
    status = h.status(name, "me")
    assert status.state == "stopped" and status.step < 20_000
    assert h.tick("me") is None  # a stopped run is not sliced again by the timer


def test_a_stop_between_the_timers_check_and_its_slice_is_not_overridden_by_the_slice(managers, root):
    """The timer saw a run waiting for its next slice; Stop lands before the slice begins: no slice trains."""
    h = page_for(managers, root, StandIn(train_slice, SHORT.duration_s))
    h.start("me", max_iters=20_000)
    name = h.m.runs.current_run("me")
    assert h.m.runner.wants_slice(name)  # what the timer's tick checked
    assert "between GPU slices" in h.train.stop("me")
    with pytest.raises(TrainingError, match="was stopped; click Resume"):
        h.m.run_slice("me", name)  # the tick goes on to ask for the slice
    assert h.status(name, "me").state == "stopped" and not h.m.runner.wants_slice(name)


def quota_refused(order):
    raise RuntimeError("You have exceeded your GPU quota (59s left vs. 60s requested). Please retry in 0:05:00")


def test_a_spent_quota_pauses_the_run_with_zero_gpus_sentence_and_resume_tries_again(managers, root):
    h = page_for(managers, root, quota_refused)
    h.start("me", max_iters=100)
    line = h.tick("me")
    assert "ZeroGPU lent no GPU for slice 1" in line and "exceeded your GPU quota" in line and "Click Resume" in line
    assert h.tick("me") is None  # the chain waits for its owner
    name = h.m.runs.current_run("me")
    assert h.status(name, "me").state == "paused"
    h.m.runner.gpu_fn = StandIn(train_slice, SHORT.duration_s)  # the quota came back
    line = h.train.resume("me")
    assert "Resuming" in line and "GPU slices" in line
    h.chain("me")
    assert h.status(name, "me").state == "finished"


def test_slices_cut_off_twice_without_saving_stop_the_chain_with_a_sentence(managers, root):
    def killed(order):
        raise SliceKilled("The GPU slice ran past its 3 s and was stopped.")

    h = page_for(managers, root, killed)
    h.start("me", max_iters=100)
    line = h.tick("me")
    assert "cut off at its deadline" in line and h.m.runner.wants_slice(h.m.runs.current_run("me"))
    line = h.tick("me")
    assert "both cut off before they could save anything new" in line and h.tick("me") is None


def test_only_the_owner_slices_a_run_and_one_slice_runs_at_a_time(managers, root):
    release, entered = threading.Event(), threading.Event()

    def held(order):
        entered.set()
        release.wait(30)
        raise SliceKilled("cut off")

    h = page_for(managers, root, held)
    name = h.m.start("me", addition(), tiny_request(100)).name
    with pytest.raises(GPTError, match="There is no run named"):  # a stranger learns nothing of a private run
        h.m.run_slice("someone-else", name)
    worker = threading.Thread(target=lambda: h.m.run_slice("me", name))
    worker.start()
    entered.wait(30)
    try:
        with pytest.raises(TrainingError, match="already training a GPU slice"):
            h.m.run_slice("me", name)
        with pytest.raises(TrainingError, match="already have a run in progress"):
            h.m.start("me", addition(), tiny_request(100))
        assert h.status(name, "me").state == "running"
    finally:
        release.set()
        worker.join(30)
    assert h.status(name, "me").state == "paused"


def test_resume_on_a_finished_run_trains_another_stretch(managers, root):
    h = page_for(managers, root, StandIn(train_slice, 30), SliceSettings(30, 5))
    name = h.m.start("me", addition(), tiny_request(40)).name
    assert h.m.run_slice("me", name).state == "finished"
    assert "Resuming" in h.train.resume("me", 60)
    report = h.m.run_slice("me", name)
    assert isinstance(report, SliceReport) and report.state == "finished" and report.step == 100


def test_after_a_restart_mid_slice_the_run_is_interrupted_and_resume_finishes_it(managers, root):
    h = page_for(managers, root, StandIn(train_slice, SHORT.duration_s))
    h.start("me", max_iters=1500)
    h.tick("me")
    name = h.m.runs.current_run("me")
    path = h.m.runs.run_path(name)
    saved = h.status(name, "me").step
    assert 0 < saved < 1500
    gone = StandIn(whoami, 30)()  # the pid of a process that has ended: the app, killed mid-slice
    ckpt.write_status(path, "running", "GPU slice 2", step=saved, pid=gone)
    restarted = page_for(managers, root, StandIn(train_slice, SHORT.duration_s))
    status = restarted.status(name, "me")
    assert status.state == "interrupted" and f"last checkpoint at step {saved}" in status.message
    assert restarted.tick("me") is None  # not sliced again until its owner says so
    assert "Resuming" in restarted.train.resume("me")
    restarted.chain("me")
    assert restarted.status(name, "me").state == "finished"
    assert [s for s, _ in restarted.m.runs.step_losses(name)] == list(range(1, 1501))


def whoami() -> int:
    return os.getpid()


# --- the piece on a page, in a browser -------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI", "").lower() != "true",
                    reason=f"{CHROMIUM} is not installed")
@pytest.mark.browser
def test_the_page_pieces_in_a_browser_train_in_slices_and_show_the_slice_line(managers, root):
    sync_api = pytest.importorskip("playwright.sync_api")
    from gpt.ui import frames, slice_timer
    from gpt.ui.page import Page
    from helpers_app import free_port

    m = sliced(root, StandIn(train_slice, SHORT.duration_s))
    managers.append(m)
    h = TrainHandlers(m)
    with gr.Blocks() as demo:
        who = gr.State("student")
        inputs = [gr.State(v) for v in start_inputs(max_iters=1500)]
        start = gr.Button("Start", elem_id="start-btn")
        message, progress = gr.Markdown(elem_id="train-msg"), gr.HTML(elem_id="progress")
        page = Page(manager=m, models=None, who=who, timer=gr.Timer(1.0))
        start.click(h.start, [who, *inputs], message)
        assert slice_timer.wire(page, message) is not None

        def poll(owner):  # the Train tab's poll: the run service's status, slices or not
            name = m.runs.current_run(owner)
            return frames.progress_html(m.runs.status(name, owner) if name else None)

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
            shown = page.locator("#progress").inner_text()  # the slice it is in: 1 unless the page came late
            assert re.search(r"GPU slice \d+, \d+ s of GPU left in this slice", shown), shown
            page.wait_for_function("document.querySelector('#train-msg').innerText.includes('Finished')",
                                   timeout=120_000)
            page.wait_for_function("document.querySelector('#progress').innerText.includes('finished')",
                                   timeout=10_000)  # the poll catches up within a tick
            browser.close()
    finally:
        demo.close()
    name = m.runs.current_run("student")
    assert m.runner.record(name)["slices"] >= 2


def test_a_slice_holds_the_folders_writer_lock_so_others_can_see_it_is_busy(managers, root):
    from gpt.jobs import folder as folders

    seen = {}

    def look(order):
        seen["locked"] = folders.locked(Path(order.run_dir))
        raise SliceKilled("cut off")

    h = page_for(managers, root, look)
    name = h.m.start("me", addition(), tiny_request(100)).name
    h.m.run_slice("me", name)
    assert seen["locked"] and not folders.locked(h.m.runs.run_path(name))
