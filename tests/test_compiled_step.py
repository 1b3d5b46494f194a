"""The compiled decode step (gpt.compiled_step): it computes what the eager step computes (to float rounding,
the same tokens), one graph serves one request and many with each row's numbers its own (a seed gives the
same text alone or in a class, bit for bit), it never compiles again while serving, and where torch.compile
cannot work the eager step serves the same text."""

import itertools
import os
import sys
import threading

import pytest
import torch

from gpt import compiled_step, packaged_graph
from gpt.batching import BatchDecoder
from gpt.compiled_step import ROWS, CompiledStep
from gpt.decode_view import decode_view
from gpt import engine
from gpt.engine import Row, SamplingSettings, generate, prefill, sample_rows
from gpt.kv_cache import RowKVCache
from gpt.model import ARCHITECTURES, GPT, GPTConfig


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the decode loop runs
    yield
    torch.set_num_threads(before)


def small_model():
    """A small modern model (the shipped model's kind: rotary, QK-norm, ReLU squared)."""
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=32, **ARCHITECTURES["modern"])).eval()


def warm_step(model, how):
    """model's step made the way `how` names: a package (the models up to PACKAGE_MAX_PARAMS) or torch.compile's
    graph (larger ones: the limit set under this model's size)."""
    before, limit = torch.get_num_threads(), compiled_step.PACKAGE_MAX_PARAMS
    torch.set_num_threads(1)
    compiled_step.PACKAGE_MAX_PARAMS = limit if how == "packaged" else 0
    try:
        step = CompiledStep(model)
        assert step.warm(), step.failed
    finally:
        compiled_step.PACKAGE_MAX_PARAMS = limit
        torch.set_num_threads(before)
    assert step.how == how and step.prefills(step.prefill_tokens)
    return step


@pytest.fixture(scope="module")
def packaged():
    """The small model and its packaged step, made once for the module (the C++ compiler takes seconds; a
    package built before is loaded from the cache)."""
    model = small_model()
    return model, warm_step(model, "packaged")


@pytest.fixture(scope="module", params=["packaged", "compiled"])
def warmed(request, packaged):
    """Both ways a step is made, for the tests that must hold for each."""
    if request.param == "packaged":
        return packaged
    model = packaged[0]
    return model, warm_step(model, "compiled")


def settings(n, t=0.8, k=None, p=None, seed=None):
    return SamplingSettings(max_new_tokens=n, temperature=t, top_k=k, top_p=p, seed=seed)


def test_the_compiled_step_gives_the_eager_steps_logits_and_tokens(warmed):
    """Step by step over a whole window (prompt, then one token at a time, past a slide): logits within
    float rounding of the eager step's, and the same greedy and seeded text."""
    model, step = warmed
    view = decode_view(model)
    for rows_alone in ([5], [3, 1, 4, 1, 5, 9, 2, 6]):
        eager_cache, compiled_cache = RowKVCache(model, 1), RowKVCache(model, 1)
        row = Row.open(rows_alone, settings(12, t=0), 16)
        with torch.inference_mode():
            prefill(view, eager_cache, 0, row)
            prefill(view, compiled_cache, 0, Row.open(rows_alone, settings(12, t=0), 16))
            for _ in range(6):
                eager_cache.begin([row.fed])
                eager = view(torch.tensor([[row.tokens[-1]]]), kv_cache=eager_cache, last_only=True)[0][:, -1]
                compiled = step(compiled_cache, torch.tensor([[row.tokens[-1]]]), [row.fed])
                assert compiled.shape == eager.shape == (1, 30)
                torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
                row.fed += 1
                row.take(int(eager.argmax()))
    for s in (settings(40, t=0), settings(40, t=0.9, seed=7), settings(40, t=1.0, k=5, p=0.9, seed=3)):
        assert generate(model, [1, 2, 3], s, step=step) == generate(model, [1, 2, 3], s)


