"""Continuous batching: every request on one model decoded in one loop.

A class pressing Generate at once is thirty requests on the same small
model. Alone, each pays a whole decode step per token, and a 0.8M-parameter
model's step is Python and kernel dispatch, not arithmetic. Side by side,
one step serves them all: a request joins at the next step (its prompt fed
into its own row of a `RowKVCache`, alone), takes one token per step at its
own position, and leaves when it has its tokens, when its Stop is pressed or
when its reader goes away. Each keeps its own settings, seed and stream.
The loop knows nothing of tokens as text, owners or pages.

Why a request gets the same tokens here as alone (`gpt.engine.generate_stream`),
bit for bit, greedy or sampled (tests/test_batching.py):
- the steps are the engine's own `prefill` and `decode_step` on the same
  `gpt.decode_view` of the model, and a prompt is fed alone in both;
- a decode step attends over every slot of its row with a mask, so its
  shapes do not depend on how far a row has got;
- every Linear, attention product, norm, softmax and sampling filter works
  row by row (a matrix product over the batch would not: see gpt.decode_view);
- each request draws its uniform numbers from its own generator, up front.
A compiled step (`gpt.compiled_step`, given as `compiled`) keeps all of this
among the requests it serves: alone or thirty, the same graph, each row its own.

The loop's thread runs PyTorch on one intra-op thread (`threads`): a step is
dozens of tiny operations, and OpenMP's worker threads, which outside the
main thread sleep between operations and wake for each, made a loop on two
threads decode the shipped model at ~320 tokens a second against ~1,230 on
one (this 2-core machine; the text is the same, tests/test_batching.py).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import torch
import torch.nn as nn

from .decode_view import decode_view
from .engine import Row, SamplingSettings, decode_step, prefill, prefill_together
from .kv_cache import RowKVCache


_BUSY = threading.Condition()  # guards _busy_loops; notified when the last decode loop of this process goes idle
_busy_loops = 0


def decoding() -> bool:
    """Whether any decode loop in this process has requests now."""
    return _busy_loops > 0


def wait_until_idle(timeout: float) -> bool:
    """Block until no decode loop in this process has requests, or `timeout` seconds; whether it is idle.

    What a training thread on the same CPU calls between steps (`gpt.jobs.thread_runner`): its Python
    takes the interpreter lock from the decode loop and the web server, and a class waiting for text
    should not wait for a step that can as well come a second later."""
    with _BUSY:
        return _BUSY.wait_for(lambda: _busy_loops == 0, timeout)


def note_decoding(change: int) -> None:
    """A decode loop starts (+1) or goes idle (-1): what `decoding` and `wait_until_idle` count (a loop in
    another process counts through its server-side handle, `gpt.decode_process`)."""
    global _busy_loops
    with _BUSY:
        _busy_loops += change
        if _busy_loops == 0:
            _BUSY.notify_all()


class DecodeStream:
    """The reader's side of one request: its token ids as the loop makes them.

    Iterate for ids one by one, or `batches(interval)` for every id made since
    the last look, at most once per interval. Closing the iterator (a reader
    that goes away) or `cancel()` ends the request at the next step.
    """

    def __init__(self, should_stop: Callable[[], bool] | None):
        self.should_stop = should_stop
        self.cancelled = False
        self._cond = threading.Condition()
        self._ids: list[int] = []
        self._ended = False
        self._error: BaseException | None = None

    # -- the loop's side
    def _push(self, token: int) -> None:
        with self._cond:
            self._ids.append(token)
            if len(self._ids) == 1:  # a reader waits only for the first id of a batch (or the end)
                self._cond.notify()

    def _end(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._ended, self._error = True, error
            self._cond.notify()

    def stopped(self) -> bool:
        return self.cancelled or (self.should_stop is not None and self.should_stop())

    # -- the reader's side
    def cancel(self) -> None:
        self.cancelled = True

    def batches(self, interval: float | Callable[[], float] = 0.0) -> Iterator[list[int]]:
        """Lists of new ids, each as soon as there is one and `interval` seconds (a number, or a function
        asked after each list) have passed since the last."""
        next_at = 0.0
        try:
            while True:
                with self._cond:
                    while not self._ended:
                        wait = next_at - time.monotonic()
                        if self._ids and wait <= 0:
                            break
                        self._cond.wait(wait if self._ids else None)
                    ids, self._ids, ended, error = self._ids, [], self._ended, self._error
                if error is not None:
                    raise error
                if ids:
                    next_at = time.monotonic() + (interval() if callable(interval) else interval)
                    yield ids
                if ended:
                    return
        finally:
            self.cancel()

    def __iter__(self) -> Iterator[int]:
        for ids in self.batches():
            yield from ids


def _alike(rows: list[Row]) -> dict[int, list[int]]:
    """Indices of the rows with a context to feed, grouped by its length (each group one shape)."""
    groups: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        n = len(row.unfed())
        if n:
            groups.setdefault(n, []).append(i)
    return groups


class BatchDecoder:
    """One decode loop for one model: `submit` a request, read its `DecodeStream`.

    The loop runs on its own thread while there are requests and ends when
    the last one leaves (the next `submit` starts it again). Different models
    (runs, snapshots of a run's weights) have their own decoders.
    """

    def __init__(self, model: nn.Module, threads: int | None = 1, compiled=None):
        self.model = model
        self.threads = threads  # intra-op threads of the loop's own thread; None: whatever the process has
        self._view = decode_view(model)
        self.compiled = compiled  # a `gpt.compiled_step.CompiledStep` of the model: its steps once it is ready
        self._lock = threading.Lock()
        self._joining: list[tuple[Row, DecodeStream]] = []
        self._thread: threading.Thread | None = None
        self.steps = 0  # decode steps run, and rows decoded in them: how much batching happened
        self.rows_stepped = 0
        self.active = 0  # rows in the last step

    def submit(self, prompt_ids: list[int], settings: SamplingSettings,
               should_stop: Callable[[], bool] | None = None, stream: DecodeStream | None = None) -> DecodeStream:
        """Queue a request for the next step. Raises SamplingError at once for an empty prompt. `stream`:
        where its tokens go (a `DecodeStream` that passes them on, `gpt.decode_process`); default a new one."""
        row = Row.open(prompt_ids, settings, self.model.config.block_size)
        stream = stream if stream is not None else DecodeStream(should_stop)
        with self._lock:
            self._joining.append((row, stream))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batch-decoder", daemon=True)
                self._thread.start()
        return stream

    def _run(self) -> None:
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # this thread's OpenMP and MKL (and the default of later threads)
        note_decoding(+1)
        try:
            self._loop()
        finally:
            note_decoding(-1)

    def _loop(self) -> None:
        rows: list[Row] = []
        streams: list[DecodeStream] = []
        cache: RowKVCache | None = None
        try:
            with torch.inference_mode():
                while True:
                    self._leave(rows, streams, cache)
                    with self._lock:
                        joining, self._joining = self._joining, []
                        if not rows and not joining:
                            self._thread, self.active = None, 0
                            return
                    cache = self._join(joining, rows, streams, cache)
                    if rows:
                        self._step(rows, streams, cache)
        except BaseException as err:  # noqa: BLE001 - every reader hears of it, as a sentence from its caller
            with self._lock:
                joining, self._joining, self._thread = self._joining, [], None
            for stream in streams + [s for _, s in joining]:
                stream._end(err)

    def _leave(self, rows: list[Row], streams: list[DecodeStream], cache: RowKVCache | None) -> None:
        """Drop the rows that are done, stopped or unread; the last row moves into each hole."""
        i = 0
        while i < len(rows):
            if rows[i].done or streams[i].stopped():
                streams[i]._end()
                last = len(rows) - 1
                if i != last:
                    cache.move(last, i)
                    rows[i], streams[i] = rows[last], streams[last]
                rows.pop()
                streams.pop()
            else:
                i += 1

    def _join(self, joining, rows: list[Row], streams: list[DecodeStream], cache: RowKVCache | None) -> RowKVCache:
        for row, stream in joining:
            if stream.stopped():
                stream._end()
                continue
            rows.append(row)
            streams.append(stream)
        if cache is None:
            cache = RowKVCache(self.model, max(1, len(rows)))
        elif len(rows) > cache.capacity:
            cache.grow(max(len(rows), 2 * cache.capacity))
        return cache

    def _step(self, rows: list[Row], streams: list[DecodeStream], cache: RowKVCache) -> None:
        ids = decode_step(self._view, cache, rows, self._prefill(rows, cache), self.compiled)
        self.steps += 1
        self.rows_stepped += len(rows)
        self.active = len(rows)
        for stream, token in zip(streams, ids):
            stream._push(token)

    def _prefill(self, rows: list[Row], cache: RowKVCache) -> dict[int, torch.Tensor]:
        """Feed the rows that start over (new prompts, slides). Rows of one length go together, on one
        thread: a slide costs ~2.4 decode steps of one row (a 47-token context for the shipped model),
        and thirty requests that started together slide together. On more threads MKL splits a
        product by its own shape, so a row's numbers would depend on its group: each goes alone."""
        fed: dict[int, torch.Tensor] = {}
        for length, group in _alike(rows).items():
            if self.compiled is not None and self.compiled.prefills(length):
                # a slide's context, compiled for one row: as alone; thirty rows so were no slower than fed
                # together eagerly (docs/benchmarks.md)
                fed.update((i, prefill(self._view, cache, i, rows[i], self.compiled)) for i in group)
            elif len(group) > 1 and torch.get_num_threads() == 1:
                fed.update(zip(group, prefill_together(self._view, cache, group, [rows[i] for i in group])))
            else:
                fed.update((i, prefill(self._view, cache, i, rows[i])) for i in group)
        return fed
