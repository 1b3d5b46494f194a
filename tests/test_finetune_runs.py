"""A fine-tune is an ordinary run of the one run service: any run a person may see becomes a chat model and trains
on conversations with the one trainer (the queue, Stop/Resume, checkpoints, limits, GPU slices)."""

from __future__ import annotations

import json

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.chat import ChatTokenizer
from gpt.corpus import Corpus
from gpt.errors import GPTError
from gpt.jobs import JobManager, RunRequest
from gpt.limits import Limits
from helpers_app import addition, tiny_request, wait_until

pytestmark = pytest.mark.timeout(600)
BIG = Limits(max_concurrent_jobs=1, max_params=5_000_000, max_iters=1_000_000)
WORDS = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", BIG, device="cpu")
    yield m
    m.shutdown()


def parent_run(m: JobManager, owner: str = "alice") -> str:
    """A small pretrained character run on a text without digits or '+': what the class's first run is like."""
    job = m.start(owner, Corpus("words", WORDS, "text"), tiny_request(30, block_size=32))
    wait_until(lambda: job.state == "finished", timeout=120, what="the parent run")
    return job.name


def finetune(task: str | None = "addition", parent: str = "", **kw) -> RunRequest:
    return RunRequest(kind="finetune", parent=parent, task=task, **{"max_iters": 120, "max_seconds": 0,
                                                                    "batch_size": 8, **kw})


