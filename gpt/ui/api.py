"""Named endpoints for `gradio_client`: start a run, watch it, sample from it.

Plain JSON types in and out, so a notebook or a test can drive the server:

    from gradio_client import Client
    c = Client("http://127.0.0.1:7860/")
    run = c.predict(corpus="addition", preset="tiny", max_iters=200, api_name="/start_run")["name"]
    c.predict(run=run, api_name="/run_status")          # state, step, losses, metric rows
    c.predict(run=run, prompt="12+", api_name="/generate")

An API client is one person per `Client` (its session); it sees its own runs
and the shared ones, like a browser does. Refusals raise `gr.Error` with the
same sentence the page would show.
"""

from __future__ import annotations

from typing import Iterator

import gradio as gr

from ..errors import GPTError
from ..presets import PRESETS
from .. import corpus as corpora
from . import generate as gen
from .messages import refuse
from .handlers import Handlers, make_request, preset_values


def _owner(request: gr.Request | None) -> str:
    return f"api-{request.session_hash}" if request is not None and request.session_hash else ""


class Api:
    def __init__(self, handlers: Handlers):
        self.h = handlers
        self.m = handlers.m

    def start_run(self, corpus: str = "addition", tokenizer: str = "char", preset: str = "tiny", max_iters: int = 0,
                  max_seconds: float = -1, text: str = "", vocab_size: int = 0, model_type: str = "gpt",
                  architecture: str = "", name: str = "", n_layer: int = 0, n_head: int = 0, n_embd: int = 0,
                  block_size: int = 0, batch_size: int = 0, lr: float = 0, request: gr.Request = None) -> dict:
        """Queue a training run; corpus is 'shakespeare', 'addition', 'reverse', 'counting' or 'text' (then give text).
        max_iters, the shape (n_layer, n_head, n_embd, block_size), batch_size and lr: 0 keeps the preset's value
        (as the page's sliders start at it); max_seconds -1 keeps the preset's, 0 means no time limit."""
        try:
            source = corpora.load("paste" if corpus == "text" else corpus, pasted=text,
                                  max_bytes=self.m.limits.max_upload_bytes)
            v = preset_values(preset) if preset in PRESETS else {}
            given = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size, dropout=None,
                         batch_size=batch_size, lr=lr, max_iters=max_iters)
            value = {k: x if x else v.get(k) for k, x in given.items()}  # 0: the preset's
            req = make_request(tokenizer, vocab_size or None, preset, model_type, architecture or v.get("architecture"),
                               *(value[k] for k in ("n_layer", "n_head", "n_embd", "block_size", "dropout",
                                                     "batch_size", "lr", "max_iters")),
                               v.get("max_seconds") if max_seconds < 0 else max_seconds)
            job = self.m.start(_owner(request), source, req, name=name or None)
            return self.m.runs.status(job.name, _owner(request)).to_json()
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def run_status(self, run: str, request: gr.Request = None) -> dict:
        """State, step, tokens/s, ETA, latest losses and every evaluation row of one run."""
        try:
            if not self.m.runs.visible(_owner(request), run):
                raise GPTError(f"There is no run named {run!r}.")
            return self.m.runs.status(run, _owner(request)).to_json()
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def stop_run(self, run: str, request: gr.Request = None) -> dict:
        try:
            self.m.stop(_owner(request), run)
            return self.m.runs.status(run, _owner(request)).to_json()
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def resume_run(self, run: str, more_iters: int = 0, request: gr.Request = None) -> dict:
        try:
            self.m.resume(_owner(request), run, more_iters or None)
            return self.m.runs.status(run, _owner(request)).to_json()
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def delete_run(self, run: str, request: gr.Request = None) -> dict:
        try:
            self.m.delete(_owner(request), run)
            return {"deleted": run}
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def list_runs(self, request: gr.Request = None) -> list[dict]:
        """Every run this session may see: its own and the shared ones."""
        return [r.to_json() for r in self.m.runs.list_runs(_owner(request))]

    def generate(self, run: str, prompt: str = "", max_new_tokens: int = 200, temperature: float = 0.8,
                 top_k: int = 0, top_p: float = 1.0, seed: int = -1, request: gr.Request = None) -> Iterator[str]:
        """Stream the text so far (prompt included); the last value is the whole sample.
        As on the page: temperature 0 is greedy, top_k 0 and top_p 1 are off, seed -1 is random; other values out
        of range (a negative temperature or top-k, top-p outside (0, 1], more tokens than GPT_MAX_NEW_TOKENS)
        are refused with a sentence."""
        req = gen.SampleRequest(run, prompt, max_new_tokens, temperature, top_k, top_p, seed)
        try:
            loaded = gen.open_run(self.m, self.h.models, _owner(request), run, self.m.device)
            settings, _ = gen.prepare(loaded, req, self.m.limits.max_new_tokens)
        except Exception as err:  # noqa: BLE001
            refuse(err)
        with self.m.sampling(run):
            try:
                yield from gen.stream(loaded, req, settings)
            except Exception as err:  # noqa: BLE001 - a sentence, not a traceback, even mid-stream
                refuse(err)

    def endpoints(self) -> dict:
        return {"start_run": self.start_run, "run_status": self.run_status, "stop_run": self.stop_run,
                "resume_run": self.resume_run, "delete_run": self.delete_run, "list_runs": self.list_runs,
                "generate": self.generate}

