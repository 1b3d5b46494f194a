"""Continuous batching (gpt.batching): requests decoded side by side get, token for token and bit for bit,
what each gets alone (gpt.engine.generate); each keeps its own settings, length, seed and stop; a request
can join while others run and leave without disturbing them."""

import threading

import pytest
import torch
import torch.nn.functional as F

from gpt.batching import BatchDecoder
from gpt.decode_view import RowwiseLinear, decode_view
from gpt.engine import Row, SamplingSettings, generate, prefill
from gpt.kv_cache import RowKVCache
from gpt.errors import SamplingError
from gpt.model import ARCHITECTURES, GPT, GPTConfig



@pytest.fixture(autouse=True)
def threads(request):
    """One thread, as the app decodes on a 2-core machine; a test marked with two runs on two (the kernels
    MKL picks for a matrix product also depend on how many threads share it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(getattr(request, "param", 1))
    yield
    torch.set_num_threads(before)


def small_model(arch: str, block_size: int = 16, vocab: int = 30):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block_size, n_layer=2, n_head=2, n_embd=32,
                         **ARCHITECTURES[arch])).eval()


def settings(n, t=0.8, k=None, p=None, seed=None):
    return SamplingSettings(max_new_tokens=n, temperature=t, top_k=k, top_p=p, seed=seed)


def in_batch(model, requests, threads: int | None = 1) -> list[list[int]]:
    decoder = BatchDecoder(model, threads)
    streams = [decoder.submit(ids, s) for ids, s in requests]
    return [list(s) for s in streams]


# --- the arithmetic: a row's numbers do not depend on the rows beside it -------------------------------


@pytest.mark.parametrize("bias", [False, True])
def test_a_rowwise_linear_gives_each_row_its_one_row_product_bit_for_bit(bias):
    """F.linear over B rows is one matrix product whose kernel depends on B (on this machine's MKL, B = 1,
    2-3 and 4+ give three different results): RowwiseLinear gives every row what it gets alone."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(128, 384, bias=bias)
    rowwise_layer = decode_view(layer)
    assert isinstance(rowwise_layer, RowwiseLinear) and rowwise_layer.weight is layer.weight  # shared, not copied
    x = torch.randn(30, 1, 128)
    alone = torch.cat([F.linear(x[i], layer.weight, layer.bias) for i in range(30)])  # (30, 384)
    for B in (2, 3, 4, 7, 30):
        assert torch.equal(rowwise_layer(x[:B]).view(B, -1), alone[:B])
    for T in (2, 3, 4, 5, 47):  # prompts fed together: each its own (T, 128) product, as it is fed alone
        prompts = torch.randn(30, T, 128)
        alone = torch.stack([F.linear(prompts[i], layer.weight, layer.bias) for i in range(30)])
        for B in (2, 3, 30):
            assert torch.equal(rowwise_layer(prompts[:B]), alone[:B])


def test_a_batched_step_gives_each_row_its_logits_alone_bit_for_bit(shipped):
    model, _ = shipped
    rows = [Row.open(ids, settings(20, seed=i), 64) for i, ids in enumerate([[5], [7, 8, 9], list(range(20, 60))])]
    logits_alone = []
    for row in rows:
        cache = RowKVCache(model, 1)
        with torch.inference_mode():
            prefill(model, cache, 0, row)
            cache.begin([row.fed])
            logits_alone.append(model(torch.tensor([[row.tokens[-1]]]), kv_cache=cache)[0][0, -1])
    cache, view = RowKVCache(model, 3), decode_view(model)
    fresh = [Row.open(r.tokens, r.settings, 64) for r in rows]
    with torch.inference_mode():
        for i, row in enumerate(fresh):
            prefill(view, cache, i, row)
        cache.begin([r.fed for r in fresh])
        together = view(torch.tensor([[r.tokens[-1]] for r in fresh]), kv_cache=cache)[0][:, -1]
    for i in range(3):
        assert torch.equal(together[i], logits_alone[i])


def test_uniforms_drawn_up_front_are_the_ones_drawn_one_per_token():
    row = Row.open([1], settings(50, seed=7), 16)
    gen = torch.Generator().manual_seed(7)
    assert row.uniforms == [torch.rand((1, 1), generator=gen).item() for _ in range(50)]
    assert Row.open([1], settings(50, t=0, seed=7), 16).uniforms == []  # greedy draws nothing


