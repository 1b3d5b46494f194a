"""The decode step compiled once: a token in a few dozen fused C++ calls instead of ~40 module calls.

A small model's token is overhead, not arithmetic: the shipped model's step
is ~40 module calls and over a hundred kernels, each a few microseconds of
PyTorch's dispatch, around 1.6 MFLOP. Compiling turns the one-token step of
`gpt.engine.decode_step` (a forward pass over a row cache) into fused C++
loops around the matrix products, in one of two ways (docs/benchmarks.md
has what each measured):
- **packaged** (a model of up to PACKAGE_MAX_PARAMS parameters, where asked:
  the shipped model in the app, `gpt.sample --compile`): compiled ahead of
  time into a library with the weights frozen in (`gpt.packaged_graph`,
  AOTInductor), entered straight into C++, its
  products written by inductor for these weights; kept on disk, so a server
  that starts again loads it in seconds. On the shipped model a lone
  request's step took ~70 us against ~400 for torch.compile's graph.
- **compiled** (the other runs a server decodes, larger models, or where a
  package cannot be made): torch.compile's graph, the weights its inputs, MKL's
  products; a second model of the same shape is made in seconds from
  PyTorch's compile cache, where a package holds one model's weights and is
  built again (~25-50 s) for each.

What keeps it honest:
- One graph for any number of rows, each row's numbers its own, so a seed
  gives the same text alone or beside a class, bit for bit
  (tests/test_compiled_step.py). The number of rows is symbolic and the
  fused loops work row by row; a package's products give a row the same bits
  for any number of rows, one included; MKL's only from 4 rows up (on one
  thread, `gpt.decode_view`), so torch.compile's graph pads a request alone
  to `ROWS` rows with rows that sit the step out, at the cache's scratch slot.
- Its logits are the eager step's up to float rounding (the fused norms and
  softmax add up in another order, ~1e-6): its text is the eager step's but
  where a drawn number falls that close to the edge between two tokens.
- A slide's rebuild (the context a full window keeps, fed whole every
  block_size/4 tokens) is a second graph, of one row and fixed shapes
  (`prefill`): on the shipped model the eager rebuild was a fifth of a
  token's time (~115 of ~550 us on one thread), compiled ~85. A lone
  request and a class's rows alike rebuild through it, one row at a time.
- Compiling takes seconds to a minute (a C++ compiler runs), so `warm()` does
  it on a scratch cache, off anyone's wait (`warm_later`: one background
  thread, one model at a time), and a decoder uses the step once it is
  `ready`; until then, and for good where nothing can be compiled here (no
  C++ compiler, an unsupported platform: said once on stderr), the eager
  step serves. `GPT_COMPILE_DECODE=0` turns it off.
"""

from __future__ import annotations

import functools
import os
import queue
import sys
import threading
import time
import types
from typing import Callable

import torch
import torch.nn as nn

from .decode_view import FULL_KERNEL_ROWS, decode_view
from .engine import Row, draw_inputs, keep_after_full, tempered_draw
from .kv_cache import RowKVCache

ROWS = FULL_KERNEL_ROWS  # the fewest rows torch.compile's graph computes (MKL's products: see gpt.decode_view)
ENV_SWITCH = "GPT_COMPILE_DECODE"  # "0": the eager step only
PACKAGE_MAX_PARAMS = 20_000_000  # above it a token is arithmetic more than overhead: torch.compile's graph
# inductor writes the products itself (its C++ GEMM template) around weights laid out once (frozen): per row the
# same loops whatever the number of rows, and no repacking of each weight every call, as MKL does
PACKAGE_OPTIONS = {"freezing": True, "max_autotune": True, "max_autotune_gemm_backends": "CPP"}
# the slide's rebuild has fixed shapes (one row of its 3/4 window): its weights frozen, MKL's products of many
# rows against weights it packed once are faster than the template's (1.8x on the shipped model's rebuild)
PREFILL_OPTIONS = {"freezing": True}


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