def test_a_slides_rebuild_is_compiled_gives_the_eager_passs_numbers_and_serves_alone_and_in_a_batch(
        warmed, monkeypatch):
    """The context a slide keeps (12 of the 16-token window here) is fed by a compiled pass of one row: its
    logits and the keys and values it writes are the eager pass's to float rounding, other rows are left as they
    were, and a lone request and a batch's rows both rebuild through it."""
    model, step = warmed
    T = step.prefill_tokens
    assert T == 12 and step.prefills(12) and not step.prefills(11) and not step.prefills(16)
    tokens = [(7 * i) % 30 for i in range(T)]
    eager, compiled = RowKVCache(model, 3), RowKVCache(model, 3)
    with torch.inference_mode():
        want = decode_view(model)(torch.tensor([tokens]), kv_cache=eager.row(1, 0), last_only=True)[0][0, -1]
        got = step.prefill(compiled, 1, tokens)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for mine, theirs in ((compiled.k, eager.k), (compiled.v, eager.v)):
        torch.testing.assert_close(mine[:, 1, :, :T], theirs[:, 1, :, :T], rtol=1e-5, atol=1e-5)
        assert mine[:, 1, :, :T].abs().sum() > 0 and not mine[:, [0, 2]].any() and not mine[:, 1, :, T:].any()
    rebuilt = []
    real = step.prefill
    monkeypatch.setattr(step, "prefill", lambda *a: rebuilt.append(a[1]) or real(*a))
    generate(model, [1, 2, 3], settings(40, seed=1), step=step)  # 3 + 40 tokens through a 16-token window
    assert len(rebuilt) == 6  # before the token at 17 tokens, then every 5: 17, 22, 27, 32, 37, 42
    rebuilt.clear()
    decoder = BatchDecoder(model, compiled=step)
    for stream in [decoder.submit([1, 2, 3], settings(20, seed=k)) for k in range(3)]:
        list(stream)
    assert len(rebuilt) == 6  # each request twice (at 17 and 22 tokens), in whichever row it holds then


def test_the_same_seed_gives_the_same_text_alone_and_beside_others_bit_for_bit(warmed):
    """Alone (one row; torch.compile's graph pads it to ROWS), in a batch of fewer than ROWS and of more, with different settings,
    lengths and stops, joining at different steps and sliding past the window: every request's tokens are
    the ones it gets alone through the compiled step."""
    model, step = warmed
    requests = [([1], settings(30, seed=1)), ([2, 3, 4], settings(25, t=0)), (list(range(1, 12)), settings(40, k=4, seed=9)),
                ([5, 6], settings(8, p=0.5, seed=2)), ([7], settings(33, t=1.3, seed=4)), ([8, 9, 10, 11, 12], settings(20, seed=5)),
                ([13], settings(1, seed=6))]
    alone = [generate(model, ids, s, step=step) for ids, s in requests]
    for group in (requests[:2], requests[:ROWS + 3]):
        decoder = BatchDecoder(model, compiled=step)
        streams = [decoder.submit(ids, s) for ids, s in group]
        assert [list(s) for s in streams] == alone[: len(group)]
        assert decoder.steps > 0 and decoder.rows_stepped > decoder.steps  # they really shared steps


