"""ZeroGPU's decorator or its stand-in (gpt.jobs.zerogpu), and where runs are kept (gpt.jobs.storage).

The stand-in must behave as ZeroGPU does where it matters: another process,
arguments and result pickled, a kill at the duration. With the `spaces`
package installed and no ZeroGPU environment, nothing may change.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gpt import checkpoint as ckpt
from gpt.jobs import storage, zerogpu
from gpt.errors import ConfigError, TrainingError
from gpt.jobs.zerogpu import SliceKilled, SliceSettings, StandIn

pytestmark = pytest.mark.timeout(300)


def whoami(tag: str) -> tuple[int, str, str]:
    return os.getpid(), tag, os.environ.get("GPT_ZEROGPU_TEST", "")


def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def refuse(message: str):
    raise TrainingError(message)


def test_the_stand_in_runs_the_call_in_another_process_with_the_callers_environment(monkeypatch):
    monkeypatch.setenv("GPT_ZEROGPU_TEST", "seen")
    pid, tag, env = StandIn(whoami, 60)("hello")
    assert pid != os.getpid() and tag == "hello" and env == "seen"


def test_the_stand_in_kills_the_call_at_its_duration():
    slow = StandIn(nap, 1.0)
    t0 = time.monotonic()
    with pytest.raises(SliceKilled, match="ran past its 1 s"):
        slow(30)
    assert time.monotonic() - t0 < 10
    with pytest.raises(ProcessLookupError):
        os.kill(slow.pids[-1], 0)  # gone, not left running
    assert StandIn(nap, 20)(0.1) == "woke"


def test_an_error_in_the_slice_comes_back_as_itself():
    with pytest.raises(TrainingError, match="no GPU for you"):
        StandIn(refuse, 60)("no GPU for you")


def test_zero_gpu_mode_follows_the_space_and_can_be_forced(monkeypatch):
    monkeypatch.delenv("GPT_ZEROGPU", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert not zerogpu.zero_gpu_mode()
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert zerogpu.zero_gpu_mode()
    monkeypatch.setenv("GPT_ZEROGPU", "0")
    assert not zerogpu.zero_gpu_mode()
    monkeypatch.delenv("SPACES_ZERO_GPU")
    monkeypatch.setenv("GPT_ZEROGPU", "1")
    assert zerogpu.zero_gpu_mode()
    assert not zerogpu.real_zero_gpu()  # forced for tests: the stand-in, never the real decorator
    assert isinstance(zerogpu.gpu(whoami, 30), StandIn)


def test_slice_settings_come_from_the_environment_with_sentences():
    assert SliceSettings.from_env({}) == SliceSettings(60.0, 6.0)
    assert SliceSettings.from_env({"GPT_ZEROGPU_SLICE_S": "120"}).budget_s == 108.0
    assert SliceSettings.from_env({"GPT_ZEROGPU_SLICE_S": "10", "GPT_ZEROGPU_MARGIN_S": "1"}).budget_s == 9.0
    with pytest.raises(ConfigError, match="from 1 to 300 seconds"):
        SliceSettings.from_env({"GPT_ZEROGPU_SLICE_S": "900"})
    with pytest.raises(ConfigError, match="a number of seconds"):
        SliceSettings.from_env({"GPT_ZEROGPU_SLICE_S": "a minute"})
    with pytest.raises(ConfigError, match="less than the slice"):
        SliceSettings.from_env({"GPT_ZEROGPU_SLICE_S": "10", "GPT_ZEROGPU_MARGIN_S": "10"})


def test_with_spaces_installed_and_no_zero_gpu_nothing_changes(monkeypatch, tmp_path):
    """`spaces.GPU` is a no-op off ZeroGPU (its own documented behaviour), and our page adds nothing."""
    spaces = pytest.importorskip("spaces")
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.delenv("GPT_ZEROGPU", raising=False)
    assert spaces.GPU(duration=30)(whoami) is whoami
    import gradio as gr

    from gpt.device import detect_device
    from gpt.jobs import JobManager
    from gpt.jobs.slice_runner import default_runner
    from gpt.jobs.zerogpu import training_device
    from gpt.limits import Limits
    from gpt.ui import slice_timer
    from gpt.ui.page import Page
    from gpt.ui.runtime import describe_runtime

    assert default_runner() is None  # the run service trains in threads, as today
    with gr.Blocks() as demo:
        who = gr.State("me")
        message = gr.Markdown()
        before = len(demo.fns)
        page = Page(manager=JobManager(tmp_path, device="cpu", runner=default_runner()), models=None, who=who,
                    timer=gr.Timer(1.0))
        assert slice_timer.wire(page, message) is None
    assert len(demo.fns) == before  # no event bound: the page is the page of today
    assert "ZeroGPU" not in describe_runtime(Limits())  # the page's line about where training runs
    assert training_device() == detect_device("auto")  # background training as today


# --- storage -----------------------------------------------------------------------------------


def test_runs_live_under_gpt_checkpoint_dir_first(tmp_path):
    s = storage.detect({"GPT_CHECKPOINT_DIR": str(tmp_path / "runs")})
    assert s.root == tmp_path / "runs" and s.volume is None


def test_a_storage_volume_keeps_runs_and_the_page_says_so(tmp_path, monkeypatch):
    s = storage.detect({"GPT_STORAGE_DIR": str(tmp_path), "SPACE_ID": "teacher/build-a-gpt"})
    assert s.root == tmp_path / "checkpoints" and s.volume == tmp_path
    assert "survive a restart" in s.sentence() and str(tmp_path) in s.sentence()
    monkeypatch.setenv("GPT_STORAGE_DIR", str(tmp_path))
    monkeypatch.delenv("GPT_CHECKPOINT_DIR", raising=False)
    assert storage.runs_root() == tmp_path / "checkpoints"  # what the run service uses by default
    inside = storage.detect({"GPT_STORAGE_DIR": str(tmp_path), "GPT_CHECKPOINT_DIR": str(tmp_path / "class-a")})
    assert inside.root == tmp_path / "class-a" and inside.volume == tmp_path


def test_a_space_finds_its_mounted_volume_at_data(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.os.path, "ismount", lambda p: Path(p) == tmp_path)
    s = storage.detect({"SPACE_ID": "teacher/build-a-gpt"}, space_volume=tmp_path)
    assert s.volume == tmp_path and s.root == tmp_path / "checkpoints"
    assert storage.detect({}, space_volume=tmp_path).volume is None  # not on a Space: /data is not looked for
    assert storage.detect({"SPACE_ID": "t/x"}, space_volume=tmp_path / "absent").volume is None


def test_a_space_without_a_volume_says_runs_vanish_and_offers_downloads(tmp_path):
    s = storage.detect({"SPACE_ID": "teacher/build-a-gpt"}, space_volume=tmp_path / "absent")
    assert s.root == Path("checkpoints") and s.on_space and s.volume is None
    assert "wiped when the Space restarts" in s.sentence() and "Download" in s.sentence()
    assert storage.detect({}).sentence() == "Runs are kept in `checkpoints` on this machine."


def test_a_storage_dir_that_is_not_there_is_refused_with_a_sentence(tmp_path):
    with pytest.raises(ConfigError, match="GPT_STORAGE_DIR is .* not a folder this app can write to"):
        storage.detect({"GPT_STORAGE_DIR": str(tmp_path / "nowhere")})


def test_the_shipped_runs_are_copied_onto_a_new_volume_once(tmp_path):
    shipped = tmp_path / "shipped"
    (shipped / "demo-run").mkdir(parents=True)
    (shipped / "demo-run" / "model.safetensors").write_bytes(b"weights")
    (shipped / "not-a-run").mkdir()
    s = storage.detect({"GPT_STORAGE_DIR": str(tmp_path)})
    assert storage.seed_shipped_runs(s, shipped) == ["demo-run"]
    assert (tmp_path / "checkpoints" / "demo-run" / "model.safetensors").read_bytes() == b"weights"
    assert storage.seed_shipped_runs(s, shipped) == []  # already there: left alone