class _StepCache:
    """A `RowKVCache` as the attention layers see it during a compiled step. It attends itself, over the
    cache as it was before the step plus each row's new key, and keeps the new keys and values for the
    caller to write (`RowKVCache.write`): a graph that wrote into the cache would copy it whole every
    step, layer by layer (most of a step's time, measured). k, v: (n_layer, capacity, nh, slots, hs), the
    step's rows the first B; slot (B, 1, 1, 1): where each row's new key goes."""

    def __init__(self, k, v, slot, positions):
        B = slot.size(0)
        self.k, self.v = k[:, :B], v[:, :B]  # (n_layer, B, nh, slots, hs)
        self.pos = positions
        filled = torch.arange(k.size(3), device=k.device).view(1, 1, -1) < slot.view(B, 1, 1)  # (B, 1, slots)
        self.seen = torch.zeros((), dtype=torch.float32, device=k.device).where(filled, float("-inf"))
        self.new_k: list[torch.Tensor] = []
        self.new_v: list[torch.Tensor] = []

    def positions(self, T: int) -> torch.Tensor:
        return self.pos  # (B, 1)

    def attend(self, layer: int, q, k, v, scale: float) -> torch.Tensor:
        """softmax(q . [cached keys, new key] * scale) . [cached values, new value], written out so the
        compiler fuses it into a loop per (row, head): q, k, v (B, nh, 1, hs) -> (B, nh, 1, hs)."""
        self.new_k.append(k)
        self.new_v.append(v)
        dtype = q.dtype
        q, k, v = q.float(), k.float(), v.float()
        K, V = self.k[layer].float(), self.v[layer].float()  # (B, nh, slots, hs): before this step
        old = (q * K).sum(-1) * scale + self.seen  # (B, nh, slots), -inf at slots not filled yet
        new = (q * k).sum(-1) * scale  # (B, nh, 1)
        top = torch.maximum(old.amax(-1, keepdim=True), new)
        w_old, w_new = (old - top).exp(), (new - top).exp()
        y = ((w_old.unsqueeze(-1) * V).sum(-2) + w_new * v.squeeze(2)) / (w_old.sum(-1, keepdim=True) + w_new)
        return y.unsqueeze(2).to(dtype)  # (B, nh, 1, hs)

    def advance(self, n: int) -> None:
        pass


class _PrefillCache:
    """A row's whole context as the attention layers see it during a compiled prefill: positions 0..T-1, the
    causal mask, and each layer's keys and values kept for the caller to write (`RowKVCache.fill`), the ones
    feeding it through `RowKVCache.row` writes."""

    attn_mask = None
    attend = None

    def __init__(self):
        self.new_k: list[torch.Tensor] = []
        self.new_v: list[torch.Tensor] = []

    def positions(self, T: int) -> slice:
        return slice(0, T)

    def update(self, layer: int, k, v):
        self.new_k.append(k)
        self.new_v.append(v)
        return k, v

    def advance(self, n: int) -> None:
        pass


def _prefill(view: nn.Module, idx):
    """One row's context fed whole: idx (1, T) -> its next token's logits (vocab,), and every layer's keys and
    values (n_layer, 1, nh, T, hs) each."""
    cache = _PrefillCache()
    logits, _ = view(idx, kv_cache=cache, last_only=True)
    return logits[0, -1], torch.stack(cache.new_k), torch.stack(cache.new_v)


def _step(view: nn.Module, idx, slot, positions, k, v):
    """One token for each row: idx (B, 1) -> logits (B, vocab), and every layer's new keys and values
    (n_layer, B, nh, 1, hs) each."""
    cache = _StepCache(k, v, slot, positions)
    logits, _ = view(idx, kv_cache=cache, last_only=True)
    return logits[:, -1], torch.stack(cache.new_k), torch.stack(cache.new_v)


def _step_and_draw(view: nn.Module, idx, slot, positions, k, v, temperature, uniforms):
    """`_step`, and each row's next id drawn from its logits: temperature, uniforms (B, 1) -> ids (B, 1) too.
    In the graph the draw is a few fused loops; in Python it was ~30 us of a ~300 us token (`sample_rows`)."""
    logits, k, v = _step(view, idx, slot, positions, k, v)
    return logits, k, v, tempered_draw(logits, temperature, uniforms)