def test_a_rows_logits_are_the_same_bits_alone_and_among_any_number_of_rows(warmed):
    """The step's own promise, below the text: a row's logits alone equal its logits beside 1 to 33 other rows
    (random caches, lengths and tokens), bit for bit, each way the step is made."""
    model, step = warmed
    torch.manual_seed(3)
    with torch.inference_mode():
        for B in (2, 3, 4, 5, 8, 17, 34):
            cache = RowKVCache(model, B)
            cache.k.normal_(), cache.v.normal_()
            idx, lengths = torch.randint(0, 30, (B, 1)), torch.randint(1, 16, (B,)).tolist()
            together = step(cache, idx, lengths)
            for r in {0, 1, B // 2, B - 1}:
                alone = RowKVCache(model, 1)
                alone.k[:, 0], alone.v[:, 0] = cache.k[:, r], cache.v[:, r]
                assert torch.equal(step(alone, idx[r : r + 1], [lengths[r]])[0], together[r]), (step.how, B, r)


def test_a_packaged_step_draws_the_unfiltered_rows_ids_as_sampling_would(packaged, monkeypatch):
    """The ids drawn in the package are the ones `sample_rows` draws from the same logits with the same
    temperatures and uniform numbers (64 rows x 8 steps, temperatures 0.3 to 1.7); in a generation only the
    tokens that follow a prompt or a slide (logits of a prefill) are sampled in Python."""
    model, step = packaged
    assert step.draws
    torch.manual_seed(4)
    with torch.inference_mode():
        for n in range(8):
            rows = [Row.open([1], settings(8, t=0.3 + 1.4 * i / 63, seed=100 * n + i), 16) for i in range(64)]
            for r in rows:
                r.made = n
            cache = RowKVCache(model, 64)
            cache.k.normal_(), cache.v.normal_()
            idx, lengths = torch.randint(0, 30, (64, 1)), torch.randint(1, 16, (64,)).tolist()
            logits, ids = step.step_and_draw(cache, idx, lengths, rows)
            assert ids == sample_rows(logits, rows)
    sampled = []
    real = engine.filtered_probs
    monkeypatch.setattr(engine, "filtered_probs", lambda logits, *a, **k: sampled.append(len(logits)) or real(logits, *a, **k))
    generate(model, [1, 2, 3], settings(40, seed=8), step=step)  # 3 + 40 tokens through a 16-token window
    assert sampled == [1] * 7  # after the prompt, then the 6 slides (17, 22, ..., 42 tokens)


def test_a_request_stopped_mid_batch_leaves_the_others_their_text(warmed):
    model, step = warmed
    requests = [([1], settings(30, seed=1)), ([2], settings(30, seed=2)), ([3], settings(30, seed=3))]
    alone = [generate(model, ids, s, step=step) for ids, s in requests]
    made, looks = [], itertools.count(1)
    decoder = BatchDecoder(model, compiled=step)
    # the loop asks as the request joins and once a step: it stops after ~7 tokens whatever the reader's pace (a
    # stop on the tokens read came after all 30 on a fast CPU, whose loop ran ahead of the reader)
    streams = [decoder.submit(ids, s, should_stop=(lambda: next(looks) > 8) if i == 1 else None)
               for i, (ids, s) in enumerate(requests)]
    for token in streams[1]:
        made.append(token)
    assert [list(streams[0]), list(streams[2])] == [alone[0], alone[2]]
    assert 5 <= len(made) < 30 and made == alone[1][: len(made)]


def test_serving_never_compiles_again(warmed):
    """Once warm, any number of rows and any cache capacity run what was made at warm-up: a compile in the
    middle of a class would stop every stream for seconds. The second step of the same model is loaded from a
    cache (the package's, or PyTorch's compile cache, whose graphs carry guards of their own: one was rows !=
    capacity)."""
    model, step = warmed
    again = warm_step(model, step.how)
    assert again.loaded or step.how == "compiled"
    with torch.compiler.set_stance("fail_on_recompile"), torch.inference_mode():
        for compiled in (step, again):
            for rows, capacity in ((1, 1), (2, 2), (3, 9), (4, 4), (5, 8), (17, 17), (30, 30), (33, 40), (8, 64)):
                cache = RowKVCache(model, capacity)
                logits = compiled(cache, torch.ones(rows, 1, dtype=torch.long), [0] * rows)
                assert logits.shape == (rows, 30) and torch.isfinite(logits).all()
            for row, first in ((0, 1), (capacity - 1, 2)):  # the slide's rebuild too, in any row
                assert compiled.prefill(cache, row, [first] * compiled.prefill_tokens).shape == (30,)


def test_a_step_that_cannot_compile_leaves_the_eager_step_serving(monkeypatch, capsys, tmp_path):
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16, **ARCHITECTURES["modern"])).eval()
    step = CompiledStep(model)

    def no_compiler(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setenv(packaged_graph.CACHE_ENV, str(tmp_path))  # nothing built before
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", no_compiler)
    monkeypatch.setattr(torch, "compile", lambda *args, **kwargs: no_compiler)
    assert step.warm() is False and not step.ready and "C++ compiler" in step.failed
    assert "not compiled here" in capsys.readouterr().err
    s = settings(20, seed=3)
    decoder = BatchDecoder(model, compiled=step)
    assert list(decoder.submit([1], s)) == generate(model, [1], s)


def test_a_rebuild_that_cannot_be_packaged_leaves_the_packaged_step_and_an_eager_rebuild(packaged, monkeypatch, capsys):
    model, _ = packaged
    real = packaged_graph.package

    def rebuild_fails(fn, *args, **kwargs):
        if fn is compiled_step._prefill:
            raise RuntimeError("an op this compiler cannot lower")
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(packaged_graph, "package", rebuild_fails)
    step = CompiledStep(model)
    assert step.warm() and step.how == "packaged" and step.failed is None and not step.prefills(step.prefill_tokens)
    assert "a slide's rebuild is not compiled here (RuntimeError: an op this compiler cannot lower)" in capsys.readouterr().err
    s = settings(40, t=0.9, seed=7)
    assert generate(model, [1, 2, 3], s, step=step) == generate(model, [1, 2, 3], s)


def test_a_step_that_cannot_be_packaged_gets_torch_compiles_graph(packaged, monkeypatch):
    model, step = packaged

    def fails(*args, **kwargs):
        raise RuntimeError("Unsupported: an op export cannot trace")

    monkeypatch.setattr(packaged_graph, "package", fails)
    again = CompiledStep(model)
    assert again.warm() and again.how == "compiled" and again.failed is None and again.prefills(again.prefill_tokens)
    s = settings(30, seed=5)
    assert generate(model, [2], s, step=again) == generate(model, [2], s, step=step)


def test_where_kernels_cannot_be_called_from_cpp_they_are_called_from_python(packaged, monkeypatch):
    """The C++ wrapper of torch.compile's graph needs Python's headers; without them the step is compiled with
    the Python one."""
    model, step = packaged
    real = torch.compile
    asked = []

    def compile_without_headers(fn, **kwargs):
        asked.append(kwargs["options"]["cpp_wrapper"])
        compiled = real(fn, **kwargs)
        if not kwargs["options"]["cpp_wrapper"]:
            return compiled

        def fails(*args):
            raise RuntimeError("fatal error: Python.h: No such file or directory")
        return fails

    monkeypatch.setattr(torch, "compile", compile_without_headers)
    monkeypatch.setattr(compiled_step, "PACKAGE_MAX_PARAMS", 0)  # a model too large to package
    python_wrapper = CompiledStep(model)
    # the step with C++'s wrapper (fails), with Python's, then the slide's rebuild with the options that worked
    assert python_wrapper.warm() and python_wrapper.how == "compiled" and asked == [True, False, False]
    assert python_wrapper.prefills(python_wrapper.prefill_tokens)
    s = settings(30, seed=11)
    assert generate(model, [4], s, step=python_wrapper) == generate(model, [4], s, step=step)


def test_compiling_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(compiled_step.ENV_SWITCH, "0")
    assert not compiled_step.enabled()
    monkeypatch.setenv(compiled_step.ENV_SWITCH, "1")
    assert compiled_step.enabled()


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own priority is Linux's")
def test_a_step_compiles_on_a_thread_of_lower_priority_and_the_callers_priority_stays():
    """The background compile (and the C++ compiler it starts, which inherits it) yields the cores to a run
    training beside it; the thread that asked, and so the process's decoding and training, keep theirs."""
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = {}
    done = threading.Event()

    class Recording:  # stands for a CompiledStep: warm() runs on the compile thread
        def warm(self):
            seen["compiling"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    compiled_step.warm_later(Recording(), then=lambda _: done.set())
    assert done.wait(30)
    assert seen["compiling"] == min(19, mine + compiled_step.COMPILE_NICENESS) > mine
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
