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

from .. import corpus as corpora
from ..errors import GPTError
from . import generate as gen
from .messages import refuse
from .page import Page
from .train_tab import make_request


def _owner(request: gr.Request | None) -> str:
    return f"api-{request.session_hash}" if request is not None and request.session_hash else ""


def _or_none(value):
    """The API's 0 means 'the preset's value', as the page's sliders start at it."""
    return value if value else None


class Api:
    def __init__(self, page: Page):
        self.m = page.manager
        self.models = page.models

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
            req = make_request(tokenizer, _or_none(vocab_size), preset, model_type, architecture or None,
                               *map(_or_none, (n_layer, n_head, n_embd, block_size)), None,
                               *map(_or_none, (batch_size, lr, max_iters)), None)
            req.max_seconds = None if max_seconds < 0 else max_seconds  # -1: the preset's; 0: no limit
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
            loaded = gen.open_run(self.m, self.models, _owner(request), run, self.m.device)
            prepared = gen.prepare(loaded, req, self.m.limits.max_new_tokens)
        except Exception as err:  # noqa: BLE001
            refuse(err)
        with self.m.sampling(run):
            try:
                yield from gen.stream(loaded, prepared)
            except Exception as err:  # noqa: BLE001 - a sentence, not a traceback, even mid-stream
                refuse(err)

    def endpoints(self) -> dict:
        return {"start_run": self.start_run, "run_status": self.run_status, "stop_run": self.stop_run,
                "resume_run": self.resume_run, "delete_run": self.delete_run, "list_runs": self.list_runs,
                "generate": self.generate}


def register_api(page: Page) -> Api:
    """Add the named endpoints to the page being built (inside its gr.Blocks)."""
    api = Api(page)
    for name, fn in api.endpoints().items():
        gr.api(fn, api_name=name, concurrency_limit=None if name != "generate" else 4)
    return api