def _own_code(fn: types.FunctionType) -> types.FunctionType:
    """fn with a code object of its own. torch.compile keeps its graphs on the code object: each model's
    step must not count towards another's recompile limit (8), nor keep its graphs alive after it."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


class CompiledStep:
    """One model's decode step, compiled by `warm()`; called as `step(cache, idx, lengths)` by
    `gpt.engine.decode_step` in place of the model's forward pass once `ready`."""

    def __init__(self, model: nn.Module, threads: int | None = 1, package: bool = True):
        self.model = model
        self.threads = threads  # the intra-op threads the step will run on: its C++ loops are built for them
        self.package = package  # packaged where the model is small enough; False: torch.compile's graph
        self._view = decode_view(model, rowwise=False)  # every product has >= min_rows rows: one product each
        self.min_rows = ROWS  # the fewest rows a call computes: 1 once packaged (see `_package`)
        # (idx, slot, positions, k, v[, temperature, uniforms]) -> [logits, k, v[, ids]]: made by `warm`
        self._run_step: Callable | None = None
        self._run_prefill: Callable | None = None  # (idx,) -> [logits, k, v]: made by `warm`, where it can be
        self.how: str | None = None  # "packaged" or "compiled" (torch.compile's graph), once ready
        self.draws = False  # whether the step draws the next ids itself (`step_and_draw`): a packaged one does
        self.loaded = False  # whether the packages came from the cache (gpt.packaged_graph), not a compiler
        self.prefill_tokens = keep_after_full(model.config.block_size)  # the context a slide keeps
        self._lock = threading.Lock()
        self.ready = False
        self.compile_s: float | None = None  # how long compiling took
        self.failed: str | None = None  # why torch.compile could not make the step, as a sentence

    def __call__(self, cache: RowKVCache, idx: torch.Tensor, lengths: list[int | None]) -> torch.Tensor:
        """idx (B, 1) of the rows 0..B-1 of `cache`, each filled to lengths[b] (None: sits the step out)
        -> logits (B, vocab). Fewer than `min_rows` rows are padded with rows that sit out."""
        return self._stepped(cache, idx, lengths)[0]

    def step_and_draw(self, cache: RowKVCache, idx: torch.Tensor, lengths: list[int | None], rows: list[Row]
                      ) -> tuple[torch.Tensor, list[int]]:
        """A step that `draws`: the logits (B, vocab) and each row's id drawn in the same call at its
        temperature with its next uniform number (`gpt.engine.tempered_draw`); the caller keeps the ids of
        its unfiltered rows (`Row.unfiltered`) and samples the others from the logits."""
        logits, ids = self._stepped(cache, idx, lengths, draw_inputs(rows, cache.k.device))
        return logits, ids.view(-1).tolist()

    def _stepped(self, cache: RowKVCache, idx: torch.Tensor, lengths: list[int | None], draw=None):
        B = idx.size(0)
        if B < self.min_rows:
            idx = torch.cat([idx, idx.new_zeros(self.min_rows - B, 1)])
            lengths = list(lengths) + [None] * (self.min_rows - B)
        if cache.capacity <= idx.size(0):  # the graph is made for fewer rows than the cache holds (see warm)
            cache.grow(2 * idx.size(0))
        cache.begin(lengths, layers=False)
        args = (idx, *cache.step_tensors(), cache.k, cache.v)
        if self.draws:
            if draw is None:  # logits only: a draw nobody reads
                n = idx.size(0)
                draw = (idx.new_ones(n, 1, dtype=torch.float32), idx.new_full((n, 1), 0.5, dtype=torch.float32))
            logits, k, v, ids = self._run_step(*args, *draw)
        else:
            (logits, k, v), ids = self._run_step(*args), None
        cache.write(k, v)
        return logits[:B], ids

    def prefills(self, T: int) -> bool:
        """Whether `prefill` serves a context of T tokens: a slide's, once compiled."""
        return T == self.prefill_tokens and self.ready and self._run_prefill is not None

    def prefill(self, cache: RowKVCache, i: int, tokens: list[int]) -> torch.Tensor:
        """Feed row i's context of `prefill_tokens` tokens whole (a slide's rebuild), written into its slots
        0..T-1 of `cache`: its next token's logits (vocab,). One graph of one row, whatever the rows beside
        it: a row's numbers are its own, alone or in a class."""
        logits, k, v = self._run_prefill(torch.tensor([tokens], device=cache.k.device))
        cache.fill(i, k, v)
        return logits

    def warm(self) -> bool:
        """Compile now, on a scratch cache; whether the step is ready. Seconds to a minute; only the first
        call compiles. A model of up to PACKAGE_MAX_PARAMS parameters is packaged (`_package`, loaded from the
        cache when it was built before); a larger one, or one that cannot be packaged, gets torch.compile's
        graph (`_compile`); where neither works the eager step serves, said once. Either way the slide's
        rebuild comes second, before the step is `ready`: nothing runs a graph while this thread compiles."""
        with self._lock:
            if self.ready or self.failed is not None:
                return self.ready
            if self.threads is not None and torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
            started = time.perf_counter()
            package = self.package and sum(p.numel() for p in self.model.parameters()) <= PACKAGE_MAX_PARAMS
            for how, make in (("packaged", self._package), ("compiled", self._compile))[0 if package else 1:]:
                try:
                    make()
                except Exception as err:  # noqa: BLE001 - no compiler, an op it cannot lower: the next way
                    text = str(err).strip()
                    self.failed = f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
                    continue
                self.how, self.compile_s, self.ready, self.failed = how, time.perf_counter() - started, True, None
                break
            if not self.ready:
                _say_once(f"gpt: the decode step is not compiled here ({self.failed[:300]}); decoding runs eagerly, "
                          "as fast as before.")
        return self.ready

    def _scratch(self, rows: int) -> tuple[RowKVCache, torch.Tensor]:
        """A cache of more slots than rows (the graphs take the two as different sizes) and a step's tokens."""
        cache = RowKVCache(self.model, rows + 3)
        cache.begin([None] * rows)
        return cache, torch.zeros(rows, 1, dtype=torch.long, device=cache.k.device)

    def _package(self) -> None:
        """The step and the slide's rebuild compiled ahead of time, their weights frozen in (gpt.packaged_graph):
        one package for any number of rows and any larger cache, entered straight into C++. Its products
        give a row the same bits whatever the number of rows, one included (tests/test_compiled_step.py), so
        a request alone is not padded: one row's step was ~0.4 of four rows' on the shipped model."""
        from torch.export import Dim

        from . import packaged_graph

        cache, idx = self._scratch(2)  # an example of neither 0 nor 1 rows: export would take those as fixed
        draw = (torch.ones(2, 1), torch.full((2, 1), 0.5))  # each row's temperature and uniform number
        rows, capacity = Dim("rows", min=1), Dim("capacity", min=2)
        run, self.loaded = packaged_graph.package(
            _step_and_draw, self._view, (idx, *cache.step_tensors(), cache.k, cache.v, *draw),
            ({0: rows}, {0: rows}, {0: rows}, {1: capacity}, {1: capacity}, {0: rows}, {0: rows}), PACKAGE_OPTIONS)
        self._run_step, self.min_rows, self.draws = (lambda *args: run(list(args))), 1, True
        with torch.inference_mode():
            for n in (1, ROWS + 1):  # other numbers of rows: the same package
                self(*self._scratch(n), [None] * n)

        def rebuild(tokens):
            run, loaded = packaged_graph.package(_prefill, self._view, (tokens,), None, PREFILL_OPTIONS)
            self.loaded = self.loaded and loaded
            return lambda *args: run(list(args))
        self._warm_prefill(rebuild)

    def _compile(self) -> None:
        """torch.compile's graph of the step, the weights its inputs; its kernels called from C++ (~1.1x) or,
        where that cannot build (no Python.h here), from Python."""
        self.draws, self.min_rows = False, ROWS  # whatever a package that failed its check had set
        for cpp_wrapper in (True, False):
            options = {
                # a view's modules never change (a decoder's model is a fixed copy): checking its ~30
                # parameters before every call was ~20 us of a ~500 us step
                "guard_filter_fn": torch.compiler.skip_guard_on_all_nn_modules_unsafe,
                "cpp_wrapper": cpp_wrapper,
            }
            compiled = torch.compile(_own_code(_step), fullgraph=True, options=options)
            self._run_step = functools.partial(compiled, self._view)
            try:
                with torch.inference_mode():
                    cache, idx = self._scratch(ROWS)
                    self._first_call(compiled, cache, idx)
                    with torch.compiler.set_stance("fail_on_recompile"):
                        self(*self._scratch(ROWS + 1), [None] * (ROWS + 1))
            except Exception:
                if cpp_wrapper:
                    continue
                raise
            break

        def rebuild(tokens):
            graph = torch.compile(_own_code(_prefill), fullgraph=True, dynamic=False, options=options)
            graph(self._view, tokens)
            with torch.compiler.set_stance("fail_on_recompile"):
                graph(self._view, tokens + 1)
            return functools.partial(graph, self._view)
        self._warm_prefill(rebuild)

    def _warm_prefill(self, make: Callable[[torch.Tensor], Callable]) -> None:
        """The slide's rebuild (one row, `prefill_tokens` tokens: every shape fixed) made by `make(tokens)`;
        where it cannot be, the eager pass rebuilds, as before."""
        try:
            with torch.inference_mode():
                tokens = torch.zeros(1, self.prefill_tokens, dtype=torch.long, device=next(self.model.parameters()).device)
                run = make(tokens)
                run(tokens)
        except Exception as err:  # noqa: BLE001 - the step still serves; the rebuild stays eager
            text = str(err).strip()
            _say_once(f"gpt: a slide's rebuild is not compiled here ({type(err).__name__}: "
                      f"{text.splitlines()[0][:300] if text else ''}); it runs eagerly.")
            return
        self._run_prefill = run

    def _first_call(self, compiled: Callable, cache: RowKVCache, idx: torch.Tensor) -> None:
        args = (idx, *cache.step_tensors())
        for t in args:
            torch._dynamo.mark_dynamic(t, 0)  # the number of rows
        for t in (cache.k, cache.v):
            torch._dynamo.mark_dynamic(t, 1)  # the cache's capacity
        compiled(self._view, *args, cache.k, cache.v)


