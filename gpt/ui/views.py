"""The 'See inside the model' tab: what each view's events compute.

One method of `Views` per event, values in and component updates out, so
every view is testable without a browser. The numbers come from
`gpt.insight`, the figures from `gpt.plots`; the layout and the wiring are
in `gpt.ui.views_layout`.

- attention      one head's heatmap and every head at once, for a prompt
- next token     the distribution after temperature, top-k and top-p; step forward
- tokenizers     char, GPT-2 and a BPE of the chosen corpus cutting one text
- anatomy        parameters per component and every tensor shape, for the
                 Train tab's settings or a run
- watch          the loss curve of a run next to the sample of each evaluation
- compare        runs side by side, against step or wall time, and a table
- why the mask   a masked and an unmasked run, trained as two normal runs

A figure is rendered to PNG once (`export`): the same file is shown in the
gr.Plot and offered by its download button. Only runs the asker may see
(`JobManager.visible`) are ever opened. Problems come back as a sentence in
the view's status line, never as a traceback.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

import gradio as gr
import pandas as pd
from gradio.components.plot import PlotData

from .. import insight
from .. import plots as figures
from ..errors import CheckpointError, GPTError
from ..model import GPTConfig
from ..jobs.folder import ACTIVE
from ..jobs import JobManager, RunRequest
from .. import corpus as corpora
from . import generate as gen
from . import frames, library
from .messages import problem
from .tokens import token_boxes
from ..estimate import human_count
from ..tokcompare import compare_tokenizers
from .handlers import make_request

SHIPPED = "shakespeare-char"
ATTENTION_PROMPT = "First Citizen:"  # up to 16 tokens keep the heatmap's labels large
NEXT_TOKEN_PROMPT = "First Citizen:\nBefore we proceed"
LINK_HEADERS = ["pos", "token", "looks most at", "weight"]
PARAM_HEADERS = ["component", "parameters", "share"]
SHAPE_HEADERS = ["where", "shape", "as symbols", "what it is"]
MAX_SHOWN_TOKENS = 300
MASK_STEPS = 300  # per run of the 'why the mask' experiment (GPT_MASK_STEPS overrides)
MASK_RUN = re.compile(r"^why-mask-(\d+)-(masked|unmasked)$")
EXPORT_DIR = Path(tempfile.gettempdir()) / "gpt-figures"
KEEP_EXPORTS = 200
NO_FILE = {"value": None, "interactive": False, "__type__": "update"}


def _new_export_folder() -> Path:
    """A fresh folder for one exported file (its name stays readable), oldest folders pruned."""
    EXPORT_DIR.mkdir(parents=True, exist_ok=True)
    old = sorted(EXPORT_DIR.iterdir(), key=lambda p: p.stat().st_mtime)
    for stale in old[:max(0, len(old) - KEEP_EXPORTS)]:
        shutil.rmtree(stale, ignore_errors=True)
    folder = EXPORT_DIR / uuid.uuid4().hex[:12]
    folder.mkdir()
    return folder


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "figure"


_DRAWING = threading.Lock()  # gpt.plots styles a figure inside matplotlib.rc_context, which sets global rcParams


def export(name: str, make, *args) -> tuple[PlotData, str]:
    """Draw `make(*args)` and render it once with `gpt.plots.save_figure`: (what gr.Plot shows, the PNG file)."""
    with _DRAWING:  # one figure at a time, so two requests never restore each other's style half-way
        fig = make(*args)
    path = figures.save_figure(fig, _new_export_folder() / f"{_stem(name)}.png")
    shown = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return PlotData(type="matplotlib", plot=shown), str(path)


def download(path: str | None) -> dict:
    return gr.update(value=path, interactive=True) if path else dict(NO_FILE)


def _slider(count: int, value: int) -> dict:
    """A 0-based picker sized to the model: 0..count-1."""
    return gr.update(minimum=0, maximum=max(1, count - 1), value=value, interactive=count > 1)


class Views:
    def __init__(self, manager: JobManager, models: gen.ModelCache | None = None):
        self.m = manager
        self.models = models or gen.ModelCache()
        self.mask_corpus = "shakespeare"
        self.mask_steps = int(os.environ.get("GPT_MASK_STEPS", MASK_STEPS))

    # --- run pickers --------------------------------------------------------------------------
    def _choose(self, owner, runs: list[dict], current, label) -> dict:
        names = [r.name for r in runs]
        if current not in names:
            mine = self.m.runs.current_run(owner) if owner else None
            current = next((n for n in (mine, SHIPPED) if n in names), names[0] if names else None)
        return gr.update(choices=[(label(r), r.name) for r in runs], value=current)

    def model_runs(self, owner, current=None) -> dict:
        """Runs a model can be opened from: a checkpoint on disk, or training now (its snapshot)."""
        return self._choose(owner, library.sampleable(self.m.runs.list_runs(owner)), current, library.run_label)

    def _runs_with_metrics(self, owner) -> list[dict]:
        return [r for r in self.m.runs.list_runs(owner) if r.has_weights or r.state in ACTIVE]

    def metric_runs(self, owner, current=None) -> dict:
        return self._choose(owner, self._runs_with_metrics(owner), current, library.short_label)

    def compare_runs(self, owner, selected=None) -> dict:
        runs = self._runs_with_metrics(owner)
        names = [r.name for r in runs]
        keep = [s for s in (selected or []) if s in names]
        if not keep:
            current = self.m.runs.current_run(owner) if owner else None
            keep = [n for n in (current, SHIPPED) if n in names] or names[:2]
        return gr.update(choices=[(library.short_label(r), r.name) for r in runs], value=keep)

    def _open(self, owner, run) -> gen.Loaded:
        return gen.open_run(self.m, self.models, owner, run, self.m.device)

    @staticmethod
    def _at(run: str, loaded: gen.Loaded) -> str:
        return f"**{run}** " + (f"(still training: its weights at step {loaded.step:,})" if loaded.live
                                else f"at step {loaded.step:,}")

    # --- 1. attention ---------------------------------------------------------------------------
    def attention(self, owner, run, prompt, layer=0, head=0):
        """(heatmap, all heads, layer slider, head slider, strongest links, status, heatmap PNG, grid PNG)."""
        try:
            loaded = self._open(owner, run)
            maps = insight.attention_maps(loaded.model, loaded.tokenizer, prompt or "")
        except Exception as err:  # noqa: BLE001 - a bigram run, a character never seen: a sentence
            return None, None, gr.skip(), gr.skip(), None, problem(err, toast=False), dict(NO_FILE), dict(NO_FILE)
        n_layer, n_head = maps.weights.shape[:2]
        layer, head = min(int(layer or 0), n_layer - 1), min(int(head or 0), n_head - 1)
        heat, links, status, heat_png = self._one_head(run, loaded, maps, layer, head)
        grid, grid_png = export(f"attention-{run}-all-heads", figures.attention_grid_figure, maps)
        return (heat, grid, _slider(n_layer, layer), _slider(n_head, head), links, status,
                download(heat_png), download(grid_png))

    def attention_head(self, owner, run, prompt, layer=0, head=0):
        """The heatmap of another layer or head: (heatmap, strongest links, status, heatmap PNG)."""
        try:
            loaded = self._open(owner, run)
            maps = insight.attention_maps(loaded.model, loaded.tokenizer, prompt or "")
            maps.head(int(layer or 0), int(head or 0))  # a sentence when out of range
        except Exception as err:  # noqa: BLE001
            return None, None, problem(err, toast=False), dict(NO_FILE)
        heat, links, status, heat_png = self._one_head(run, loaded, maps, int(layer or 0), int(head or 0))
        return heat, links, status, download(heat_png)

    def _one_head(self, run, loaded, maps: insight.AttentionMaps, layer: int, head: int):
        n_layer, n_head, T, _ = maps.weights.shape
        heat, png = export(f"attention-{run}-layer{layer}-head{head}", figures.attention_figure, maps, layer, head)
        links = pd.DataFrame(insight.strongest_links(maps, layer, head), columns=LINK_HEADERS)
        mask = "the grey triangle is the future the mask hides" if maps.causal else "no causal mask: it sees the future"
        status = (f"{self._at(run, loaded)} · {T} tokens · layer {layer} of 0..{n_layer - 1}, head {head} of "
                  f"0..{n_head - 1} · each row sums to 1; {mask}.")
        return heat, links, status, png

    # --- 2. the next-token distribution ---------------------------------------------------------
    def next_token(self, owner, run, prompt, temperature=1.0, top_k=0, top_p=1.0, note: str = ""):
        """(bar chart, token dropdown, status, PNG) for what the model may write after `prompt`."""
        try:
            loaded = self._open(owner, run)
            view = insight.next_token_view(loaded.model, loaded.tokenizer, prompt or "", float(temperature),
                                           int(top_k or 0), float(top_p) if top_p is not None else None)
        except Exception as err:  # noqa: BLE001
            return None, gr.update(choices=[], value=None), problem(err, toast=False), dict(NO_FILE)
        fig, png = export(f"next-token-{run}", figures.next_token_figure, view)
        choices = insight.token_choices(view)
        kept = int((view.probs > 0).sum())
        status = " ".join(filter(None, [
            note, f"{self._at(run, loaded)} reads {len(view.ids)} tokens. {kept:,} of its "
                  f"{loaded.tokenizer.vocab_size:,} tokens can be drawn; {len(view.cut):,} are cut by top-k / top-p.",
            *view.notes]))
        return fig, gr.update(choices=choices, value=choices[0][1] if choices else None), status, download(png)

    def next_append(self, owner, run, prompt, token, temperature=1.0, top_k=0, top_p=1.0):
        """Append the chosen token to the prompt, then show the next distribution: (prompt, *next_token)."""
        if token is None or token == "":
            return (gr.skip(), gr.skip(), gr.skip(), problem(GPTError("Choose a token first."), toast=False), gr.skip())
        try:
            tok = self._open(owner, run).tokenizer
            new = insight.step_forward(prompt or "", int(token), tok)
        except Exception as err:  # noqa: BLE001
            return (gr.skip(), gr.skip(), gr.skip(), problem(err, toast=False), gr.skip())
        piece = insight.show_piece(tok.decode([int(token)]))
        return (new, *self.next_token(owner, run, new, temperature, top_k, top_p, note=f"Appended '{piece}'."))

    def next_sample(self, owner, run, prompt, temperature=1.0, top_k=0, top_p=1.0, seed=None):
        """Draw one token as the sampler would, append it, show the next distribution."""
        try:
            loaded = self._open(owner, run)
            view = insight.next_token_view(loaded.model, loaded.tokenizer, prompt or "", float(temperature),
                                           int(top_k or 0), float(top_p) if top_p is not None else None)
            token = insight.pick_token(view, seed)
        except Exception as err:  # noqa: BLE001
            return (gr.skip(), gr.skip(), gr.skip(), problem(err, toast=False), gr.skip())
        new = insight.step_forward(prompt or "", token, loaded.tokenizer)
        note = (f"Sampled '{insight.show_piece(loaded.tokenizer.decode([token]))}' "
                f"(it had {100 * view.probs[token].item():.1f}%).")
        return (new, *self.next_token(owner, run, new, temperature, top_k, top_p, note=note))

    # --- 3. tokenizers side by side -------------------------------------------------------------
    def tokenizers(self, text, corpus_choice, upload=None, pasted=None, vocab_size=None, n_embd=128):
        """(table of coloured pieces and numbers, figure, status, PNG): every tokenizer on one text."""
        try:
            corpus = corpora.load(corpus_choice, upload, pasted, max_bytes=self.m.limits.max_upload_bytes)
        except Exception as err:  # noqa: BLE001
            return "", None, problem(err, toast=False), dict(NO_FILE)
        text = text or corpora.sample_sentence(corpus.text)
        vocab = int(vocab_size or corpora.BPE_VOCAB_DEFAULT)
        kinds = {"char": "char", "gpt2 (compact)": "gpt2", f"bpe {vocab:,} (trained here)": "bpe"}
        built, failed = {}, {}
        for label, kind in kinds.items():
            try:
                built[label] = corpora.dataset(corpus, kind, vocab).tokenizer
            except GPTError as err:  # GPT-2 offline: its row says why
                failed[label] = str(err)
        rows = {r["name"]: r for r in compare_tokenizers(text, built, int(n_embd or 128))}
        rows = [rows.get(label) or dict(name=label, vocab_size=None, embedding_params=None, pieces=[], n_tokens=None,
                                        chars_per_token=None, error=failed[label]) for label in kinds]
        fig, png = export("tokenizers", figures.tokenizer_figure, rows)
        status = (f"{len(text):,} characters; tokenizers built on **{corpus.name}** (the Train tab's corpus); "
                  f"embedding cost at width {int(n_embd or 128)} (the Train tab's n_embd).")
        return tokenizer_table_html(rows), fig, status, download(png)

    # --- 4. anatomy --------------------------------------------------------------------------------
    def anatomy(self, owner, source, run, vocab, preset, model_type, architecture, *sliders):
        """(parameter table, parameter chart, shape table, status, PNG) for the Train tab's settings or a run."""
        try:
            if source == "run":
                config, what = self._run_config(owner, run), f"Run **{run}**"
            else:
                req = make_request("char", None, preset, model_type, architecture, *sliders)
                config, what = req.configs(int(vocab or 65), self.m.device)[0], "The Train tab's settings"
            params = insight.parameter_rows(config)
            trace = insight.shape_trace(config)
        except Exception as err:  # noqa: BLE001
            return None, None, None, problem(err, toast=False), dict(NO_FILE)
        fig, png = export(f"parameters-{run if source == 'run' else 'settings'}", figures.parameters_figure, config)
        table = pd.DataFrame([[name, f"{n:,}", f"{share:g}%"] for name, n, share in params], columns=PARAM_HEADERS)
        shapes = pd.DataFrame([[r["where"], "(" + ", ".join(map(str, r["shape"])) + ")", r["symbols"], r["what"]]
                               for r in trace], columns=SHAPE_HEADERS)
        B, T = trace[0]["shape"]
        shape = ("a bigram table" if config.model_type == "bigram" else
                 f"{config.n_layer} layers × {config.n_head} heads × {config.n_embd} wide")
        status = (f"{what}: {shape}, context {config.block_size}, vocabulary {config.vocab_size:,}. "
                  f"Shapes from a real forward pass of B = {B} windows of T = {T} tokens (on the meta device: "
                  "no memory, no arithmetic).")
        return table, fig, shapes, status, download(png)

    def _run_config(self, owner, run) -> GPTConfig:
        if not run or not self.m.runs.visible(owner, run):
            raise CheckpointError("Choose a run." if not run else f"There is no run named {run!r}.")
        trainer = self.m.runs.live_trainer(run)
        if trainer is not None:
            return trainer.model_config
        try:
            meta = insight.load_run(self.m.runs.run_path(run)).meta
        except CheckpointError:
            meta = {}
        if not meta.get("model"):
            raise CheckpointError(f"Run {run!r} has no model configuration yet; it is saved at its first evaluation.")
        return GPTConfig.from_dict(meta["model"])

    # --- 5. samples over training ---------------------------------------------------------------
    def watch(self, owner, run, last=None):
        """(loss curve, sample timeline, status, metrics CSV, signature); parts unchanged since `last` are skipped."""
        if not run or not self.m.runs.visible(owner, run):
            return None, "", "Choose a run.", dict(NO_FILE), None
        try:
            status = self.m.runs.status(run, owner)
            rows = self.m.runs.metrics(run)
        except GPTError as err:
            return None, "", problem(err, toast=False), dict(NO_FILE), None
        steps = self.m.runs.step_losses(run)
        sig = [run, status.state, len(rows), len(steps)]
        if sig == last:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), last
        curve = frames.loss_frame(rows, steps)
        line = f"**{run}**: {status.state}, step {status.step:,}"
        if status.val_loss is not None:
            line += f", val loss {status.val_loss:.3f}"
        if last and last[:3] == sig[:3]:  # only new batch losses: the timeline and the CSV are the same
            return curve, gr.skip(), line, gr.skip(), sig
        timeline = insight.sample_timeline(rows)
        shown = timeline_html(timeline)
        csv = insight.write_csv(rows, _new_export_folder() / f"{_stem(run)}-metrics.csv") if rows else None
        line += f" · {len(timeline)} samples, newest first."
        return curve, shown, line, download(str(csv) if csv else None), sig

    # --- 6. compare runs -------------------------------------------------------------------------
    def _summary(self, owner, name) -> insight.RunSummary | None:
        if not self.m.runs.visible(owner, name):
            return None
        try:
            path = self.m.runs.run_path(name)
            rows = self.m.runs.metrics(name)
            state = self.m.runs.summary(name, owner).state
        except GPTError:
            return None
        try:
            meta = insight.load_run(path).meta
        except CheckpointError:
            meta = {}
        trainer = self.m.runs.live_trainer(name)
        if not meta.get("model") and trainer is not None:  # training, not saved yet
            meta = {"model": trainer.model_config.to_dict(), "tokenizer": {"type": trainer.tokenizer.spec()["type"]},
                    "n_params": trainer.n_params}
        return insight.RunSummary(name, path, meta, rows, {"state": state})

    def compare(self, owner, selected, x="step", y="val_bpc"):
        """(figure, table, status, PNG) for the chosen runs the asker may see."""
        runs = [s for s in (self._summary(owner, n) for n in selected or []) if s is not None]
        if not runs:
            return None, None, "Choose one or more runs to compare.", dict(NO_FILE)
        fig, png = export(f"compare-{y}-by-{x}", figures.runs_figure, runs, x or "step", y or "val_bpc")
        headers, rows = insight.runs_table(runs)
        table = pd.DataFrame(rows, columns=headers)
        table["parameters"] = [human_count(int(n)) if n else "-" for n in table["parameters"]]
        note = ("Bits per character compare fairly across tokenizers; loss per token does not."
                if y == "val_bpc" else "Loss per token: compare only runs with the same tokenizer.")
        return fig, table, f"{len(runs)} run(s). {note}", download(png)

    # --- 7. why the mask ---------------------------------------------------------------------------
    def _mask_pair(self, owner) -> tuple[str, str] | None:
        """The owner's latest experiment: ('why-mask-k-masked', 'why-mask-k-unmasked')."""
        ks = [int(m.group(1)) for n in self.m.runs.run_names() if (m := MASK_RUN.match(n))
              and self.m.runs.owner_of(n) == owner]
        if not owner or not ks:
            return None
        return f"why-mask-{max(ks)}-masked", f"why-mask-{max(ks)}-unmasked"

    def mask_start(self, owner):
        """Queue the masked run, then the unmasked one after it: (status, timer update)."""
        try:
            corpus = corpora.load(self.mask_corpus)
            ks = [int(m.group(1)) for n in self.m.runs.run_names() if (m := MASK_RUN.match(n))]
            k = max(ks, default=0) + 1
            masked, unmasked = f"why-mask-{k}-masked", f"why-mask-{k}-unmasked"

            def request(causal: bool) -> RunRequest:  # 'modern': rotary positions find the cheat quickly
                return RunRequest(tokenizer="char", preset="tiny", architecture="modern", max_iters=self.mask_steps,
                                  max_seconds=0, seed=1337, causal=causal)

            self.m.start(owner, corpus, request(True), name=masked, then=[(corpus, request(False), unmasked)])
        except Exception as err:  # noqa: BLE001 - e.g. a run of yours in progress
            return problem(err, toast=False), gr.skip()
        return (f"Training **{masked}**, then **{unmasked}** ({self.mask_steps} steps each, one after the other "
                "like any run: they are in every run list too).", gr.Timer(active=True))

    def mask(self, owner, last=None):
        """(figure, masked sample, unmasked sample, status, PNG, timer, signature) of the latest experiment."""
        pair = self._mask_pair(owner)
        if pair is None:
            return (None, "", "", "Press the button to train both models.", dict(NO_FILE), gr.Timer(active=False),
                    None)
        curves, samples, states = {}, {}, {}
        for label, name in zip(("masked", "unmasked"), pair):
            try:
                info = self.m.runs.summary(name, owner)
                rows = self.m.runs.metrics(name)
            except GPTError:
                info, rows = None, []
            if rows:
                curves[label], samples[label] = rows, rows[-1].get("sample", "")
            states[label] = info and (info.state, info.step)
        first, second = states["masked"], states["unmasked"]
        if second is None:  # the unmasked run starts once the masked one finishes
            waiting = first is not None and first[0] in (*ACTIVE, "finished")
            second = ("starts when the masked run finishes" if waiting else "not started", 0)
        done = second[0] not in (*ACTIVE, "starts when the masked run finishes")
        states = [f"**{name}**: {state}" + (f", step {step:,}" if state in ACTIVE and step else "")
                  for name, (state, step) in zip(pair, (first or ("deleted", 0), second))]
        sig = [pair, states, [len(c) for c in curves.values()]]
        if sig == last:
            return (gr.skip(),) * 5 + (gr.Timer(active=not done), last)
        experiment = insight.MaskExperiment(curves, samples, insight.MASK_EXPLANATION)
        fig, png = export(f"why-the-mask-{pair[0][:-7]}", figures.mask_figure, experiment) if curves else (None, None)
        status = " · ".join(states)
        if done and "masked" in curves and "unmasked" in curves:
            status += (f". Final training loss: {experiment.final_train_loss('masked'):.2f} with the mask, "
                       f"{experiment.final_train_loss('unmasked'):.2f} without.")
        return (fig, samples.get("masked", ""), samples.get("unmasked", ""), status, download(png),
                gr.Timer(active=not done), sig)


