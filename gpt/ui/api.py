"""Named endpoints for `gradio_client`: start a run, watch it, sample from it.

Plain JSON types in and out, so a notebook or a test can drive the server:

    from gradio_client import Client
    c = Client("http://127.0.0.1:7860/")
    st = c.predict(corpus="addition", preset="tiny", max_iters=200, api_name="/start_run")
    run, token = st["name"], st["token"]               # the token is who you are: keep it to yourself
    c.predict(run=run, token=token, api_name="/run_status")   # state, step, losses, metric rows
    c.predict(run=run, prompt="12+", token=token, api_name="/generate")
    ft = c.predict(parent="shakespeare-char", task="mix", max_seconds=300, token=token, api_name="/start_finetune")
    c.predict(run=ft["name"], messages="What is 47 + 38?", token=token, api_name="/chat")   # {"answer": "85", ...}
    c.predict(parent=ft["name"], task="addition", samples=8, token=token, api_name="/start_rl")  # reward its answers

Who is asking is the `token` argument: `/start_run` without one makes a new
person and returns their token; every later call passes it to see, stop,
resume or delete that person's private runs. Without a token a call sees
the shared runs only. A token is signed by the server (`gpt.jobs.signing`),
so it cannot be forged, and no response carries anyone's owner id.
Refusals raise `gr.Error` with the same sentence the page would show.
"""

from __future__ import annotations

from typing import Iterator

import gradio as gr

from .. import corpus as corpora
from ..data import SYNTHETIC
from ..errors import DataError, GPTError
from ..jobs import RunRequest
from ..jobs import sampling as gen
from . import chat
from ..validate import number, text, whole
from .addresses import client_address
from .messages import refuse
from .rl_panel import rl_request
from .page import CHAT_QUEUE, GENERATE_QUEUE, Page


QUEUES = {"generate": GENERATE_QUEUE, "chat": CHAT_QUEUE}  # the page's and the API's requests share each queue
API_CORPORA = ("shakespeare", *SYNTHETIC, "text")  # the page's 'upload' and 'paste' are not the API's


def _check_start(given: dict) -> None:
    """Every /start_run field's type and range, once, at the boundary: a sentence naming the field."""
    if text(given["corpus"], "corpus", 32) not in API_CORPORA:
        raise DataError(f"Unknown corpus {given['corpus']!r}: choose one of {', '.join(API_CORPORA)} "
                        "(then give the text).")
    text(given["text"], "text", 10**9)
    for field in ("tokenizer", "preset", "model_type", "architecture", "name", "token"):
        text(given[field], field, 200)
    for field in ("max_iters", "vocab_size", "n_layer", "n_head", "n_embd", "block_size", "batch_size"):
        whole(given[field], field, -10**9, 10**9, hint="(0 keeps the preset's value)")  # signs: later, precisely
    number(given["max_seconds"], "max_seconds", -1, 10**7, hint="(-1 keeps the preset's, 0 means no time limit)")
    number(given["lr"], "lr", -1e12, 1e12, hint="(0 keeps the preset's value)")


def _check_finetune(given: dict, max_bytes: int) -> None:
    """Every /start_finetune field's type and range, once, at the boundary."""
    for field in ("parent", "task", "name", "token"):
        text(given[field], field, 200)
    text(given["conversations"], "conversations", max_bytes)
    if bool(given["task"]) == bool(given["conversations"]):
        raise DataError("Give a built-in task (mix, addition, ...) or conversations (the text of a JSONL or Alpaca "
                        "file): one of the two." if given["task"] else "Choose a built-in task (mix, addition, "
                        "addition3, count, reverse, identity, shakespeare) or give conversations (the text of a "
                        "JSONL or Alpaca file) to fine-tune on.")
    _check_stage_settings(given, "fine-tune")


def _check_rl(given: dict) -> None:
    """Every /start_rl field's type and range, once, at the boundary (k and the temperature in the RL stage's
    ranges are checked where every RL run's are: `gpt.chat.rl.RLConfig`)."""
    for field in ("parent", "task", "name", "token"):
        text(given[field], field, 200)
    if not given["task"]:
        raise DataError(f"Choose a built-in task ({', '.join(chat.TASK_CHOICES)}): its grader gives the reward.")
    whole(given["samples"], "samples", 0, 10**9, hint="(answers per question; 0 keeps the RL stage's 8)")
    number(given["temperature"], "temperature", -1, 10**3, hint="(-1 keeps the RL stage's 1)")
    _check_stage_settings(given, "RL")


def _check_stage_settings(given: dict, stage: str) -> None:
    """The training settings of a run made from a parent: 0 (or max_seconds -1) keeps the stage's value."""
    for field in ("max_iters", "batch_size"):
        whole(given[field], field, 0, 10**9, hint=f"(0 keeps the {stage} stage's value)")
    number(given["max_seconds"], "max_seconds", -1, 10**7, hint="(-1 keeps the stage's 300 s, 0 means no limit)")
    number(given["lr"], "lr", 0, 1e3, hint="(0 keeps the stage's value)")


