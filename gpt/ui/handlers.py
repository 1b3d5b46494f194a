"""The functions the page calls: component values in, component updates out.

Each handler is a method of `Handlers`, which holds the job manager and the
model cache; `app.py` builds the layout and points each event at one of
these. Who is asking is the first argument of most handlers: a random id
kept in the browser's localStorage (`gr.BrowserState`), so a refresh or a
second tab is the same person and sees the same runs.

Handlers never raise to the page: a `GPTError` becomes a sentence in a
status line (and a toast), anything else a one-line 'unexpected error'.
"""

from __future__ import annotations

import threading
import time
import uuid

import gradio as gr
import pandas as pd

from ..errors import GPTError
from ..presets import PRESETS
from ..jobs.folder import ACTIVE
from ..jobs import JobManager, RunRequest
from .. import corpus as corpora
from .. import estimate as est
from . import generate as gen
from . import frames, library
from .messages import problem, say
from .tokens import preview_html

TRAIN_SLIDERS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "batch_size", "lr", "max_iters", "max_seconds")


def preset_values(name: str) -> dict:
    """The slider values a preset stands for (0 seconds means no time limit)."""
    p = PRESETS[name]
    model, train = p["model"], p["train"]
    return {
        "architecture": "modern" if model.get("pos_emb") == "rope" else "classic",
        "n_layer": model["n_layer"], "n_head": model["n_head"], "n_embd": model["n_embd"],
        "block_size": model["block_size"], "dropout": model.get("dropout", 0.0),
        "batch_size": train["batch_size"], "lr": train["lr"], "max_iters": train["max_iters"],
        "max_seconds": train.get("max_seconds") or 0,
    }


def make_request(tokenizer, vocab_size, preset, model_type, architecture, n_layer, n_head, n_embd, block_size,
                 dropout, batch_size, lr, max_iters, max_seconds, shared=False) -> RunRequest:
    as_int = lambda x: None if x is None else int(x)  # noqa: E731 - sliders send floats
    return RunRequest(
        tokenizer=tokenizer, vocab_size=as_int(vocab_size) if tokenizer == "bpe" else None, preset=preset,
        model_type=model_type, architecture=architecture, n_layer=as_int(n_layer), n_head=as_int(n_head),
        n_embd=as_int(n_embd), block_size=as_int(block_size), dropout=None if dropout is None else float(dropout),
        batch_size=as_int(batch_size), lr=None if lr is None else float(lr), max_iters=as_int(max_iters),
        max_seconds=float(max_seconds or 0), shared=bool(shared),
    )