# --- HTML the views show ------------------------------------------------------------------------


def tokenizer_table_html(rows: list[dict]) -> str:
    """One row per tokenizer: the text cut into coloured pieces (ids underneath), then the numbers."""
    head = ("<tr><th>tokenizer</th><th>the text, cut into tokens (id under each)</th><th>tokens</th>"
            "<th>chars/token</th><th>vocab</th><th>embedding params</th></tr>")
    body = []
    for r in rows:
        if r["error"] is not None:
            cut = f'<span class="msg-error">{html.escape(r["error"])}</span>'
        else:
            cut = token_boxes(r["pieces"], MAX_SHOWN_TOKENS)

        def num(v, fmt="{:,}"):
            return "-" if v is None else fmt.format(v)

        body.append(f"<tr><td><b>{html.escape(r['name'])}</b></td><td>{cut}</td><td>{num(r['n_tokens'])}</td>"
                    f"<td>{num(r['chars_per_token'], '{:.2f}')}</td><td>{num(r['vocab_size'])}</td>"
                    f"<td>{num(r['embedding_params'])}</td></tr>")
    return f'<table class="tok-compare">{head}{"".join(body)}</table>'


def timeline_html(timeline: list[tuple[int, float, str]]) -> str:
    """The samples of each evaluation, newest first (what a live run just learned is on top)."""
    if not timeline:
        return '<div class="sample-timeline"><p>No samples yet: one is written at each evaluation.</p></div>'
    return f'<div class="sample-timeline">{insight.timeline_html(list(reversed(timeline)))}</div>'