def _or_none(value):
    """The API's 0 means 'the preset's value', as the page's sliders start at it."""
    return value if value else None


class Api:
    def __init__(self, page: Page):
        self.m = page.manager
        self.models = page.models

    def _owner(self, token) -> str:
        """The owner a token stands for; '' (anonymous: shared runs only) without one."""
        return self.m.identity.require(token) if token else ""

    def start_run(self, corpus: str = "addition", tokenizer: str = "char", preset: str = "tiny", max_iters: int = 0,
                  max_seconds: float = -1, text: str = "", vocab_size: int = 0, model_type: str = "gpt",
                  architecture: str = "", name: str = "", n_layer: int = 0, n_head: int = 0, n_embd: int = 0,
                  block_size: int = 0, batch_size: int = 0, lr: float = 0, token: str = "",
                  request: gr.Request = None) -> dict:
        """Queue a training run; corpus is 'shakespeare', 'addition', 'reverse', 'counting' or 'text' (then give text).
        max_iters, the shape (n_layer, n_head, n_embd, block_size), batch_size and lr: 0 keeps the preset's value
        (as the page's sliders start at it); max_seconds -1 keeps the preset's, 0 means no time limit.
        Returns the run's status and `token`: pass it to every later call (empty token: a new person)."""
        try:
            _check_start(locals())
            owner = self._owner(token) or self.m.identity.owner(self.m.identity.issue())
            source = corpora.load("paste" if corpus == "text" else corpus, pasted=text,
                                  max_bytes=self.m.limits.max_upload_bytes)
            req = RunRequest.from_form(tokenizer, _or_none(vocab_size), preset, model_type, architecture or None,
                                       *map(_or_none, (n_layer, n_head, n_embd, block_size)), None,
                                       *map(_or_none, (batch_size, lr, max_iters)),
                                       None if max_seconds < 0 else max_seconds)  # -1: the preset's; 0: no limit
            job = self.m.start(owner, source, req, name=name or None, address=client_address(request))
            return {**self.m.runs.status(job.name, owner).to_json(), "token": self.m.identity.issue(owner)}
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def run_status(self, run: str, token: str = "") -> dict:
        """State, step, tokens/s, ETA, latest losses and every evaluation row of one run."""
        try:
            if not self.m.runs.visible(self._owner(token), run):
                raise GPTError(f"There is no run named {run!r}.")
            return self.m.runs.status(run, self._owner(token)).to_json()
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def stop_run(self, run: str, token: str = "") -> dict:
        try:
            job = self.m.registry.job(run)
            self.m.stop(self._owner(token), run)
            if job is not None and job.state == "queued":
                self.m.wait(run, timeout=2)  # a queued run is cancelled at once
            return self.m.runs.status(run, self._owner(token)).to_json()
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def resume_run(self, run: str, more_iters: int = 0, token: str = "") -> dict:
        try:
            self.m.resume(self._owner(token), run, more_iters or None)
            return self.m.runs.status(run, self._owner(token)).to_json()
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def delete_run(self, run: str, token: str = "") -> dict:
        try:
            self.m.delete(self._owner(token), run)
            return {"deleted": run}
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def list_runs(self, token: str = "") -> list[dict]:
        """Every run this session may see: its own and the shared ones."""
        try:
            return [r.to_json() for r in self.m.runs.list_runs(self._owner(token))]
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def generate(self, run: str, prompt: str = "", max_new_tokens: int = 200, temperature: float = 0.8,
                 top_k: int = 0, top_p: float = 1.0, seed: int = -1, token: str = "") -> Iterator[str]:
        """Stream the text so far (prompt included); the last value is the whole sample.
        As on the page: temperature 0 is greedy, top_k 0 and top_p 1 are off, seed -1 is random; other values out
        of range (a negative temperature or top-k, top-p outside (0, 1], more tokens than GPT_MAX_NEW_TOKENS)
        are refused with a sentence."""
        req = gen.SampleRequest(run, prompt, max_new_tokens, temperature, top_k, top_p, seed)
        try:
            loaded = gen.open_run(self.m, self.models, self._owner(token), run, self.m.device)
            prepared = gen.prepare(loaded, req, self.m.limits.max_new_tokens)
        except Exception as err:  # noqa: BLE001
            refuse(err)
        with self.m.sampling(run):
            try:
                yield from gen.stream(loaded, prepared)
            except Exception as err:  # noqa: BLE001 - a sentence, not a traceback, even mid-stream
                refuse(err)

    def chat(self, run: str, messages: list[dict] | str = "", max_new_tokens: int = 120, temperature: float = 0.0,
             top_k: int = 0, top_p: float = 1.0, seed: int = -1, token: str = "") -> Iterator[dict]:
        """Stream a chat model's answer: {"answer": the text so far, "ended": whether it closed with <|end|>, "notes":
        sentences (the oldest turns left out of a full context, ...)}; the last value is the whole answer.
        `messages`: a question, or the conversation so far as a list of {"role": "user" | "assistant" | "system",
        "content": text} ending with the user's turn. Sampling as /generate (temperature 0 is greedy)."""
        try:
            loaded = chat.open_chat(self.m, self.models, self._owner(token), run)
            settings, notes = chat.chat_settings(loaded, self.m.limits.max_new_tokens, max_new_tokens, temperature,
                                                 top_k, top_p, seed)
            stream = chat.answer_stream(loaded, chat.as_messages(messages), settings)
        except Exception as err:  # noqa: BLE001
            refuse(err)
        with self.m.sampling(run):
            try:
                for answer in stream:
                    yield {"answer": answer.text, "ended": answer.ended, "notes": notes + list(answer.notes)}
            except Exception as err:  # noqa: BLE001 - a sentence, not a traceback, even mid-stream
                refuse(err)

    def start_finetune(self, parent: str, task: str = "", conversations: str = "", max_seconds: float = -1,
                       max_iters: int = 0, lr: float = 0, batch_size: int = 0, name: str = "", token: str = "",
                       request: gr.Request = None) -> dict:
        """Queue a fine-tune of `parent` (a run you may see) into a chat model, on a built-in `task` (mix, addition,
        addition3, count, reverse, identity, shakespeare, or mix:addition=4,count=1) or on `conversations`, the
        text of a JSONL (chat format) or Alpaca file: one of the two. max_iters, lr, batch_size: 0 keeps the
        fine-tune stage's value; max_seconds -1 keeps it (300), 0 means no time limit. Returns the new run's
        status and `token`, as /start_run does."""
        try:
            _check_finetune(locals(), self.m.limits.max_upload_bytes)
            owner = self._owner(token) or self.m.identity.owner(self.m.identity.issue())
            corpus = chat.conversation_text(conversations.encode("utf-8"), "conversations.jsonl") \
                if conversations else None
            req = chat.finetune_request(parent, task or None, None if max_seconds < 0 else max_seconds, max_iters,
                                        lr, batch_size)
            job = self.m.start(owner, corpus, req, name=name or None, address=client_address(request))
            return {**self.m.runs.status(job.name, owner).to_json(), "token": self.m.identity.issue(owner)}
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def start_rl(self, parent: str, task: str, samples: int = 0, temperature: float = -1, max_seconds: float = -1,
                 max_iters: int = 0, lr: float = 0, batch_size: int = 0, name: str = "", token: str = "",
                 request: gr.Request = None) -> dict:
        """Queue an RL run: `parent` (a chat run you may see, e.g. one /start_finetune made) answers questions of a
        built-in `task` (addition, addition3, count, reverse, identity, shakespeare, mix), `samples` answers each
        (4-16) at `temperature` (above 0, at most 2); the task's grader rewards the right ones, which are made
        likelier. samples, max_iters, lr, batch_size: 0 keeps the RL stage's value (8 answers, 16 questions a
        step, AdamW 1e-4); temperature -1 keeps it (1); max_seconds -1 keeps it (300), 0 means no time limit.
        Returns the new run's status and `token`, as /start_run does; /run_status's rows then carry `reward`
        (the mean reward since the last row), `rewards` ([step, mean reward] of each step) and `val_accuracy`."""
        try:
            _check_rl(locals())
            owner = self._owner(token) or self.m.identity.owner(self.m.identity.issue())
            req = rl_request(parent, task, samples, None if temperature < 0 else temperature,
                             None if max_seconds < 0 else max_seconds, max_iters, lr, batch_size)
            job = self.m.start(owner, None, req, name=name or None, address=client_address(request))
            return {**self.m.runs.status(job.name, owner).to_json(), "token": self.m.identity.issue(owner)}
        except Exception as err:  # noqa: BLE001
            refuse(err)

    def new_token(self) -> str:
        """A token for a new person, to pass to /start_run (e.g. before two starts at the same moment)."""
        return self.m.identity.issue()

    def endpoints(self) -> dict:
        return {"new_token": self.new_token, "start_run": self.start_run, "run_status": self.run_status, "stop_run": self.stop_run,
                "resume_run": self.resume_run, "delete_run": self.delete_run, "list_runs": self.list_runs,
                "generate": self.generate, "chat": self.chat, "start_finetune": self.start_finetune,
                "start_rl": self.start_rl}


def register_api(page: Page) -> Api:
    """Add the named endpoints to the page being built (inside its gr.Blocks)."""
    api = Api(page)
    for name, fn in api.endpoints().items():
        gr.api(fn, api_name=name, **QUEUES.get(name, dict(concurrency_limit=None)))
    return api