# --- requests side by side equal requests alone ----------------------------------------------------------


def test_the_shipped_model_in_a_batch_equals_each_request_alone(shipped):
    model, tok = shipped
    requests = [
        (tok.encode("ROMEO:"), settings(90, t=0)),  # greedy
        (tok.encode("\n"), settings(120, seed=1)),  # past the 64-token context: slides in the batch
        (tok.encode("\n"), settings(120, seed=2)),
        (tok.encode("First Citizen:\nWe are"), settings(40, t=1.3, k=5, seed=3)),
        (tok.encode("To be"), settings(70, t=1.0, p=0.9, seed=4)),
        (tok.encode("KING"), settings(60, t=0.7, k=20, p=0.8, seed=5)),
        (tok.encode("KING"), settings(60, t=0.7, k=20, p=0.8, seed=6)),
        (tok.encode("x" * 80), settings(30, seed=7)),  # longer than the context: its last 64 tokens
    ]
    alone = [generate(model, ids, s) for ids, s in requests]
    assert in_batch(model, requests) == alone
    assert [len(a) for a in alone] == [s.max_new_tokens for _, s in requests]  # different lengths, each its own
    assert alone[1] != alone[2]  # the seed is each request's own


def test_prompts_and_slides_fed_together_equal_each_fed_alone(shipped, monkeypatch):
    import gpt.batching

    model, tok = shipped
    together, real = [], gpt.batching.prefill_together
    monkeypatch.setattr(gpt.batching, "prefill_together", lambda m, c, slots, rows: together.append(len(rows)) or
                        real(m, c, slots, rows))
    requests = [(tok.encode(p), settings(100, seed=40 + i)) for i, p in enumerate(["ROMEO:", "JULIET", "\n", "\n"])]
    decoder, all_in = BatchDecoder(model), threading.Event()
    # the first request's loop waits before its second step until the three others are queued, so they join in
    # one step whatever the machine's load (the caller can lose the interpreter between two submits)
    first = decoder.submit(*requests[0], should_stop=lambda: not all_in.wait(60))
    streams = [first] + [decoder.submit(ids, s) for ids, s in requests[1:]]
    all_in.set()
    assert [list(s) for s in streams] == [generate(model, ids, s) for ids, s in requests]
    assert together and max(together) >= 2  # the two one-token prompts joined together, and their rows slid together


@pytest.mark.parametrize("threads", [2], indirect=True)
def test_a_batch_equals_alone_on_two_threads_too(shipped, threads):
    model, tok = shipped
    requests = [(tok.encode(p), settings(30, t=t, seed=i)) for i, (p, t) in enumerate([("ROMEO:", 0), ("\n", 0.8),
                                                                                      ("To be, or", 1.1), ("A", 0.5)])]
    assert torch.get_num_threads() == 2
    assert in_batch(model, requests, threads=2) == [generate(model, ids, s) for ids, s in requests]


@pytest.mark.parametrize("threads", [2], indirect=True)
def test_the_decode_loop_runs_on_one_thread_and_gives_the_text_of_two(shipped, threads, monkeypatch):
    """OpenMP's threads outside the main thread sleep between a step's tiny operations and wake for each (4x
    slower on two threads): the loop's own thread uses one, the caller's setting is left alone, and the text
    is what `generate` gives on two (the CLI's, in the main thread)."""
    import gpt.batching

    model, tok = shipped
    seen, real = [], gpt.batching.decode_step
    monkeypatch.setattr(gpt.batching, "decode_step", lambda *a: seen.append(torch.get_num_threads()) or real(*a))
    requests = [(tok.encode(p), settings(40, seed=i)) for i, p in enumerate(["ROMEO:", "\n", "To be"])]
    assert in_batch(model, requests) == [generate(model, ids, s) for ids, s in requests]
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2