_said: set[str] = set()


def _say_once(line: str) -> None:
    if line not in _said:
        _said.add(line)
        print(line, file=sys.stderr)


# How much lower than its process the compiling thread (and the C++ compiler it starts) runs: the app's first run,
# started while the shipped model's package built (78-154 s on a 2-core Zen 1), made 146 and 138 steps in 133 s
# with it, 130 without, 139 after the build (docs/benchmarks.md); the eager step serves until the compiled one is ready.
COMPILE_NICENESS = 10

_queue: "queue.Queue[tuple[CompiledStep, Callable | None]]" = queue.Queue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()


def warm_later(step: CompiledStep, then: Callable[[CompiledStep], None] | None = None) -> None:
    """Compile `step` on a background thread, after the steps queued before it (one compile at a time:
    each takes a core for seconds); then call `then(step)`, ready or not (`step.failed` says why)."""
    global _worker
    _queue.put((step, then))
    with _worker_lock:
        if _worker is None:
            _worker = threading.Thread(target=_warm_queued, name="compile-decode-step", daemon=True)
            _worker.start()


def _yield_to_other_work() -> None:
    """Lower this thread's scheduling priority by COMPILE_NICENESS (Linux only, where a thread id names a
    thread to setpriority and the processes it starts, the C++ compiler's, inherit it; elsewhere the same call
    would name a process)."""
    if sys.platform != "linux":
        return
    try:
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + COMPILE_NICENESS))
    except OSError:  # not allowed here (a sandbox): compile at the process's priority
        pass


def _warm_queued() -> None:
    _yield_to_other_work()
    while True:
        step, then = _queue.get()
        step.warm()
        if then is not None:
            then(step)
