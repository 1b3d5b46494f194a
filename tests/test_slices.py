"""A run trained in GPU slices equals the same run trained in one go (gpt.jobs.slices through gpt.jobs.zerogpu's stand-in).

Each slice runs in its own process, its order and result pickled, killed at
its duration: what ZeroGPU does. The run is the default preset's block and
optimizer (narrowed and shortened: two layers of 64, few steps, two evaluation batches, no samples) on the
built-in addition task, and the slices are sized from the uninterrupted run's
own time, so there are always several of a few seconds, however busy the
machine is.
"""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.data import addition_corpus
from gpt.errors import TrainingError
from gpt.presets import DEFAULT_PRESET
from gpt.history import read_steps as read_step_losses
from gpt.jobs.slices import STOP_REQUEST, Pacer, SliceOrder, SliceResult, saved_step, train_slice
from gpt.data import Dataset
from gpt.tokenizer import CharTokenizer
from gpt.train import Trainer
from gpt.train import configs_from
from gpt.jobs.zerogpu import SliceKilled, StandIn

pytestmark = pytest.mark.timeout(600)
MAX_ITERS, EVAL_INTERVAL = 36, 6
START_UP_S = 1.5  # a slice's process: fork, rebuild the dataset and the model, load the checkpoint
# the default preset's block, optimizer and schedule, two layers of 64 wide: every part a slice must carry
# exactly (Muon's and AdamW's moments, rotary, QK-norm, the untied head) at a fraction of a step's time
NARROW = dict(n_layer=2, n_embd=64)


@pytest.fixture(scope="module")
def text():
    return addition_corpus(n=3000)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, text):
    """The default preset, trained in one go in this process: what every sliced run must equal."""
    ds = Dataset(text, CharTokenizer.from_text(text), name="addition")
    model_cfg, train_cfg = configs_from(DEFAULT_PRESET, ds.tokenizer.vocab_size, NARROW, dict(
        max_iters=MAX_ITERS, eval_interval=EVAL_INTERVAL, eval_iters=2, sample_tokens=0, device="cpu"))
    train_cfg = dataclasses.replace(train_cfg, max_seconds=None)  # the preset's 130 s would make time decide the schedule
    losses = []
    out = tmp_path_factory.mktemp("straight")
    trainer = Trainer(model_cfg, train_cfg, ds, out, on_step=lambda p: losses.append((p["step"], p["loss"])))
    assert trainer.run() == "finished"
    return dict(model=model_cfg, train=train_cfg, tokenizer=ds.tokenizer, out=out, losses=losses,
                seconds=trainer.elapsed)


def order_for(straight, text, run_dir, budget_s: float, hints=None) -> SliceOrder:
    train = {**straight["train"].to_dict(), "device": "auto"}
    return SliceOrder(run_dir=str(run_dir), budget_s=budget_s, model=straight["model"].to_dict(), train=train,
                      tokenizer=straight["tokenizer"].spec(), text=text, corpus_name="addition",
                      meta={"corpus": "addition", "data_source": "addition"}, hints=hints or {})


def slice_budget(straight) -> float:
    print(f"straight run: {straight['seconds']:.2f} s")
    return max(1.0, straight["seconds"] / 4)  # about four slices' worth of training, each a few seconds


def train_in_slices(straight, text, run_dir, stand_in: StandIn, budget_s: float) -> list[SliceResult]:
    results, hints = [], {}
    for _ in range(40):
        try:
            result = stand_in(order_for(straight, text, run_dir, budget_s, hints))
        except SliceKilled:
            continue  # what it saved is kept; the next slice goes on from there
        results.append(result)
        hints = result.hints
        if result.state != "paused":
            return results
    raise AssertionError("the run did not finish in 40 slices")


def assert_same_run(straight, run_dir) -> None:
    a = ckpt.load_checkpoint(straight["out"]).model.state_dict()
    b = ckpt.load_checkpoint(run_dir).model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0)
    ref, got = ckpt.read_metrics(straight["out"]), ckpt.read_metrics(run_dir)
    assert [r["step"] for r in got] == [r["step"] for r in ref] == list(range(0, MAX_ITERS + 1, EVAL_INTERVAL))
    assert [(r["train_loss"], r["val_loss"]) for r in got] == [(r["train_loss"], r["val_loss"]) for r in ref]
    assert read_step_losses(run_dir) == straight["losses"]  # every step once, in order, the same losses


def test_a_run_in_slices_of_a_few_seconds_equals_one_run_in_one_go(straight, text, tmp_path):
    budget = slice_budget(straight)
    stand_in = StandIn(train_slice, budget + START_UP_S)
    results = train_in_slices(straight, text, tmp_path / "run", stand_in, budget)
    assert len(stand_in.pids) >= 3 and len(set(stand_in.pids)) == len(stand_in.pids)  # one process per slice
    assert results[-1].state == "finished" and results[-1].step == MAX_ITERS
    assert all(r.seconds <= budget + 0.5 for r in results)
    steps = [r.step for r in results]
    assert steps == sorted(steps) and steps[0] > 0
    assert_same_run(straight, tmp_path / "run")


