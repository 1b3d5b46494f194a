"""Decoding in a process of its own: a class's text is not made under the web server's interpreter lock.

A class pressing Generate at once is one decode loop (`gpt.batching`) and a
web server streaming thirty answers, both Python, both in one process: they
take turns on one interpreter lock, and with a run training beside them a
third thread takes it too. Here the loop runs in a child process (one per
server, every model's loop in it) and the server only streams what it sends
back. Measured (docs/benchmarks.md): a class's 30 x 200 tokens took as long
as before (the decoding itself is the limit), but the server used a third of
the CPU during the burst, the rest of the page answered 2-3x faster at p95,
and one stream beside a training run was ~1.2x faster.

`ProcessDecoder` is a `BatchDecoder` for the caller: `submit` gives a
`DecodeStream`, `active` counts its requests. The text is the same bit for
bit: the child runs the same loop on the same weights (sent once per model)
on one thread, as the app's own loop does (tests/test_decode_process.py).
The child starts on the first request (or `start()` at the server's start),
ends when the server's process does, and when it dies the requests in it
end with a sentence and the next request starts a new one. Stop, and a
reader that goes away, reach the child at its next step.

A model sent with `compile` (a run on disk; the shipped model is sent at the
server's start) has its decode step compiled in the child, in the background
(`gpt.compiled_step`); the eager step serves until then, and the server hears
when it is done (`ProcessDecoder.compiled`, and a line in its log).

POSIX only (the child gets its end of a socket pair); elsewhere, for a
model on a GPU, and in a server whose child could not start, the loop stays
in the server's process (`decoder_for`, `process`).
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import traceback
import weakref
from multiprocessing.connection import Connection
from typing import Callable

import torch
import torch.nn as nn

from . import compiled_step
from .batching import BatchDecoder, DecodeStream, note_decoding
from .engine import Row, SamplingSettings
from .errors import SamplingError

START_TIMEOUT_S = 120  # importing PyTorch: ~1-2 s on a quiet machine, much longer on a loaded one
GATHER_S = 0.002  # the child sends what a step made as one message: a step pushes every row's token within ~us
ENV_SWITCH = "GPT_DECODE_PROCESS"  # "0": decode in the server's own process
STOPPED = "The decoding process stopped while making this text; press Generate again."


def enabled() -> bool:
    return os.name == "posix" and os.environ.get(ENV_SWITCH, "1") != "0"


def decoder_for(model: nn.Module, compile: bool = False):
    """The decode loop for `model`: in the decode process for a model on the CPU (where enabled), else
    a `BatchDecoder` in this process (a GPU's kernels already run outside the interpreter lock).
    `compile`: the child compiles the model's decode step in the background (`gpt.compiled_step`): for a
    model that will serve many requests (a run on disk, the shipped model), not a training run's snapshot.
    It gets torch.compile's graph, seconds for a second run of the same shape (PyTorch's compile cache);
    the shipped model, which a class uses all lesson, is packaged (`ProcessDecoder.prepare`)."""
    first = next(model.parameters(), None)
    on_cpu = first is None or first.device.type == "cpu"
    return ProcessDecoder(model, compile) if on_cpu and enabled() else BatchDecoder(model)


# -- the server's side

class DecodeProcess:
    """The child process and its connection: requests out, tokens back, one reader thread."""

    def __init__(self):
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(child_command(child.fileno()),
                                     pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": _package_root()})
        child.close()
        self.conn = Connection(parent.detach())
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()  # guards _streams
        self._streams: dict[int, tuple[DecodeStream, "ProcessDecoder"]] = {}
        self._cancel_sent: set[int] = set()
        self._ids = itertools.count(1)
        self.models: dict[int, weakref.ref] = {}  # key -> the ProcessDecoder whose weights were sent
        self.alive = True
        self._ready = threading.Event()  # the child's first message: PyTorch imported, serving
        threading.Thread(target=self._read, name="decode-process-reader", daemon=True).start()
        if not self._ready.wait(START_TIMEOUT_S) or not self.alive:
            self.alive = False
            self.proc.kill()  # nothing to do if it has exited; one that hangs while starting is ended
            raise OSError(f"the decode process did not start (exit status {self.proc.wait(10)})")

    def send(self, msg: tuple) -> None:
        with self._send_lock:
            self.conn.send(msg)

    def submit(self, decoder: "ProcessDecoder", prompt_ids: list[int], settings: SamplingSettings,
               stream: DecodeStream) -> None:
        if stream.stopped():  # Stop pressed before it began: as the loop does at a request's join, nothing is made
            stream._end()
            return
        with self._lock:
            req = next(self._ids)
            self._streams[req] = (stream, decoder)
            decoder.in_child += 1
            if len(self._streams) == 1:
                note_decoding(+1)
        try:
            self.send(("submit", req, decoder.key, prompt_ids, settings))
        except OSError:  # the child is gone: this request ends with the sentence the reader gives the rest
            self._died()

    def _read(self) -> None:
        try:
            while True:
                items = self.conn.recv()
                self._ready.set()
                self._send_cancels()  # first: a request stopped since the last message takes none of these tokens
                for req, token, error in items:
                    if req is None:  # a model's decode step compiled (token: the model's key; error: how, or why not)
                        self._compiled(token, *error)
                    elif token is not None:
                        entry = self._streams.get(req)
                        if entry is not None and req not in self._cancel_sent:  # stopped: no token after it
                            entry[0]._push(token)
                    else:
                        self._finish(req, error)
        except (EOFError, OSError):
            pass
        except Exception:  # noqa: BLE001 - a bug here must not leave a class's streams waiting for ever
            traceback.print_exc()
            self.proc.kill()  # nobody reads it any more: the next request starts a new one
        self._died()
        self._ready.set()  # a child that never started: its starter stops waiting

    def _compiled(self, key: int, how: str | None, failed: str | None) -> None:
        decoder = self.models.get(key, lambda: None)()
        if decoder is not None:
            decoder.compiled, decoder.compiled_how, decoder.compile_failed = failed is None, how, failed

    def _send_cancels(self) -> None:
        """Stop pressed or reader gone: tell the child, once, so the row leaves at its next step."""
        with self._lock:  # requests join from other threads meanwhile
            streams = list(self._streams.items())
        for req, (stream, _) in streams:
            if req not in self._cancel_sent and stream.stopped():
                self._cancel_sent.add(req)
                self.send(("cancel", req))

    def _finish(self, req: int, error: BaseException | None) -> None:
        with self._lock:
            entry = self._streams.pop(req, None)
            self._cancel_sent.discard(req)
            if entry is None:
                return
            entry[1].in_child -= 1
            if not self._streams:
                note_decoding(-1)
        entry[0]._end(error)

    def _died(self) -> None:
        self.alive = False
        error = SamplingError(STOPPED)
        for req in list(self._streams):
            self._finish(req, error)

def child_command(fd: int) -> list[str]:
    """The child's command line: this package's `serve` on its end of the socket pair."""
    return [sys.executable, "-m", "gpt.decode_process", str(fd)]


def _package_root() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rest = os.environ.get("PYTHONPATH")
    return root + (os.pathsep + rest if rest else "")


_process: DecodeProcess | None = None
_process_lock = threading.Lock()
_cannot_start = False  # a child that failed to start: this server decodes in its own process from then on


def process() -> DecodeProcess | None:
    """This server's decode process, started (again) when there is none alive; None when one could not
    start (the loops then run here, as they did before there was a decode process)."""
    global _process, _cannot_start
    with _process_lock:
        if _cannot_start:
            return None
        if _process is None or not _process.alive:
            try:
                _process = DecodeProcess()
            except OSError as err:
                _cannot_start = True
                print(f"gpt: {err}; decoding in the server's own process instead", file=sys.stderr)
                return None
        return _process


def start() -> None:
    """Start the decode process now, in the background (at the server's start), so a class's first request
    does not wait for it to import PyTorch (~1-2 s)."""
    if enabled():
        threading.Thread(target=process, name="decode-process-start", daemon=True).start()


class ProcessDecoder:
    """One model's decode loop, run in the decode process: what `BatchDecoder` is, for the caller."""

    _keys = itertools.count(1)

    def __init__(self, model: nn.Module, compile: bool = False):
        self.model = model
        # how the child compiles its decode step (gpt.compiled_step): False, "compiled" or "packaged"
        self.compile: str | bool = "compiled" if compile else False
        self.compiled = False  # the child said its compiled step is serving
        self.compiled_how: str | None = None  # ...made that way: "packaged" or "compiled" (gpt.compiled_step)
        self.compile_failed: str | None = None  # ...or why it could not compile it
        self.key = next(ProcessDecoder._keys)
        self.in_child = 0  # requests of this model now in the child's loop
        self._sent_to: DecodeProcess | None = None
        self._here: BatchDecoder | None = None  # the loop in this process, where no decode process could start
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        """Requests of this model being decoded now."""
        return self.in_child + (self._here.active if self._here is not None else 0)

    def submit(self, prompt_ids: list[int], settings: SamplingSettings,
               should_stop: Callable[[], bool] | None = None) -> DecodeStream:
        """Queue a request for the loop's next step. Raises SamplingError at once for an empty prompt."""
        Row.open(prompt_ids, settings, self.model.config.block_size)  # the same checks, here, before anything is sent
        stream = DecodeStream(should_stop)
        with self._lock:
            proc = self._in_child()
            if proc is None:
                self._here = self._here or BatchDecoder(self.model)
                return self._here.submit(prompt_ids, settings, should_stop)
        proc.submit(self, prompt_ids, settings, stream)
        return stream

    def prepare(self, package: bool = False) -> None:
        """Send the weights to the decode process now (and let it compile the step), before anyone asks:
        the shipped model at the server's start. `package`: its step is packaged ahead of time rather than
        torch.compile's graph (~2x one stream; ~25-50 s to build the first time, then loaded from the package
        cache in seconds, also by a decode process started again). Nothing happens where there is no decode
        process."""
        with self._lock:
            if package and self.compile:
                self.compile = "packaged"
            self._in_child()

    def _in_child(self) -> "DecodeProcess | None":
        """The decode process, holding this model's weights (sent once per process: the child builds its
        own loop on them); None where no decode process could start."""
        proc = process()
        if proc is not None and self._sent_to is not proc:
            buf = io.BytesIO()
            torch.save(self.model, buf)
            try:
                proc.send(("model", self.key, buf.getvalue(), self.compile))
            except OSError:
                proc.alive = False
                raise SamplingError(STOPPED) from None
            self._sent_to = proc
            proc.models[self.key] = weakref.ref(self)
            weakref.finalize(self, _drop, weakref.ref(proc), self.key)
        return proc


def _drop(proc_ref, key: int) -> None:
    """A model the server no longer holds leaves the child too."""
    proc = proc_ref()
    if proc is not None and proc.alive:
        try:
            proc.send(("drop", key))
        except OSError:
            pass


# -- the child's side

class _Outbox:
    """Tokens and ends for the server, sent by one thread a step at a time."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._cond = threading.Condition()
        self._items: list[tuple] = []
        threading.Thread(target=self._send, name="decode-outbox", daemon=True).start()

    def put(self, item: tuple) -> None:
        with self._cond:
            self._items.append(item)
            if len(self._items) == 1:
                self._cond.notify()

    def _send(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items)
            time.sleep(GATHER_S)
            with self._cond:
                items, self._items = self._items, []
            try:
                self.conn.send(items)
            except OSError:
                os._exit(0)  # the server is gone


class _Forwarded(DecodeStream):
    """A request in the child: its tokens and its end go to the server."""

    def __init__(self, req: int, outbox: _Outbox, cancelled: set[int]):
        super().__init__(lambda: req in cancelled)
        self.req, self.outbox, self.cancelled_reqs = req, outbox, cancelled

    def _push(self, token: int) -> None:
        self.outbox.put((self.req, token, None))

    def _end(self, error: BaseException | None = None) -> None:
        self.cancelled_reqs.discard(self.req)
        if error is not None:
            try:
                pickle.dumps(error)
            except Exception:  # noqa: BLE001 - an error that cannot travel goes as its sentence
                error = SamplingError(str(error))
        self.outbox.put((self.req, None, error))


def _compiled(outbox: _Outbox, key: int, step: "compiled_step.CompiledStep") -> None:
    """Tell the server that a model's compiled step serves now (or why it does not); one line in its log."""
    if step.ready:
        made = "loaded from the package cache" if step.loaded else step.how
        print(f"gpt: decode step compiled ({made}) in {step.compile_s:.1f} s; the model's requests use it now",
              file=sys.stderr, flush=True)
    outbox.put((None, key, (step.how, step.failed)))


def serve(conn: Connection) -> None:
    """The child's loop: models in, requests in, tokens out, until the server closes its end."""
    torch.set_num_threads(1)  # as the server's own loop runs (gpt.batching)
    outbox = _Outbox(conn)
    conn.send([])  # ready
    decoders: dict[int, BatchDecoder] = {}
    unloadable: dict[int, Exception] = {}
    cancelled: set[int] = set()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        kind = msg[0]
        if kind == "submit":
            _, req, key, prompt_ids, settings = msg
            cancelled.discard(req)
            try:
                if key in unloadable:
                    raise unloadable[key]
                decoders[key].submit(prompt_ids, settings, stream=_Forwarded(req, outbox, cancelled))
            except Exception as err:  # noqa: BLE001 - the request ends with it; the loop goes on
                _Forwarded(req, outbox, cancelled)._end(err)
        elif kind == "cancel":
            cancelled.add(msg[1])
        elif kind == "model":
            _, key, blob, compile = msg
            try:
                model = torch.load(io.BytesIO(blob), weights_only=False)
            except Exception as err:  # noqa: BLE001 - its requests end with it; the other models go on
                unloadable[key] = err
                continue
            step = None
            if compile and compiled_step.enabled() and getattr(model, "supports_kv_cache", False):  # not the bigram
                step = compiled_step.CompiledStep(model, threads=1, package=compile == "packaged")
                # the eager step serves until it is ready; then the server hears of it
                compiled_step.warm_later(step, then=lambda step, key=key: _compiled(outbox, key, step))
            decoders[key] = BatchDecoder(model, threads=1, compiled=step)
        elif kind == "drop":
            decoders.pop(msg[1], None)
            unloadable.pop(msg[1], None)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