@pytest.mark.parametrize("arch", ["classic", "modern"])
def test_learned_and_rotary_positions_in_a_batch_equal_alone_past_the_window(arch):
    model = small_model(arch, block_size=16)
    requests = [([1 + i % 5] * (1 + 3 * i), settings(40 + 7 * i, t=[0, 0.9, 1.0, 1.2][i % 4], seed=i)) for i in range(6)]
    assert in_batch(model, requests) == [generate(model, ids, s) for ids, s in requests]


# --- joining, leaving, stopping --------------------------------------------------------------------------


def test_a_request_joins_mid_flight_and_both_equal_alone(shipped):
    model, tok = shipped
    first, second = (tok.encode("\n"), settings(150, seed=11)), (tok.encode("ROMEO:"), settings(60, seed=12))
    decoder = BatchDecoder(model)
    joined = threading.Event()
    calls = []

    def hold_until_joined():  # the loop asks before each step: at the 25th it waits for the second request
        calls.append(1)
        if len(calls) == 25:
            assert joined.wait(60)
        return False

    a = decoder.submit(first[0], first[1], should_stop=hold_until_joined)
    reader = iter(a)
    got_a = [next(reader) for _ in range(20)]  # the first request is under way
    b = decoder.submit(*second)
    joined.set()
    got_a += list(reader)
    assert got_a == generate(model, *first) and list(b) == generate(model, *second)
    assert decoder.rows_stepped == 210 and decoder.steps < 210  # some steps decoded both


def test_a_request_cancelled_mid_batch_leaves_the_others_intact(shipped):
    model, tok = shipped
    requests = [(tok.encode("\n"), settings(60, seed=s)) for s in (21, 22, 23)]
    decoder = BatchDecoder(model)
    streams = [decoder.submit(ids, s) for ids, s in requests]
    reader = iter(streams[1])
    first_ids = [next(reader) for _ in range(10)]
    reader.close()  # the reader goes away, as a closed browser tab's generator does
    rest = [list(streams[0]), list(streams[2])]
    alone = [generate(model, ids, s) for ids, s in requests]
    assert rest == [alone[0], alone[2]]
    assert first_ids == alone[1][:10] and streams[1].cancelled


def test_stop_ends_one_request_at_the_next_step(shipped):
    model, tok = shipped
    stop = threading.Event()
    decoder = BatchDecoder(model)
    stopped = decoder.submit(tok.encode("\n"), settings(500, seed=31), should_stop=stop.is_set)
    other = decoder.submit(tok.encode("\n"), settings(80, seed=32))
    got = []
    for token in stopped:
        got.append(token)
        if len(got) == 5:
            stop.set()
    assert 5 <= len(got) < 500 and got == generate(model, tok.encode("\n"), settings(len(got), seed=31))
    assert list(other) == generate(model, tok.encode("\n"), settings(80, seed=32))


def test_an_empty_prompt_is_refused_at_submit_and_the_loop_ends_when_idle():
    model = small_model("modern")
    decoder = BatchDecoder(model)
    with pytest.raises(SamplingError, match="no tokens"):
        decoder.submit([], settings(5))
    assert list(decoder.submit([1], settings(5, t=0))) == generate(model, [1], settings(5, t=0))
    thread = decoder._thread
    if thread is not None:
        thread.join(10)
    assert decoder._thread is None  # no thread while nobody is decoding; the next submit starts one
    assert len(list(decoder.submit([2], settings(3)))) == 3


def test_a_failing_step_reaches_every_reader_as_its_error():
    model = small_model("modern", vocab=30)
    decoder = BatchDecoder(model)
    # the first is long enough to be decoding still when the second joins (on a loaded machine the caller can lose
    # its core between two submits: 5 tokens could end first); 99: no such token, its prefill fails the step
    streams = [decoder.submit([1], settings(2_000)), decoder.submit([99], settings(5))]
    for stream in streams:
        with pytest.raises(IndexError):
            list(stream)
    assert list(decoder.submit([1], settings(4, t=0))) == generate(model, [1], settings(4, t=0))  # the next one runs


def test_the_batched_view_leaves_the_model_as_it_was():
    model = small_model("classic")
    model.train()
    view = decode_view(model)
    assert model.training and not view.training and all(m.training for m in model.modules())
    assert all(type(m) is torch.nn.Linear for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert {id(p) for p in view.parameters()} == {id(p) for p in model.parameters()}
