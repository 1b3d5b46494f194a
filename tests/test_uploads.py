"""Gradio's upload cache: swept by age and size, and an upload swept before it was used said as such.

The sweeper (`gpt.ui.uploads`) deletes cached uploads after an hour, and sooner
when the cache passes its size. A page still holds the name of the file, so a
Start pressed after lunch reads a path the server no longer has: each tab says
"upload it again" in a sentence that names the file and never the server's
folder, and makes nothing.
"""

from __future__ import annotations

import os
import time

import pytest

from gpt.jobs import JobManager
from gpt.jobs.sampling import ModelCache
from gpt.limits import Limits
from gpt.ui import uploads
from gpt.ui.chat_tab import ChatHandlers
from gpt.ui.checkpoints_tab import CheckpointHandlers
from gpt.ui.exchange import ExchangeHandlers
from gpt.ui.lesson_tab import LessonHandlers
from gpt.ui.train_tab import TrainHandlers
from helpers_app import SLIDERS


def test_cached_uploads_are_swept_by_age_and_total_size(tmp_path):
    old, new, newer = (tmp_path / n for n in ("a/old.txt", "b/new.bin", "c/newer.bin"))
    for path, size in ((old, 10), (new, 600), (newer, 600)):
        path.parent.mkdir()
        path.write_bytes(b"x" * size)
    now = time.time()
    os.utime(old, (now - 7200, now - 7200))
    os.utime(new, (now - 60, now - 60))
    assert uploads.sweep(tmp_path, max_total_bytes=1000, now=now) == 2  # the stale one, then the oldest over the cap
    assert not old.exists() and not new.exists() and newer.exists()


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", Limits(max_upload_mb=5), device="cpu")
    yield m
    m.shutdown()


def swept(cache, name: str, data: bytes) -> str:
    """A file uploaded into the cache (as Gradio keeps it: a folder of its own), then swept: its path."""
    path = cache / "3f9a" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - 2 * uploads.MAX_AGE_S,) * 2)
    assert uploads.sweep(cache, max_total_bytes=10**9) == 1 and not path.exists()
    return str(path)


@pytest.mark.filterwarnings("ignore::UserWarning")  # each refusal also pops up as a toast
def test_an_upload_swept_before_it_was_used_is_a_sentence_on_every_tab(manager, tmp_path):
    cache = tmp_path / "gradio"
    text = swept(cache, "sonnet.txt", b"Shall I compare thee to a summer's day?\n" * 100)
    chats = swept(cache / "2", "mine.jsonl", b'{"messages": [{"role": "user", "content": "hi"}]}\n')
    ckpt = swept(cache / "3", "model.safetensors", b"\0" * 64)
    train, lesson, chat = TrainHandlers(manager), LessonHandlers(manager), ChatHandlers(manager, ModelCache())
    said = {
        "train: the corpus": train.describe_corpus("upload", text, None, "char", 2048, "")[0],
        "train: Start": train.start("alice", "upload", text, None, "char", 2048, "tiny", "gpt", "classic", *SLIDERS,
                                    False),
        "lesson: a step": lesson.show("upload", text, None, "char", 512, "data", 1337, 8, 4, "alice")[0],
        "lesson: the ladder": lesson.start_ladder("alice", "upload", text, None, "char", 512, "1-2")[0],
        "chat: fine-tune": chat.start_finetune("alice", "parent", "file", chats, 0, 20, 1e-3, 8)[0],
        "chat: the mask": chat.show_mask("alice", "task", None, [], "parent", "file", chats),
        "checkpoints: upload": CheckpointHandlers(manager).upload("alice", ckpt)[0],
        "exchange: import": ExchangeHandlers(manager).upload("alice", [ckpt]),
    }
    for where, message in said.items():
        name = "sonnet.txt" if where.startswith(("train", "lesson")) else "mine.jsonl" if "chat" in where \
            else "model.safetensors"
        assert f"The file you uploaded ({name}) is no longer on the server" in message, (where, message)
        assert "Upload it again" in message and "3f9a" not in message and str(tmp_path) not in message, (where, message)
    assert manager.runs.run_names() == [] and not [p for p in manager.root.iterdir() if p.is_dir()]  # nothing made
