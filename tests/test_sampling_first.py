"""Sampling first: while text is being decoded in the app's process (a class pressing Generate), a run
training on the same CPU waits after each step (`gpt.jobs.thread_runner`), and trains at full speed again
the moment the decoding ends. The two share one interpreter lock; the class's text comes first."""

import time

import torch

from gpt.batching import BatchDecoder, decoding, wait_until_idle
from gpt.engine import SamplingSettings
from gpt.jobs import thread_runner
from gpt.model import GPT, GPTConfig

from helpers_app import addition, tiny_request, wait_until
from helpers_class import manager  # noqa: F401 - the fixture

WAIT_S = 0.4


def steps_in(job, seconds: float) -> int:
    before = job.trainer.step
    time.sleep(seconds)
    return job.trainer.step - before


def test_a_run_waits_while_text_is_decoded_and_trains_on_after(manager, monkeypatch):  # noqa: F811
    monkeypatch.setattr(thread_runner, "SAMPLING_FIRST_WAIT_S", WAIT_S)
    job = manager.start("ada", addition(), tiny_request(1_000_000))
    wait_until(lambda: job.trainer is not None and job.trainer.step > 2, what="the run trains")
    free = steps_in(job, 2.0)

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    stream = BatchDecoder(model).submit([1], SamplingSettings(max_new_tokens=10_000, temperature=0))
    wait_until(decoding, what="the decode loop to start")
    busy = steps_in(job, 2.0)
    still_decoding = decoding()
    stream.cancel()
    assert wait_until_idle(10.0) and not decoding()
    after = steps_in(job, 2.0)

    assert still_decoding, "the request ended before the measurement did; give it more tokens"
    assert busy <= 2.0 / WAIT_S + 2, f"{busy} steps in 2 s of decoding: the run did not wait"
    assert free >= 3 * busy and after >= 3 * busy, (free, busy, after)  # not a slow machine: it trains on after
    assert job.state == "running"
    manager.stop("ada", job.name)
