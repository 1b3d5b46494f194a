"""torchrun with two Gloo processes on the CPU trains like one process with the same batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.engine import SamplingSettings, generate
from gpt.jobs import JobManager
from gpt.jobs import sampling as gen
from gpt.ui import frames as plots, library

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--data", "addition", "--lr", "1e-2", "--preset", "tiny", "--max-iters", "30", "--eval-interval", "15", "--eval-iters", "4",
        "--batch-size", "16", "--dropout", "0", "--sample-tokens", "0", "--seed", "7", "--dtype", "float32"]


def run(cmd, tmp_path):
    env = dict(os.environ, GPT_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.timeout(300)
def test_torchrun_two_processes_match_one_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "ddp"
    run([sys.executable, "-m", "gpt.train", *ARGS, "--out", str(single)], tmp_path)
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gpt.train",
         *ARGS, "--out", str(multi)], tmp_path)

    a, b = ckpt.read_metrics(single), ckpt.read_metrics(multi)
    assert [r["step"] for r in b] == [0, 15, 30]  # one writer: no duplicated rows from rank 1
    assert b[-1]["val_loss"] < b[0]["val_loss"] - 0.15  # it learns
    # Same effective batch and seed: the same curve. The tolerance covers float sums in another order,
    # which Adam amplifies slowly (measured: 1e-8 apart after 10 steps, 0.02 after 40 at lr 1e-2).
    for ra, rb in zip(a, b):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], abs=5e-3)
        assert rb["val_loss"] == pytest.approx(ra["val_loss"], abs=5e-3)

    loaded = ckpt.load_checkpoint(multi)
    assert loaded.meta["world_size"] == 2 and loaded.step == 30
    sa = ckpt.load_checkpoint(single).model.state_dict()
    for k, v in loaded.model.state_dict().items():
        torch.testing.assert_close(v, sa[k], atol=2e-3, rtol=1e-3)
    assert sorted(p.name for p in multi.iterdir()) == sorted(p.name for p in single.iterdir())
    ids = loaded.tokenizer.encode("12+13=")
    text = loaded.tokenizer.decode(generate(loaded.model, ids, SamplingSettings(max_new_tokens=20, seed=1)))
    assert len(text) == 20

    # The app: the torchrun run, uploaded as its one file, is listed with its 2 processes and samples.
    manager = JobManager(tmp_path / "app-runs", device="cpu")
    try:
        name = library.import_checkpoint(manager, "alice", str(multi / ckpt.WEIGHTS), "ddp.safetensors")
        (listed,) = manager.runs.list_runs("alice")
        assert listed.processes == 2
        assert library.table_rows([listed])[0][library.TABLE_HEADERS.index("processes")] == 2
        assert "2 processes (torchrun)" in plots.progress_html(manager.runs.status(name, "alice"))
        loaded = gen.open_run(manager, gen.ModelCache(), "alice", name)
        req = gen.SampleRequest(name, prompt="12+13=", max_new_tokens=12, seed=3)
        prepared = gen.prepare(loaded, req, 100)
        assert len(list(gen.stream(loaded, prepared, interval=0))[-1]) == len("12+13=") + 12  # prompt + new
    finally:
        manager.shutdown()
