"""gpt.jobs.sampling: requests that arrive together share one model and one decode loop; a run still
training is snapshotted once per step, however many ask; the text streamed is the text alone."""

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.engine import generate
from gpt.jobs import sampling as gen
from gpt.model import ARCHITECTURES, GPT, GPTConfig
from gpt.tokenizer import CharTokenizer

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "shakespeare-char"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_requests_that_miss_the_cache_together_load_the_model_once(monkeypatch):
    if not (SHIPPED / ckpt.WEIGHTS).exists():
        pytest.skip("the shipped checkpoint is not here")
    loads, real = [], ckpt.load_checkpoint
    monkeypatch.setattr(ckpt, "load_checkpoint", lambda *a, **kw: loads.append(1) or real(*a, **kw))
    cache, start = gen.ModelCache(), threading.Barrier(8)
    got = []

    def ask():
        start.wait()
        got.append(cache.get(SHIPPED))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(loads) == 1 and len(got) == 8 and all(item is got[0] for item in got)  # one model, one decode loop


def fake_trainer(step: int):
    tok = CharTokenizer.from_text("abcdefgh\n")
    torch.manual_seed(step)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16,
                          **ARCHITECTURES["modern"]))
    made = []

    def snapshot_model():
        made.append(1)
        copy = GPT(model.config)
        copy.load_state_dict(model.state_dict())
        return copy.eval()

    return SimpleNamespace(step=step, tokenizer=tok, snapshot_model=snapshot_model, made=made)


def test_a_training_run_is_snapshotted_once_per_step():
    cache, trainer = gen.ModelCache(), fake_trainer(5)
    first = cache.snapshot("run", trainer)
    assert cache.snapshot("run", trainer) is first and len(trainer.made) == 1 and first.live and first.step == 5
    trainer.step = 6  # an optimizer step later: new weights, a new snapshot and its own decode loop
    second = cache.snapshot("run", trainer)
    assert second is not first and second.step == 6 and second.decoder is not first.decoder
    assert len(trainer.made) == 2


def test_the_streamed_text_is_the_text_alone_and_ends_with_everything():
    trainer = fake_trainer(1)
    loaded = gen.ModelCache().snapshot("run", trainer)
    prepared = gen.prepare(loaded, gen.SampleRequest("run", prompt="abc", max_new_tokens=40, seed=3), 100)
    texts = list(gen.stream(loaded, prepared, interval=0))
    alone = trainer.tokenizer.decode(generate(loaded.model, prepared.ids, prepared.settings))
    assert texts[0] == "abc" and texts[-1] == "abc" + alone
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))
