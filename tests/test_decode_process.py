"""Decoding in a process of its own (gpt.decode_process): the same tokens as the server's own loop, bit for
bit; Stop and a reader that goes away reach the child; a child that dies ends its requests with a sentence
and the next request starts a new one; the server counts the child's work as decoding (a run training
beside it waits, gpt.jobs.thread_runner)."""

import os
import signal
import sys
import threading
import time

import pytest
import torch

from gpt import batching, decode_process
from gpt.batching import BatchDecoder
from gpt.decode_process import ProcessDecoder, decoder_for
from gpt.engine import SamplingSettings, generate
from gpt.errors import SamplingError
from gpt.model import ARCHITECTURES, GPT, GPTConfig

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the decode process needs a POSIX socket pair")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the child and the server's decode loop run
    yield
    torch.set_num_threads(before)


def settings(n, t=0.8, k=None, p=None, seed=None):
    return SamplingSettings(max_new_tokens=n, temperature=t, top_k=k, top_p=p, seed=seed)


def test_the_child_gives_the_text_of_the_servers_own_loop_bit_for_bit(shipped):
    model, tok = shipped
    requests = [
        (tok.encode("ROMEO:"), settings(90, t=0)),  # greedy
        (tok.encode("\n"), settings(150, seed=1)),  # past the 64-token context: slides
        (tok.encode("JULIET:\nO"), settings(40, t=1.3, k=5, seed=2)),
        (tok.encode("First Citizen"), settings(70, t=0.7, p=0.9, seed=3)),
        (tok.encode("\n"), settings(1, seed=4)),
    ]
    remote = ProcessDecoder(model)
    streams = [remote.submit(ids, s) for ids, s in requests]
    got = [list(s) for s in streams]
    here = BatchDecoder(model)
    assert got == [list(here.submit(ids, s)) for ids, s in requests]
    assert got == [generate(model, ids, s) for ids, s in requests]  # and each as it is alone
    assert [len(g) for g in got] == [90, 150, 40, 70, 1] and remote.active == 0


def test_stop_and_a_reader_gone_end_their_request_and_leave_the_others_intact(shipped):
    model, tok = shipped
    remote = ProcessDecoder(model)
    stop = threading.Event()
    stopped = remote.submit(tok.encode("\n"), settings(2000, seed=31), should_stop=stop.is_set)
    gone = remote.submit(tok.encode("\n"), settings(2000, seed=32))
    other = remote.submit(tok.encode("\n"), settings(300, seed=33))
    reader = iter(gone)
    first = [next(reader) for _ in range(10)]
    reader.close()  # a closed browser tab
    got = []
    for token in stopped:
        got.append(token)
        if len(got) == 5:
            stop.set()
    assert 5 <= len(got) < 2000 and got == generate(model, tok.encode("\n"), settings(len(got), seed=31))
    assert first == generate(model, tok.encode("\n"), settings(10, seed=32))
    assert list(other) == generate(model, tok.encode("\n"), settings(300, seed=33))
    deadline = time.time() + 30
    while remote.active and time.time() < deadline:  # the cancelled request's end comes back from the child
        time.sleep(0.05)
    assert remote.active == 0


def test_an_empty_prompt_is_refused_at_submit_and_an_error_in_the_child_reaches_its_reader():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=32, **ARCHITECTURES["modern"])).eval()
    remote = ProcessDecoder(model)
    with pytest.raises(SamplingError, match="no tokens"):
        remote.submit([], settings(5))
    with pytest.raises(IndexError):  # 99: no such token; raised in the child, read here
        list(remote.submit([99], settings(5)))
    assert list(remote.submit([1], settings(6, t=0))) == generate(model, [1], settings(6, t=0))  # the next one runs


def streaming(model, tok):
    """A long request under way in the child: its decoder, its reader (one token read) and the child."""
    remote = ProcessDecoder(model)
    reader = iter(remote.submit(tok.encode("\n"), settings(100_000, seed=5)))
    next(reader)
    return remote, reader, decode_process.process()


def test_a_child_that_dies_ends_its_requests_with_a_sentence_and_the_next_request_starts_another(shipped):
    model, tok = shipped
    remote, reader, child = streaming(model, tok)
    os.kill(child.proc.pid, signal.SIGKILL)  # out of memory, a crash: the server's process lives on
    with pytest.raises(SamplingError, match="press Generate again"):
        list(reader)
    assert not child.alive and remote.active == 0
    assert list(remote.submit(tok.encode("\n"), settings(30, seed=6))) == generate(model, tok.encode("\n"),
                                                                                   settings(30, seed=6))
    assert decode_process.process() is not child


def test_the_server_counts_the_childs_work_as_decoding(shipped):
    model, tok = shipped
    remote = ProcessDecoder(model)
    assert batching.wait_until_idle(30)
    stream = remote.submit(tok.encode("\n"), settings(2000, seed=7))
    reader = iter(stream)
    next(reader)
    assert batching.decoding() and not batching.wait_until_idle(0.05)  # a run training here waits (SamplingFirst)
    reader.close()
    assert batching.wait_until_idle(30) and not batching.decoding()


