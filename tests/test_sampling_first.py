"""Sampling first: while text is being decoded in the app's process (a class pressing Generate), a run
training on the same CPU waits after its steps (`gpt.jobs.thread_runner.SamplingFirst`), and trains at full
speed again the moment the decoding ends. The two share one interpreter lock; a burst of requests gets the
CPU, requests that never stop take only a share of the run's time."""

import time

import pytest
import torch

from gpt.batching import BatchDecoder, decoding, wait_until_idle
from gpt.engine import SamplingSettings
from gpt.jobs import thread_runner
from gpt.model import GPT, GPTConfig

from helpers_app import addition, tiny_request, wait_until
from helpers_class import manager  # noqa: F401 - the fixture


def steps_in(job, seconds: float) -> int:
    before = job.trainer.step
    time.sleep(seconds)
    return job.trainer.step - before


def test_a_run_waits_while_text_is_decoded_and_trains_on_after(manager, monkeypatch):  # noqa: F811
    monkeypatch.setattr(thread_runner, "SAMPLING_FIRST_BURST_S", 10.0)  # the whole decoding is one burst
    job = manager.start("ada", addition(), tiny_request(1_000_000))
    wait_until(lambda: job.trainer is not None and job.trainer.step > 2, what="the run trains")
    free = steps_in(job, 2.0)

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    # far more than 2 s of tokens on any CPU (a 2-core Zen 4 decoded 10,000 of this model's in under 2 s); it is
    # cancelled after the measurement
    stream = BatchDecoder(model).submit([1], SamplingSettings(max_new_tokens=200_000, temperature=0))
    wait_until(decoding, what="the decode loop to start")
    busy = steps_in(job, 2.0)
    still_decoding = decoding()
    stream.cancel()
    assert wait_until_idle(10.0) and not decoding()
    after = steps_in(job, 2.0)

    assert still_decoding, "the request ended before the measurement did; give it more tokens"
    assert busy <= 2, f"{busy} steps in 2 s of decoding: the run did not wait"
    assert free >= 20 and after >= 20, (free, busy, after)  # it trains on after (403 steps while decoding, unwaited)
    assert job.state == "running"
    manager.stop("ada", job.name)


def test_requests_that_never_stop_take_only_a_share_of_the_runs_time(monkeypatch):
    """A budget of waiting: the burst first, then `share` of the time that passes, however long text is decoded
    (a clock of our own: 150 training steps of 20 ms while text is decoded all along)."""
    from types import SimpleNamespace

    clock = SimpleNamespace(t=0.0)
    monkeypatch.setattr(thread_runner, "time", SimpleNamespace(monotonic=lambda: clock.t))
    monkeypatch.setattr(thread_runner, "decoding", lambda: True)  # text is decoded the whole time
    waited = []

    def wait(timeout):  # the decoding never ends within the timeout
        clock.t += timeout
        waited.append(timeout)
        return False

    monkeypatch.setattr(thread_runner, "wait_until_idle", wait)
    after_step = thread_runner.SamplingFirst(burst_s=0.3, share=0.25)
    for _ in range(150):
        clock.t += 0.02  # a training step
        after_step()
    assert waited[0] == pytest.approx(0.3)  # the burst: the whole budget at once
    assert max(waited[1:]) < 0.1 and max(waited[10:]) < 0.01  # then a little after each step, never a long stall
    trained = 150 * 0.02
    assert sum(waited[10:]) / (clock.t - sum(waited[:10]) - 10 * 0.02) == pytest.approx(0.25, abs=0.01)
    assert trained / clock.t > 0.65
    clock.t += 5.0  # a long step (a starved CPU) earns a longer wait, but never more than the burst
    after_step()
    assert waited[-1] == pytest.approx(0.3)