def test_a_slice_killed_at_its_deadline_loses_only_the_steps_since_its_save(straight, text, tmp_path):
    run = tmp_path / "run"
    budget = slice_budget(straight)
    # a slice whose own pacing fails (a budget beyond its duration) is killed mid-training, as ZeroGPU would;
    # its duration is what a one-step slice takes here (its start-up: a fixed guess was longer than a whole run
    # on a fast machine) and a third of the run's training time, so the kill comes after the first save and
    # before the end
    probe = StandIn(train_slice, 60)(order_for(straight, text, tmp_path / "probe", budget_s=0))
    with pytest.raises(SliceKilled, match="ran past its"):
        StandIn(train_slice, probe.seconds + straight["seconds"] / 3)(order_for(straight, text, run, budget_s=1e6))
    saved = saved_step(run)
    assert saved % EVAL_INTERVAL == 0  # a whole checkpoint, from its last evaluation
    trained = max(s for s, _ in read_step_losses(run))
    assert trained >= saved  # it trained on after that save; those steps are lost and trained again
    ckpt.load_checkpoint(run, with_optimizer=True)  # nothing torn
    assert ckpt.read_status(run)["state"] == "running"  # as a kill leaves it; the app rewrites it
    results = train_in_slices(straight, text, run, StandIn(train_slice, budget + START_UP_S), budget)
    assert results[0].start_step == saved
    assert_same_run(straight, run)


def test_a_kill_between_the_optimizer_and_the_weights_still_resumes_exactly(straight, text, tmp_path, monkeypatch):
    """The last save of a slice cut short after the optimizer file and before the weights: the moments
    that match the weights on disk wait in optimizer.prev, so the resume is still exact."""
    run = tmp_path / "run"
    budget = slice_budget(straight)
    StandIn(train_slice, budget + START_UP_S)(order_for(straight, text, run, budget))
    saved = saved_step(run)
    real = ckpt.atomic_write

    def killed_at_the_weights(path, write):
        if path.name == ckpt.WEIGHTS:
            raise KeyboardInterrupt("killed")  # not an OSError: nothing catches it, as nothing catches SIGKILL
        real(path, write)

    monkeypatch.setattr(ckpt, "atomic_write", killed_at_the_weights)
    with pytest.raises(KeyboardInterrupt):
        train_slice(order_for(straight, text, run, budget_s=1e6))
    monkeypatch.setattr(ckpt, "atomic_write", real)
    assert saved_step(run) == saved and (run / ckpt.OPTIMIZER_PREV).exists()
    assert ckpt.load_checkpoint(run, with_optimizer=True).optimizer_state is not None
    train_in_slices(straight, text, run, StandIn(train_slice, budget + START_UP_S), budget)
    assert not (run / ckpt.OPTIMIZER_PREV).exists()
    assert_same_run(straight, run)


def test_a_stop_request_ends_the_slice_within_a_step_and_saves(straight, text, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / STOP_REQUEST).write_text("now")
    result = StandIn(train_slice, 60)(order_for(straight, text, run, budget_s=50))
    assert result.state == "stopped" and result.step == 1 == saved_step(run)


def test_nothing_torch_comes_back_out_of_a_slice(straight, text, tmp_path):
    result = StandIn(train_slice, 60)(order_for(straight, text, tmp_path / "run", budget_s=slice_budget(straight)))
    assert isinstance(result, SliceResult) and b"torch" not in pickle.dumps(result)
    assert result.device == "cpu" and set(result.hints) == {"step_s", "eval_s", "save_s"}


def test_the_pacer_stops_before_a_step_and_its_save_would_pass_the_deadline():
    now = [0.0]
    cfg = configs_from("tiny", 10, {}, dict(max_iters=100, eval_interval=10, eval_iters=2))[1]
    pacer = Pacer(deadline=10.0, cfg=cfg, hints={"save_s": 0.5, "eval_s": 2.0}, clock=lambda: now[0])
    stops = []
    for step in range(1, 100):
        now[0] += 1.0  # a step takes a second
        if pacer.after_step(step):
            stops.append(step)
            break
        if step % 10 == 0:
            now[0] += 2.0
            pacer.evaluated()
    # after step 7 (t=7), two steps' slack and a save end at 9.5: go on; after step 8 they would end at 10.5
    assert stops == [8]


def test_the_stand_in_refuses_what_cannot_be_pickled():
    with pytest.raises(TrainingError, match="cannot be pickled"):
        StandIn(train_slice, 5)(lambda: None)