def test_a_model_on_the_cpu_decodes_in_the_child_unless_switched_off(monkeypatch):
    model = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    assert isinstance(decoder_for(model), ProcessDecoder)
    monkeypatch.setenv("GPT_DECODE_PROCESS", "0")
    assert isinstance(decoder_for(model), BatchDecoder)


def test_a_child_that_cannot_start_leaves_the_decoding_in_the_servers_process(shipped, monkeypatch, capsys):
    model, tok = shipped
    monkeypatch.setattr(decode_process, "_process", None)
    monkeypatch.setattr(decode_process, "_cannot_start", False)
    monkeypatch.setattr(decode_process, "child_command", lambda fd: [sys.executable, "-c", "raise SystemExit(3)"])
    remote = ProcessDecoder(model)
    got = list(remote.submit(tok.encode("\n"), settings(40, seed=8)))  # no error for the student: decoded here
    assert got == generate(model, tok.encode("\n"), settings(40, seed=8))
    assert decode_process.process() is None and remote._here is not None and remote.active == 0
    assert "did not start (exit status 3)" in capsys.readouterr().err


class OnlyHere(GPT):
    """A model class the child cannot import (it lives in this test module)."""


def test_a_model_the_child_cannot_load_ends_its_requests_with_the_reason_and_the_rest_go_on(shipped):
    model, tok = shipped
    torch.manual_seed(0)
    odd = OnlyHere(GPTConfig(vocab_size=30, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    with pytest.raises(ModuleNotFoundError):
        list(ProcessDecoder(odd).submit([1], settings(5)))
    child = decode_process.process()
    assert child.alive
    assert list(ProcessDecoder(model).submit(tok.encode("\n"), settings(20, seed=9))) == generate(
        model, tok.encode("\n"), settings(20, seed=9))
    assert decode_process.process() is child


def test_the_child_compiles_a_served_models_step_and_decodes_with_it(monkeypatch):
    """A run on disk is decoded with its compiled step once the child has compiled it in the background
    (gpt.compiled_step): the server hears that it is ready, and the text is then the compiled step's, bit for
    bit; before, the eager step's. The shipped model's step is packaged (`prepare(package=True)`, as the
    server's start does); another run's is torch.compile's graph, cheap for a second run of one shape."""
    from gpt.compiled_step import CompiledStep

    monkeypatch.setenv("GPT_COMPILE_DECODE", "1")
    monkeypatch.setattr(decode_process, "_process", None)  # a new child, with compiling on
    torch.manual_seed(0)  # the small modern model of tests/test_compiled_step.py: its compiled code is cached
    model = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=32, **ARCHITECTURES["modern"])).eval()
    assert ProcessDecoder(model, compile=True).compile == "compiled" and not ProcessDecoder(model).compile
    remote = ProcessDecoder(model, compile=True)
    remote.prepare(package=True)
    requests = [([1], settings(40, seed=1)), ([2, 3], settings(25, t=0)), ([4], settings(30, k=5, seed=2))]
    eager = [generate(model, ids, s) for ids, s in requests]
    assert [list(remote.submit(ids, s)) for ids, s in requests] == eager  # not compiled yet, or the same tokens
    deadline = time.monotonic() + 300
    while not remote.compiled and remote.compile_failed is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert remote.compiled and remote.compiled_how == "packaged", remote.compile_failed
    here = CompiledStep(model)
    assert here.warm()
    streams = [remote.submit(ids, s) for ids, s in requests]
    assert [list(s) for s in streams] == [generate(model, ids, s, step=here) for ids, s in requests]
    torch.manual_seed(1)  # a student's run of the same shape: torch.compile's graph
    other = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=32, **ARCHITECTURES["modern"])).eval()
    theirs = ProcessDecoder(other, compile=True)
    list(theirs.submit([1], settings(5)))
    while not theirs.compiled and theirs.compile_failed is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert theirs.compiled and theirs.compiled_how == "compiled", theirs.compile_failed
    graph = CompiledStep(other, package=False)
    assert graph.warm() and graph.how == "compiled"
    assert [list(theirs.submit(ids, s)) for ids, s in requests] == [generate(other, ids, s, step=graph) for ids, s in requests]
    decode_process.process().proc.kill()  # this test's child; the next test starts its own


def test_a_fault_in_the_servers_reader_ends_the_requests_with_a_sentence_not_a_wait(shipped, monkeypatch, capsys):
    """The reader thread once died of 'dictionary changed size during iteration' (requests joining while it
    looked for stopped ones) and a class's streams waited for ever: any fault there ends them with the sentence
    a dead child gives, and the next request starts a new child."""
    model, tok = shipped
    remote, reader, child = streaming(model, tok)

    def broken():
        raise RuntimeError("dictionary changed size during iteration")

    monkeypatch.setattr(child, "_send_cancels", broken)
    with pytest.raises(SamplingError, match="press Generate again"):
        list(reader)
    assert "dictionary changed size" in capsys.readouterr().err
    assert child.proc.wait(30) is not None and not child.alive
    assert list(remote.submit(tok.encode("\n"), settings(20, seed=6))) == generate(model, tok.encode("\n"),
                                                                                   settings(20, seed=6))
