"""Sampling for people: a finished run, or one still training, as a stream of text.

A run that is training right now is sampled from `Trainer.snapshot_model()`,
a copy of its weights taken between two optimizer steps, so a student can
watch the text get better while the loss falls; requests that arrive while
the run is at the same step share one snapshot (and so one decode loop). A
run on disk is loaded once and kept while its checkpoint file is unchanged.
Every model has one decode loop (`gpt.batching.BatchDecoder`, run in the
server's decode process for a model on the CPU, `gpt.decode_process`): the
requests of a class on the same model are decoded side by side, each exactly
as it would be alone.

Notes (prompt cropped to the context, empty prompt started from a newline,
top-k above the vocabulary clamped) come back as sentences next to the text;
errors (a character the model never saw) are `GPTError`s with a sentence.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from .. import checkpoint as ckpt
from ..batching import BatchDecoder
from ..decode_process import ProcessDecoder, decoder_for
from ..engine import SamplingSettings
from ..errors import CheckpointError, GPTError, SamplingError
from ..sample import StreamDecoder, prompt_to_ids
from ..tokenizer import Tokenizer
from ..validate import text
from .manager import JobManager

STREAM_INTERVAL_S = 0.04  # at most ~25 page updates a second; a token can come faster than a browser paints
# ...and at most ~100 a second for all the requests on one model together: every update is work for the
# server (a diff, JSON, an event), and thirty streams at 25 a second would take a core from the decoding
UPDATES_PER_S_PER_MODEL = 100
MAX_PROMPT_CHARS = 10_000  # a model reads at most its context (<= 512 tokens here); longer is refused before encoding


@dataclass
class SampleRequest:
    """What the page's sliders and the /generate endpoint send. Their conventions, the same in both:
    top_k 0 (or None) means no top-k filter, top_p 1 (or None) means no nucleus filter, a negative
    seed (or None) means a fresh random sample. Anything else out of range is refused with a sentence."""

    run: str
    prompt: str = ""
    max_new_tokens: int = 300
    temperature: float = 0.8
    top_k: int | None = None  # None or 0: no top-k filtering
    top_p: float | None = None  # None or 1.0: no nucleus filtering
    seed: int | None = None  # None or negative: a fresh random sample each time

    def settings(self) -> SamplingSettings:
        return SamplingSettings.from_values(self.max_new_tokens, self.temperature, self.top_k, self.top_p, self.seed)


@dataclass
class Loaded:
    model: torch.nn.Module
    tokenizer: Tokenizer
    step: int
    live: bool  # a snapshot of a run still training
    # the one decode loop of this model's requests: in the decode process for a model on the CPU
    decoder: BatchDecoder | ProcessDecoder = field(init=False, repr=False)

    def __post_init__(self):
        # a run on disk serves a class for the lesson: its step is compiled; a snapshot serves one step
        self.decoder = decoder_for(self.model, compile=not self.live)


class ModelCache:
    """Checkpoints loaded from disk, keyed by file and modification time (a newer save reloads), and
    the latest snapshot of each run training now, keyed by its step."""

    def __init__(self, size: int = 3):
        self.size = size
        self._items: "OrderedDict[tuple, Loaded]" = OrderedDict()
        self._live: dict[tuple, Loaded] = {}
        self._loads: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def _loading(self, key) -> threading.Lock:
        """One lock per model being loaded: thirty requests that miss at once load it once, and so share
        one model and one decode loop."""
        with self._lock:
            return self._loads.setdefault(key, threading.Lock())

    def get(self, path, device: str = "cpu") -> Loaded:
        weights = path / ckpt.WEIGHTS
        if not weights.exists():
            raise CheckpointError(f"Run {path.name!r} has no checkpoint yet; it is saved at its first evaluation.")
        key = (str(weights), weights.stat().st_mtime_ns, device)
        with self._loading(key):
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            loaded = ckpt.load_checkpoint(path, device=device)
            item = Loaded(loaded.model, loaded.tokenizer, loaded.step, live=False)
            with self._lock:
                self._items[key] = item
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._loads.pop(key, None)
            return item

    def snapshot(self, name: str, trainer, device: str = "cpu") -> Loaded:
        """The run's weights at its current step: taken once per step, however many ask."""
        key = (name, device)
        with self._loading(key):
            step = trainer.step
            with self._lock:
                item = self._live.get(key)
                if item is not None and item.step == step:
                    return item
            item = Loaded(trainer.snapshot_model().to(device), trainer.tokenizer, step, live=True)
            with self._lock:
                self._live[key] = item
            return item


