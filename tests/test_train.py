import json
import math
import threading
import time

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.data import Dataset
from gpt.model import GPTConfig
from gpt.sample import main as sample_main
from gpt.tokenizer import CharTokenizer
from gpt.train import Trainer
from gpt.train import TrainConfig, configs_from
from gpt.train.cli import main as train_main
from gpt import corpus as corpora

TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32)


def trainer_for(ds, out=None, **train_kw):
    cfg = GPTConfig(vocab_size=ds.tokenizer.vocab_size, **TINY)
    kw = dict(batch_size=16, max_iters=40, eval_interval=20, eval_iters=4, lr=3e-3, warmup_iters=5, sample_tokens=0,
              device="cpu")
    kw.update(train_kw)
    return Trainer(cfg, TrainConfig(**kw), ds, out)


@pytest.fixture(scope="module")
def addition():
    return corpora.dataset(corpora.load("addition"), "char")


def test_real_learning_on_shakespeare_falls_well_below_uniform(shakespeare_text):
    ds = Dataset(shakespeare_text, CharTokenizer.from_text(shakespeare_text), name="shakespeare")
    trainer = trainer_for(ds, max_iters=250, eval_interval=250, eval_iters=8, sample_tokens=40)
    assert trainer.run() == "finished"
    first, last = trainer.metrics[0], trainer.metrics[-1]
    assert first["val_loss"] == pytest.approx(math.log(65), abs=0.5)  # untrained: a uniform guess
    assert last["val_loss"] < 2.8  # a character model that learned letter statistics
    assert last["val_bpc"] == pytest.approx(last["val_loss"] / math.log(2), rel=1e-6)  # 1 char per token
    assert last["val_ppl"] == pytest.approx(math.exp(last["val_loss"]), rel=1e-9)  # perplexity, per token
    assert first["val_ppl"] == pytest.approx(65, rel=0.7)  # untrained: about as unsure as 65 equal choices
    assert isinstance(last["sample"], str) and len(last["sample"]) > 0


def test_metrics_rows_and_files(tmp_path, addition):
    seen = []
    t = trainer_for(addition, tmp_path / "run")
    t.add_callback("on_eval", seen.append)
    assert t.run() == "finished"
    rows = ckpt.read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [0, 20, 40] == [r["step"] for r in seen]
    for key in ("step", "train_loss", "val_loss", "val_bpc", "lr", "tokens_per_sec", "elapsed_s"):
        assert key in rows[-1]
    assert ckpt.read_status(tmp_path / "run")["state"] == "finished"
    loaded = ckpt.load_checkpoint(tmp_path / "run")
    assert loaded.step == 40 and loaded.meta["train"]["max_iters"] == 40


def test_with_dropout_a_stopped_and_resumed_run_draws_the_same_masks_as_one_in_one_go(tmp_path, addition):
    """The dropout stream's state is saved with the optimizer's: the same weights, bit for bit."""
    def make(out):
        cfg = GPTConfig(vocab_size=addition.tokenizer.vocab_size, **{**TINY, "dropout": 0.2})
        return Trainer(cfg, TrainConfig(batch_size=16, max_iters=40, eval_interval=20, eval_iters=4, lr=3e-3,
                                        warmup_iters=5, sample_tokens=0, device="cpu"), addition, out)

    straight = make(tmp_path / "a")
    straight.run()
    first = make(tmp_path / "b")
    first.add_callback("on_step", lambda p: first.request_stop() if p["step"] == 13 else None)
    assert first.run() == "stopped" and first.step == 13
    second = Trainer(first.model_config, first.config, addition, tmp_path / "b", resume=True)
    second.run()
    a = ckpt.load_checkpoint(tmp_path / "a").model.state_dict()
    b = ckpt.load_checkpoint(tmp_path / "b").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, addition):
    straight = trainer_for(addition, tmp_path / "a", max_iters=40)
    straight.run()
    first = trainer_for(addition, tmp_path / "b", max_iters=40)
    first.add_callback("on_step", lambda p: first.request_stop() if p["step"] == 20 else None)
    assert first.run() == "stopped" and first.step == 20
    second = Trainer(first.model_config, first.config, addition, tmp_path / "b", resume=True)
    assert second.step == 20
    second.run()
    a = ckpt.load_checkpoint(tmp_path / "a").model.state_dict()
    b = ckpt.load_checkpoint(tmp_path / "b").model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert [r["step"] for r in ckpt.read_metrics(tmp_path / "b")] == [0, 20, 40]