def test_a_run_becomes_a_chat_model_and_fine_tunes_as_an_ordinary_run(manager):
    parent = parent_run(manager)
    job = manager.start("alice", None, finetune(parent=parent))
    wait_until(lambda: job.state in ("finished", "failed", "stopped"), timeout=300, what="the fine-tune")
    assert job.state == "finished", job.error
    saved = ckpt.load_checkpoint(manager.root / job.name)
    tok = saved.tokenizer
    assert isinstance(tok, ChatTokenizer) and {"+", "2", "5", "9", "?"} <= set(tok.base.chars)  # the data's characters
    parent_vocab = ckpt.load_checkpoint(manager.root / parent).tokenizer.vocab_size
    assert tok.vocab_size > parent_vocab and saved.meta["parent"] == parent and saved.meta["task"] == "addition"
    assert "Added" in saved.meta["grown"] and "characters" in saved.meta["grown"]
    rows = ckpt.read_metrics(manager.root / job.name)
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 120
    assert all("val_accuracy" in r and "val_ended" in r and 0 <= r["val_accuracy"] <= 1 for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 0.5  # the masked loss really falls
    status = manager.runs.status(job.name, "alice")
    assert status.kind == "finetune" and status.parent == parent and status.chat and status.task == "addition"
    assert not manager.runs.status(parent, "alice").chat  # the parent is untouched
    assert status.latest_sample.startswith("Q: What is ")


def test_only_a_run_the_asker_may_see_can_be_fine_tuned(manager):
    parent = parent_run(manager, "alice")
    with pytest.raises(GPTError, match="There is no run named"):
        manager.start("bob", None, finetune(parent=parent))
    with pytest.raises(GPTError, match="Unknown task"):
        manager.start("alice", None, finetune(parent=parent, task="poetry"))
    with pytest.raises(GPTError, match="built-in task or upload a conversation file"):
        manager.start("alice", None, finetune(parent=parent, task=None))


def test_a_fine_tune_on_a_conversation_file_stops_and_resumes_exactly_where_it_was(manager):
    parent = parent_run(manager)
    lines = [json.dumps({"messages": [{"role": "user", "content": f"Say {w}"},
                                      {"role": "assistant", "content": w}]}) for w in ("hear", "me", "speak") * 20]
    mine = Corpus("mine.jsonl", "\n".join(lines), "text")
    job = manager.start("alice", mine, finetune(task=None, parent=parent, max_iters=100_000))
    wait_until(lambda: job.trainer is not None and job.trainer.step > 5, timeout=120, what="training")
    manager.stop("alice", job.name)
    manager.wait(job.name, 60)
    stopped_at = ckpt.load_checkpoint(manager.root / job.name).step
    again = manager.resume("alice", job.name)
    wait_until(lambda: again.trainer is not None and again.trainer.step > stopped_at + 2, timeout=120, what="more")
    assert again.trainer.objective.name == "fine-tune" and again.trainer.step > stopped_at
    manager.stop("alice", job.name)
    manager.wait(job.name, 60)
    saved = ckpt.load_checkpoint(manager.root / job.name)
    assert saved.meta["task"] == "mine.jsonl" and (manager.root / job.name / "corpus.txt").exists()


def test_a_bad_conversation_file_is_refused_at_start_with_the_line_and_the_field(manager):
    parent = parent_run(manager)
    bad = Corpus("bad.jsonl", '{"messages": [{"role": "bot", "content": "hi"}]}', "text")
    with pytest.raises(GPTError, match="Line 1: .*'role' must be user, assistant or system, got 'bot'"):
        manager.start("alice", bad, finetune(task=None, parent=parent))
    assert manager.runs.current_run("alice") == parent  # nothing was made


def test_the_masked_loss_counts_only_the_assistants_tokens(manager):
    """Through the trainer's objective: a batch's targets are -1 exactly off the assistant's tokens."""
    from gpt.chat.batches import ChatBatches
    from gpt.chat.tasks import task_from_name
    from gpt.tokenizer import CharTokenizer

    tok = ChatTokenizer(CharTokenizer.from_text("0123456789+ ?Whatis"))
    batches = ChatBatches(task_from_name("addition"), tok, 64)
    x, y = batches.get_batch("train", 4, 64, "cpu", torch.Generator().manual_seed(0))
    counted = y != -1
    assert counted.any() and (~counted).any()
    targets = y[counted]
    assert all(t == tok.end_id or not tok.is_special(int(t)) for t in targets)  # answers and <|end|> only


def test_a_fine_tune_trains_in_gpu_slices_like_any_run(tmp_path):
    """ZeroGPU: the grown parent is written on the CPU before the first slice; the slices train the fine-tune."""
    from gpt.jobs.slice_runner import SliceRunner
    from gpt.jobs.slices import train_slice
    from gpt.jobs.zerogpu import SliceSettings, StandIn

    threads = JobManager(tmp_path / "runs", BIG, device="cpu")
    parent = parent_run(threads)
    threads.shutdown()
    m = JobManager(tmp_path / "runs", BIG, device="cpu", runner=SliceRunner(StandIn(train_slice, 20), SliceSettings(20, 4)))
    job = m.start("alice", None, finetune(parent=parent, max_iters=60))
    for _ in range(20):
        if not m.runner.wants_slice(job.name):
            break
        m.run_slice("alice", job.name)
    status = m.runs.status(job.name, "alice")
    assert status.state == "finished" and status.step == 60 and status.chat and status.parent == parent
    assert [r["step"] for r in ckpt.read_metrics(m.root / job.name)][0] == 0


def test_a_fine_tune_keeps_the_limits_waits_in_the_queue_and_is_on_the_teachers_page(tmp_path):
    """The limits are checked at Start on the GROWN model (its new rows count); a second fine-tune waits its turn;
    the teacher sees both, by name, and stops one."""
    from dataclasses import replace

    from gpt.model import count_parameters
    from gpt.ui.teacher import Gate, TeacherHandlers

    from helpers_class import TOKEN

    m = JobManager(tmp_path / "runs", replace(BIG, max_iters=100_000), device="cpu")
    parent, bobs = parent_run(m), parent_run(m, "bob")
    parent_params = count_parameters(ckpt.load_checkpoint(m.root / parent).model_config)["total"]
    made = sorted(p.name for p in m.root.iterdir() if p.is_dir())
    with pytest.raises(GPTError, match="over this server's limit"):
        m.start("alice", None, finetune(parent=parent, max_iters=200_000))
    m.set_limits(replace(m.limits, max_params=parent_params + 10))  # the parent fits; with its new rows it does not
    with pytest.raises(GPTError, match="parameters"):
        m.start("alice", None, finetune(parent=parent))
    assert sorted(p.name for p in m.root.iterdir() if p.is_dir()) == made  # nothing was made
    m.set_limits(replace(m.limits, max_params=BIG.max_params))
    first = m.start("alice", None, finetune(parent=parent, max_iters=100_000))
    second = m.start("bob", None, finetune(parent=bobs, max_iters=20))
    wait_until(lambda: first.trainer is not None, timeout=120, what="the first fine-tune")
    assert m.runs.status(second.name, "bob").queue_position == 1
    teacher = TeacherHandlers(m, Gate(TOKEN))
    teacher.unlock(TOKEN)
    table = teacher.refresh(TOKEN, 120, None)[0]
    assert first.name in table and second.name in table and "alice" not in table and "bob" not in table
    assert "Stopping" in teacher.stop(TOKEN, first.name)
    m.wait(first.name, 60)
    wait_until(lambda: second.state == "finished", timeout=300, what="the queued fine-tune")
    assert m.runs.status(second.name, "bob").chat
    m.shutdown()
