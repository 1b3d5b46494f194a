"""Why the mask: the same text trained with and without the causal mask, as two normal runs.

Without the mask each position sees the very token it must predict: the
training loss collapses while the samples are garbage (the explanation is
`gpt.insight.MASK_EXPLANATION`).
"""

from __future__ import annotations

import os
import re

import gradio as gr

from ... import corpus as corpora
from ... import insight
from ... import plots as figures
from ...errors import GPTError
from ...jobs import RunRequest
from ...jobs import folder as folders
from ...jobs.folder import ACTIVE
from ..figure_downloads import NO_FILE, download, export, png_button
from ..messages import problem
from ..page import PRIVATE, QUIET
from .base import View

MASK_STEPS = 300  # per run of the experiment (GPT_MASK_STEPS overrides)
MASK_RUN = re.compile(r"^why-mask-(\d+)-(masked|unmasked)$")
WAITING = "starts when the masked run finishes"
LOOK_AT = ("**What to look at:** the unmasked model's training loss falls far lower, yet its text is garbage: "
           "it learned to copy the next character, which does not exist yet when it writes.")


def shown(sample: str) -> str:
    """A sample without its leading blank lines, so the first words are in the box, not below its fold."""
    return re.sub(r"^(?:[ \t]*\n)+", "", sample or "")


class MaskView(View):
    def __init__(self, manager, models=None):
        super().__init__(manager, models)
        self.corpus = "shakespeare"
        self.steps = int(os.environ.get("GPT_MASK_STEPS", MASK_STEPS))

    def _pair(self, owner) -> tuple[str, str] | None:
        """The owner's latest experiment: ('why-mask-k-masked', 'why-mask-k-unmasked')."""
        ks = [int(m.group(1)) for n in self.m.runs.run_names() if (m := MASK_RUN.match(n))
              and self.m.runs.owner_of(n) == owner]
        if not owner or not ks:
            return None
        return f"why-mask-{max(ks)}-masked", f"why-mask-{max(ks)}-unmasked"

    def start(self, owner):
        """Queue the masked run, then the unmasked one after it: (status, timer update)."""
        try:
            corpus = corpora.load(self.corpus)
            ks = [int(m.group(1)) for n in folders.used_names(self.m.root) if (m := MASK_RUN.match(n))]
            k = max(ks, default=0) + 1
            masked, unmasked = f"why-mask-{k}-masked", f"why-mask-{k}-unmasked"

            def request(causal: bool) -> RunRequest:  # 'modern': rotary positions find the cheat quickly
                return RunRequest(tokenizer="char", preset="tiny", architecture="modern", max_iters=self.steps,
                                  max_seconds=0, seed=1337, causal=causal)

            self.m.start(owner, corpus, request(True), name=masked, then=[(corpus, request(False), unmasked)])
        except Exception as err:  # noqa: BLE001 - e.g. a run of yours in progress
            return problem(err, toast=False), gr.skip()
        return (f"Training **{masked}**, then **{unmasked}** ({self.steps} steps each, one after the other "
                "like any run: they are in every run list too).", gr.Timer(active=True))

    def _states(self, owner, pair):
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
        return curves, samples, states

    def show(self, owner, last=None):
        """(figure, masked sample, unmasked sample, status, PNG, timer, signature) of the latest experiment."""
        pair = self._pair(owner)
        if pair is None:
            return (None, "", "", "Press the button to train both models.", dict(NO_FILE), gr.Timer(active=False),
                    None)
        curves, samples, states = self._states(owner, pair)
        first, second = states["masked"], states["unmasked"]
        if second is None:  # the unmasked run starts once the masked one finishes
            waiting = first is not None and first[0] in (*ACTIVE, "finished")
            second = (WAITING if waiting else "not started", 0)
        done = second[0] not in (*ACTIVE, WAITING)
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
        return (fig, shown(samples.get("masked", "")), shown(samples.get("unmasked", "")), status, download(png),
                gr.Timer(active=not done), sig)


def build_mask_view(v: MaskView, who) -> tuple[gr.Tab, gr.Timer]:
    with gr.Tab("Why the mask", id="v-mask", elem_id="v-mask") as tab:
        with gr.Row():
            btn = gr.Button(f"▶ Train with and without the mask ({v.steps} steps each)", variant="primary", scale=4,
                            elem_id="mask-btn")
            png = png_button("mask-png")
        status = gr.Markdown(elem_id="mask-status")
        gr.Markdown(LOOK_AT, elem_id="mask-look")
        with gr.Row():
            plot = gr.Plot(show_label=False, scale=3, elem_id="mask-plot")
            gr.Markdown(insight.MASK_EXPLANATION, elem_id="mask-explanation")
        with gr.Row():
            masked = gr.Textbox(label="With the mask: what it writes", lines=7, interactive=False,
                                elem_id="mask-sample-masked")
            unmasked = gr.Textbox(label="Without the mask: what it writes", lines=7, interactive=False,
                                  elem_id="mask-sample-unmasked")
        timer, sig = gr.Timer(1.5, active=False), gr.State(None)
    outputs = [plot, masked, unmasked, status, png, timer, sig]
    tab.select(v.show, [who, sig], outputs, **PRIVATE)
    btn.click(v.start, who, [status, timer], **PRIVATE)
    timer.tick(v.show, [who, sig], outputs, **QUIET)
    return tab, timer