class Handlers:
    def __init__(self, manager: JobManager):
        self.m = manager
        self.models = gen.ModelCache()
        self._stop_sampling: dict[str, threading.Event] = {}

    # --- who is asking -------------------------------------------------------------------------
    @staticmethod
    def browser_id(current: str | None) -> str:
        return current or uuid.uuid4().hex

    # --- 1. data and tokenizer ----------------------------------------------------------------
    @staticmethod
    def corpus_inputs(choice: str):
        return gr.update(visible=choice == "upload"), gr.update(visible=choice == "paste")

    @staticmethod
    def vocab_input(kind: str):
        return gr.update(visible=kind == "bpe")

    def _corpus(self, choice, upload, pasted) -> corpora.Corpus:
        return corpora.load(choice, upload, pasted, max_bytes=self.m.limits.max_upload_bytes)

    def describe_corpus(self, choice, upload, pasted, kind, vocab_size, preview_text):
        """Statistics, the coloured preview, and the vocabulary size the estimate needs."""
        try:
            corpus = self._corpus(choice, upload, pasted)
            ds = corpora.dataset(corpus, kind, vocab_size)
        except Exception as err:  # noqa: BLE001 - the page shows the sentence
            return problem(err), "", gr.skip()
        sentence = preview_text or corpora.sample_sentence(corpus.text)
        return corpora.stats_markdown(ds), preview_html(ds.tokenizer, sentence), ds.tokenizer.vocab_size

    # --- 2. model and training settings ---------------------------------------------------------
    @staticmethod
    def apply_preset(name: str):
        v = preset_values(name)
        return tuple(v[k] for k in ("architecture", *TRAIN_SLIDERS))

    def estimate(self, vocab_size, preset, model_type, architecture, *sliders):
        try:
            req = make_request("char", None, preset, model_type, architecture, *sliders)
            model_cfg, train_cfg = req.configs(int(vocab_size or 65), self.m.device)
            n = est.parameters(model_cfg)
            mem = est.training_memory_bytes(model_cfg, train_cfg.batch_size, train_cfg.optimizer)
            secs = est.training_seconds(model_cfg, train_cfg.batch_size, train_cfg.max_iters, train_cfg.eval_interval,
                                        train_cfg.eval_iters, train_cfg.max_seconds, self.m.device)
        except GPTError as err:
            return f'<span class="msg-error">{err}</span>'
        limit = ""
        if train_cfg.max_seconds and secs >= train_cfg.max_seconds:
            limit = f" (it stops at the {est.human_seconds(train_cfg.max_seconds)} limit)"
        over = n > self.m.limits.max_params
        size = f"**{est.human_count(n)} parameters**" + (" &mdash; over this server's limit" if over else "")
        return (f"{size} · about **{est.human_bytes(mem)}** of memory to train · about "
                f"**{est.human_seconds(secs)}** on this machine{limit} · "
                f"{train_cfg.batch_size * model_cfg.block_size:,} tokens per step")

    # --- training ------------------------------------------------------------------------------
    def start(self, owner, choice, upload, pasted, kind, vocab_size, preset, model_type, architecture, *rest):
        *sliders, shared = rest
        try:
            corpus = self._corpus(choice, upload, pasted)
            req = make_request(kind, vocab_size, preset, model_type, architecture, *sliders, shared=shared)
            exact = None
            if kind != "char":  # usually cached by the statistics already; fails here, not in the queue, if offline
                exact = corpora.dataset(corpus, kind, req.vocab_size).tokenizer.vocab_size
            job = self.m.start(owner, corpus, req, vocab_size=exact)
        except Exception as err:  # noqa: BLE001
            return problem(err)
        pos = self.m.queue_position(job.name)
        if pos:
            return say(f"Run **{job.name}** is queued: position {pos} in the queue. It starts when a slot frees up.")
        return say(f"Run **{job.name}** started. The curve below updates every second.")

    def stop(self, owner):
        try:
            name = self.m.runs.current_run(owner)
            job = self.m.stop(owner, name or "")
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(f"Stopping **{job.name}**: it saves its weights and stops within a step.")

    def resume(self, owner, more_iters=None, name=None):
        try:
            name = name or self.m.runs.current_run(owner)
            if not name:
                return say("You have no run to resume yet.", ok=False)
            job = self.m.resume(owner, name, int(more_iters) if more_iters else None)
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(f"Resuming **{job.name}** from its last checkpoint.")

    def poll(self, owner, last, compared=None):
        """Timer tick: progress, the live curve, the latest sample and, when the run being watched is
        among the compared ones, the comparison; each sent only when it changed."""
        name = self.m.runs.current_run(owner) if owner else None
        status = None
        if name:
            try:
                status = self.m.runs.status(name, owner)
            except GPTError:
                name = None
        steps = len(self.m.runs.step_losses(name)) if name else 0
        sig = [name, status and status.state, status and status.step, steps,
               status and len(status.metrics), status and status.queue_position, status and status.message]
        if sig == last:
            return (gr.skip(),) * 6 + (last,)
        plot = compare = gr.skip()
        if not last or last[0] != name or last[3] != steps or last[4] != sig[4]:
            plot = frames.loss_frame(status.metrics, self.m.runs.step_losses(name)) if name else None
        if name in (compared or []) and (not last or last[4] != sig[4]):
            compare = self.compare(owner, compared)
        active = bool(status and status.state in ACTIVE and status.mine)
        resumable = bool(status and status.mine and not active and status.state != "running elsewhere")
        sample = status.latest_sample if status else ""
        return (frames.progress_html(status), plot, sample, gr.update(interactive=active),
                gr.update(interactive=resumable), compare, sig)

    def first_point(self, owner, last, compared=None, timeout: float = 5.0):
        """Right after Start: wait (at most `timeout` s) for the run's first evaluation, then draw it,
        so the first point shows as soon as it exists instead of at the next timer tick."""
        name = self.m.runs.current_run(owner) if owner else None
        deadline = time.monotonic() + timeout
        while name and time.monotonic() < deadline:
            job = self.m.active_job(owner)  # None once it has finished, stopped or failed
            if job is None or job.name != name or self.m.queue_position(name) or self.m.runs.metrics(name):
                break  # over, behind others in the queue, or its first point exists
            time.sleep(0.05)
        return self.poll(owner, last, compared)

    def compare_choices(self, owner, selected):
        runs = [r for r in self.m.runs.list_runs(owner) if r.has_weights or r.state in ACTIVE]
        names = [r.name for r in runs]
        keep = [s for s in (selected or []) if s in names]
        if not keep:
            current = self.m.runs.current_run(owner) if owner else None
            keep = [n for n in (current, "shakespeare-char") if n in names][:2]
        return gr.update(choices=[(library.short_label(r), r.name) for r in runs], value=keep)

    def compare(self, owner, selected):
        """val bpc of the selected runs; None when there is nothing to draw (the page clears the plot first,
        so the legend is rebuilt for the new set of runs)."""
        out = {}
        for name in selected or []:
            if self.m.runs.visible(owner, name):
                try:
                    out[name] = self.m.runs.metrics(name)
                except GPTError:
                    continue
        frame = frames.compare_frame(out)
        return frame if len(frame) else None

    @staticmethod
    def clear_plot():
        return None

    # --- 3. generate -----------------------------------------------------------------------------
    def sample_runs(self, owner, current=None):
        runs = library.sampleable(self.m.runs.list_runs(owner))
        choices = [(library.run_label(r), r.name) for r in runs]
        names = [n for _, n in choices]
        if current not in names:
            mine = self.m.runs.current_run(owner) if owner else None
            current = next((n for n in (mine, "shakespeare-char") if n in names), names[0] if names else None)
        return gr.update(choices=choices, value=current)

    def generate(self, owner, run, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        """Stream (text so far, status) into the page; the Stop button ends it."""
        stop = self._stop_sampling[owner or ""] = threading.Event()
        req = gen.SampleRequest(run, prompt or "", max_new_tokens, temperature, top_k, top_p,
                                None if seed is None or seed < 0 else int(seed))
        try:
            loaded = gen.open_run(self.m, self.models, owner, run, self.m.device)
            settings, notes = gen.prepare(loaded, req, self.m.limits.max_new_tokens)
        except Exception as err:  # noqa: BLE001
            yield "", problem(err)
            return
        status = " ".join(notes)
        try:
            with self.m.sampling(run):
                text = ""
                for text in gen.stream(loaded, req, settings, should_stop=stop.is_set):
                    yield text, status or "Generating..."
            n = len(text) - len(req.prompt)
            done = "Stopped" if stop.is_set() else "Done"
            yield text, (status + " " if status else "") + f"{done}: {n:,} characters generated."
        except Exception as err:  # noqa: BLE001
            yield gr.skip(), problem(err)

    def stop_generation(self, owner):
        event = self._stop_sampling.get(owner or "")
        if event is not None:
            event.set()
        return "Stopped."

    # --- 4. checkpoints ------------------------------------------------------------------------
    def runs_table(self, owner, selected=None):
        runs = self.m.runs.list_runs(owner)
        table = pd.DataFrame(library.table_rows(runs), columns=library.TABLE_HEADERS)
        names = [r.name for r in runs]
        value = selected if selected in names else (names[0] if names else None)
        return table, gr.update(choices=[(library.run_label(r), r.name) for r in runs], value=value)

    def prepare_download(self, owner, run):
        if not run:
            return gr.update(value=None, interactive=False)
        try:
            return gr.update(value=library.download_file(self.m, owner, run), interactive=True)
        except GPTError:
            return gr.update(value=None, interactive=False)

    def delete(self, owner, run):
        try:
            if not run:
                return (say("Choose a run first.", ok=False), *self.runs_table(owner))
            self.m.delete(owner, run)
            msg = say(f"Deleted **{run}**.")
        except Exception as err:  # noqa: BLE001
            msg = problem(err)
        return (msg, *self.runs_table(owner))

    def upload(self, owner, file):
        if not file:
            return (gr.skip(), gr.skip(), gr.skip())
        path = file if isinstance(file, str) else getattr(file, "name", str(file))
        try:
            name = library.import_checkpoint(self.m, owner, path)
            msg = say(f"Uploaded as **{name}**: it is in the Generate tab now.")
        except Exception as err:  # noqa: BLE001
            name, msg = None, problem(err)
        table, dropdown = self.runs_table(owner, name)
        return msg, table, dropdown