def test_a_stop_from_another_thread_ends_the_run_within_a_step_and_leaves_a_valid_checkpoint(tmp_path, addition):
    t = trainer_for(addition, tmp_path / "run", max_iters=100_000, eval_interval=50)
    worker = threading.Thread(target=t.run)
    worker.start()
    deadline = time.time() + 120
    while t.step < 60 and time.time() < deadline:
        time.sleep(0.05)
    asked_at = t.step
    t.request_stop()
    worker.join(timeout=120)
    assert not worker.is_alive() and t.state == "stopped"
    assert asked_at <= t.step <= asked_at + 1  # the step under way when Stop came, and no other
    loaded = ckpt.load_checkpoint(tmp_path / "run")
    assert loaded.step == t.step > 50
    assert ckpt.read_status(tmp_path / "run")["state"] == "stopped"


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, addition):
    t = trainer_for(addition, tmp_path / "run", max_iters=400, lr=1e6, eval_interval=1, warmup_iters=0, grad_clip=0.0)
    assert t.run() == "failed"
    assert "NaN" in t.error and "learning rate" in t.error and "last good checkpoint" in t.error
    loaded = ckpt.load_checkpoint(tmp_path / "run")
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())
    assert ckpt.read_status(tmp_path / "run")["state"] == "failed"


def test_an_exception_in_the_thread_marks_the_run_failed(tmp_path, addition):
    t = trainer_for(addition, tmp_path / "run")

    def boom(row):
        raise RuntimeError("listener crashed")

    t.add_callback("on_eval", boom)
    worker = threading.Thread(target=t.run)
    worker.start()
    worker.join(120)
    assert t.state == "failed" and "listener crashed" in t.error


def test_snapshot_is_a_copy_of_the_current_weights(addition):
    t = trainer_for(addition, max_iters=5)
    t.run()
    snap = t.snapshot_model()
    x = torch.randint(0, addition.tokenizer.vocab_size, (1, 8))
    torch.testing.assert_close(snap(x)[0], t.model.eval()(x)[0])
    assert snap.transformer.wte.weight.data_ptr() != t.model.transformer.wte.weight.data_ptr()


def test_max_seconds_bounds_the_run():
    ds = corpora.dataset(corpora.load("counting"), "char")
    t = trainer_for(ds, max_iters=1_000_000, max_seconds=2.0, eval_interval=10_000)
    start = time.time()
    assert t.run() == "finished"
    assert time.time() - start < 20 and t.elapsed >= 2.0
    assert t.metrics[-1]["step"] == t.step  # final evaluation at the end


def test_presets_and_overrides():
    model_cfg, train_cfg = configs_from("small", 65, {"n_layer": 3}, {"max_iters": 7})
    assert (model_cfg.n_layer, model_cfg.n_embd, model_cfg.block_size) == (3, 128, 64)
    assert train_cfg.max_iters == 7


def test_cli_trains_then_samples(tmp_path, capsys):
    out = tmp_path / "cli"
    code = train_main(["--data", "addition", "--preset", "tiny", "--max-iters", "60", "--eval-interval", "30",
                       "--sample-tokens", "0", "--min-lr-ratio", "0.5", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "step    60" in printed and "val" in printed
    meta = json.loads((out / "config.json").read_text())
    assert meta["step"] == 60 and meta["tokenizer"]["type"] == "char" and meta["train"]["min_lr_ratio"] == 0.5
    assert sample_main(["--checkpoint", str(out), "--prompt", "12+3", "--max-new-tokens", "20", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("12+3") and len(first.strip()) >= 10
    sample_main(["--checkpoint", str(out), "--prompt", "12+3", "--max-new-tokens", "20", "--seed", "1", "--no-kv-cache"])
    assert capsys.readouterr().out == first  # same seed, same text, with or without the cache


def test_cli_reports_bad_input_as_a_sentence(tmp_path, capsys):
    assert train_main(["--data", "addition", "--n-embd", "30", "--n-head", "4", "--out", str(tmp_path / "x")]) == 2
    assert "divisible" in capsys.readouterr().err
    out = tmp_path / "cli"
    train_main(["--data", "addition", "--preset", "tiny", "--max-iters", "2", "--sample-tokens", "0", "--out", str(out)])
    capsys.readouterr()
    assert sample_main(["--checkpoint", str(out), "--prompt", "hello"]) == 2
    err = capsys.readouterr().err
    assert "'e'" in err and "'h'" in err and "never saw" in err


def test_the_validation_curve_gets_cheaper_early_points_so_it_bends_like_the_training_curve(tmp_path, addition):
    """A 200-step interval would draw the validation loss as one straight line from step 0 to 200: three
    early estimates (a quarter of the batches, no checkpoint) give it its bend."""
    t = trainer_for(addition, tmp_path / "run", max_iters=200, eval_interval=200, eval_iters=8, batch_size=4)
    saves = []
    t.add_callback("on_save", saves.append)
    assert t.run() == "finished"
    rows = ckpt.read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [0, 25, 50, 100, 200]
    assert rows[1]["val_loss"] < rows[0]["val_loss"] and rows[3]["val_loss"] < rows[1]["val_loss"]
    assert len(saves) == 2  # checkpoints at 0 and 200 only: the early points cost no save