def open_run(manager: JobManager, cache: ModelCache, owner: str, name: str, device: str = "cpu") -> Loaded:
    """The model to sample `name` from: a live snapshot while it trains, else its checkpoint."""
    if not name:
        raise CheckpointError("Choose a run to sample from.")
    if not manager.runs.visible(owner, name):
        raise CheckpointError(f"There is no run named {name!r}.")
    trainer = manager.runs.live_trainer(name)
    if trainer is not None:
        return cache.snapshot(name, trainer, device)
    return cache.get(manager.runs.run_path(name), device)


def ready_in_background(manager: JobManager, cache: ModelCache, name: str) -> threading.Thread:
    """Load the run everyone can see named `name` (the shipped model) and hand it to its decode loop now,
    on a thread: its weights reach the decode process and its step compiles there (`gpt.compiled_step`)
    before a class's first Generate, which then waits for neither. A run that is not there is skipped."""

    def load() -> None:
        try:
            loaded = open_run(manager, cache, None, name)
        except GPTError:
            return  # no such run here (a server without the shipped model): nothing to prepare
        if isinstance(loaded.decoder, ProcessDecoder):
            loaded.decoder.prepare(package=True)  # a class uses it all lesson: packaged, not just compiled

    thread = threading.Thread(target=load, name="ready-shipped-model", daemon=True)
    thread.start()
    return thread


@dataclass
class Prepared:
    """A sample ready to stream: checked settings, the prompt and its ids (fitted to the context by the engine)."""

    settings: SamplingSettings
    ids: list[int]
    prompt: str  # the prompt as given: the text so far starts with it
    notes: list[str]


def prepare(loaded: Loaded, req: SampleRequest, max_new_tokens_cap: int) -> Prepared:
    """Check settings and prompt, and encode the prompt once, before the first token. Raises GPTError."""
    text(req.prompt, "The prompt", MAX_PROMPT_CHARS, error=SamplingError)  # the model reads its last block_size tokens
    settings = req.settings()
    notes = settings.validate(loaded.tokenizer.vocab_size, max_new_tokens_cap)
    ids, prompt_notes = prompt_to_ids(loaded.tokenizer, req.prompt, loaded.model.config.block_size)
    if loaded.live:
        notes.append(f"This run is still training: sampling from its weights at step {loaded.step:,}.")
    return Prepared(settings, ids, req.prompt, notes + prompt_notes)


def stream(loaded: Loaded, prepared: Prepared, should_stop: Callable[[], bool] | None = None,
           interval: float = STREAM_INTERVAL_S) -> Iterator[str]:
    """Yield the text so far (prompt included), at most every `interval` seconds (longer while many
    requests share the model), and once at the end.

    The tokens come from the model's decode loop, beside every other request on the same model;
    closing this generator (a reader gone) ends the request at the loop's next step."""
    text, decoder = prepared.prompt, StreamDecoder(loaded.tokenizer)
    yield text
    spaced = lambda: max(interval, loaded.decoder.active / UPDATES_PER_S_PER_MODEL)  # noqa: E731
    for ids in loaded.decoder.submit(prepared.ids, prepared.settings, should_stop).batches(spaced):
        text += "".join(decoder.push(i) for i in ids)
        yield text
    yield text + decoder.flush()
