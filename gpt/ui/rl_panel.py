"""The reward stage on the page: start RL from a chat run, watch the reward rise, see the answers graded.

`build_rl_panel(page)` lays out the panel inside whatever holds it (the Chat
tab's accordion); `RLHandlers` holds what each event computes (testable
without a browser). The run is an ordinary run of the run service, so the
Train tab shows its progress and loss too; this panel shows what is new:
- one plot in fractions of 1: the mean reward of every step (live, while the
  run trains in this process), its mean at each evaluation, and the share of
  the held-out questions answered right (greedy);
- the latest steps' sampled answers, k per question, green where the grader
  said right and red where it said wrong, newest first;
- the same held-out questions answered before RL (step 0) and now.
"""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from ..chat.rl import SAMPLES_RANGE, Reinforce
from ..chat.tasks import TASKS, task_from_name
from ..errors import GPTError
from ..jobs import JobManager, RunRequest
from ..presets import LATER_STAGES, RL_PRESET
from . import frames
from .addresses import client_address
from .messages import problem, say
from .page import PRIVATE, Page, unchanged

SERIES = ("reward (each step)", "reward (mean per evaluation)", "held-out accuracy")
COLOURS = {"reward (each step)": "#86efac", "reward (mean per evaluation)": "#15803d", "held-out accuracy": "#1d4ed8"}
RIGHT, WRONG = "#dcfce7", "#fee2e2"  # green and red backgrounds of an answer the grader marked
SHOWN_STEPS = 3  # steps whose sampled answers the panel lists
INTRO = ("**Reward the answers.** Each step the model answers every question several times; the task's grader marks "
         "each answer right or wrong, and answers better than their question's average are made likelier. RL "
         "sharpens what the model can already sometimes do: a question it never gets right teaches it nothing.")


def reward_frame(rows: list[dict], live: list[tuple[int, float]] = ()) -> pd.DataFrame:
    """step, value, series: every step's reward (the rows' and the live steps' after them), each evaluation's mean
    reward and held-out accuracy. Every series is present from the first frame (a NaN row where empty): the plot
    fixes its legend when it first draws."""
    points = [(s, v, SERIES[0]) for r in rows for s, v in r.get("rewards", [])]
    points += [(s, v, SERIES[0]) for s, v in live]
    points += [(r["step"], r["reward"], SERIES[1]) for r in rows if "reward" in r]
    points += [(r["step"], r["val_accuracy"], SERIES[2]) for r in rows if "val_accuracy" in r]
    points += [(float("nan"), float("nan"), name) for name in SERIES if name not in {p[2] for p in points}]
    step, value, series = zip(*points)
    return pd.DataFrame({"step": pd.Series(step, dtype="float64"), "value": pd.Series(value, dtype="float64"),
                         "series": pd.Series(series, dtype="str")})


def _chip(text: str, right: bool) -> str:
    shown = html.escape(text) if text.strip() else "<i>(nothing)</i>"
    mark = "right" if right else "wrong"
    return (f'<span class="rl-answer {mark}" title="{mark}" style="background:{RIGHT if right else WRONG};'
            f'border-radius:4px;padding:1px 6px;margin:2px;display:inline-block;font-family:monospace">'
            f'{"✓" if right else "✗"} {shown}</span>')


def answers_html(steps: list[tuple[int, list[dict]]]) -> str:
    """The sampled answers of a few steps, newest first: each question, its right answer, its k answers coloured."""
    if not steps:
        return '<div class="rl-answers">The sampled answers show here once the run has trained a step.</div>'
    out = ['<div class="rl-answers">']
    for step, groups in steps:
        answers = [a for g in groups for a in g["answers"]]
        right = sum(1 for _, reward in answers if reward > 0)
        out.append(f'<div class="rl-step"><b>Step {step:,}</b>: {right} of {len(answers)} shown answers right')
        for g in groups:
            chips = "".join(_chip(text, reward > 0) for text, reward in g["answers"])
            out.append(f'<div>{html.escape(g["question"])} <span style="color:#6b7280">(right answer: '
                       f'{html.escape(g["expected"])})</span><br>{chips}</div>')
        out.append("</div>")
    return "".join(out) + "</div>"


def before_after_html(rows: list[dict]) -> str:
    """The held-out questions as the model answered them at step 0 and at its latest evaluation (one column
    until a second evaluation: 'step 0 and step 0' side by side says nothing)."""
    rated = [r for r in rows if r.get("held_out")]
    if not rated:
        return '<div class="rl-before-after">The held-out questions show here after the first evaluation.</div>'
    first, last = rated[0], rated[-1]
    score = lambda r: sum(1 for h in r["held_out"] if h[3])  # noqa: E731
    n = len(last["held_out"])
    if first is last:
        out = [f'<table class="rl-before-after"><caption>Held-out questions at step {first["step"]:,}: '
               f'{score(first)} of {n} right; the next evaluation shows them again beside these</caption>'
               f'<tr><th>Question</th><th>Right answer</th><th>Step {first["step"]:,}</th></tr>']
        out += [f"<tr><td>{html.escape(q)}</td><td>{html.escape(expected)}</td><td>{_chip(before, ok)}</td></tr>"
                for q, expected, before, ok in first["held_out"]]
        return "".join(out) + "</table>"
    out = [f'<table class="rl-before-after"><caption>The same held-out questions at step {first["step"]:,} and at '
           f'step {last["step"]:,}: {score(first)} then {score(last)} of {n} right</caption>'
           f'<tr><th>Question</th><th>Right answer</th><th>Step {first["step"]:,}</th>'
           f'<th>Step {last["step"]:,}</th></tr>']
    for (q, expected, before, ok_before), (_, _, after, ok_after) in zip(first["held_out"], last["held_out"]):
        out.append(f"<tr><td>{html.escape(q)}</td><td>{html.escape(expected)}</td><td>{_chip(before, ok_before)}</td>"
                   f"<td>{_chip(after, ok_after)}</td></tr>")
    return "".join(out) + "</table>"


def rl_request(parent, task, samples=None, temperature=None, max_seconds=None, max_iters=None, lr=None,
               batch_size=None) -> RunRequest:
    """An RL run of the chat run `parent` on a built-in task, as the panel and /start_rl ask for one. None or 0
    keeps the RL stage's value (`gpt.presets.LATER_STAGES`), except max_seconds 0 (no time limit) and a
    temperature (0 is refused when the run is checked: greedy answers teach nothing)."""
    if not parent:
        raise GPTError("Choose a chat run to reward: fine-tune a run on a task first (it then shows here).")
    task_from_name(task)  # an unknown task is a sentence now, not once it is queued
    as_int = lambda x: int(x) if x else None  # noqa: E731
    return RunRequest(kind="rl", parent=parent, task=task, samples=as_int(samples),
                      temperature=None if temperature is None else float(temperature),
                      max_seconds=None if max_seconds is None else float(max_seconds), max_iters=as_int(max_iters),
                      lr=float(lr) if lr else None, batch_size=as_int(batch_size))


class RLHandlers:
    def __init__(self, manager: JobManager):
        self.m = manager

    def parents(self, owner, current=None):
        """The chat runs the asker may start RL from (fine-tuned runs and RL runs: anything that answers)."""
        runs = [r for r in self.m.runs.list_runs(owner) if r.chat and r.has_weights]
        names = [r.name for r in runs]
        value = current if current in names else (names[0] if names else None)
        return gr.update(choices=[(f"{r.name} · {r.whose} · {r.task or r.corpus}", r.name) for r in runs], value=value)

    def start(self, owner, parent, task, samples, temperature, seconds, request: gr.Request = None):
        """Start an RL run; the panel watches it from now on."""
        try:
            req = rl_request(parent, task, samples, temperature, seconds)
            job = self.m.start(owner, None, req, address=client_address(request))
        except Exception as err:  # noqa: BLE001
            return problem(err), gr.skip()
        return say(self.m.runner.describe_start(job)), job.name

    def stop(self, owner, watched):
        try:
            return say(self.m.stop(owner, self.watching(owner, watched) or ""))
        except Exception as err:  # noqa: BLE001
            return problem(err)

    def watching(self, owner, watched) -> str | None:
        """The RL run the panel shows: the asker's current run when it is one, else the last one it started."""
        name = self.m.runs.current_run(owner) if owner else None
        if name:
            try:
                if self.m.runs.summary(name, owner).kind == "rl":
                    return name
            except GPTError:
                pass
        return watched if watched and self.m.runs.visible(owner, watched) else None

    def live(self, name: str) -> tuple[list[tuple[int, float]], tuple[int, list[dict]] | None]:
        """What a run training in this process has done since its last evaluation row: steps' rewards, the
        latest step's answers (nothing for a run trained elsewhere, e.g. in GPU slices: its rows say it)."""
        trainer = self.m.runs.live_trainer(name)
        objective = getattr(trainer, "objective", None)
        if not isinstance(objective, Reinforce):
            return [], None
        step, groups = objective.latest_answers()
        return objective.recent_rewards(), (step, groups) if groups else None

    def poll(self, owner, watched, last):
        """Timer tick: progress, the reward plot, the sampled answers, before and after; each only when changed."""
        name = self.watching(owner, watched)
        status = self.m.runs.status_if_visible(name, owner)
        if status is None:
            name = None
        recent, newest = self.live(name) if name else ([], None)
        sig = [name, status and status.state, status and status.step, status and len(status.metrics),
               recent[-1][0] if recent else None, status and status.message]
        same = unchanged(sig, last, 5)
        if same:
            return same
        if status is None:
            idle = '<div class="run-progress idle">No RL run yet: pick a chat run and a task, then press Start.</div>'
            return idle, None, answers_html([]), before_after_html([]), gr.update(interactive=False), sig
        rows = status.metrics
        steps = [(r["step"], r["sampled"]) for r in rows if r.get("sampled")]
        if newest is not None and (not steps or newest[0] > steps[-1][0]):
            steps.append(newest)
        stoppable = bool(status.mine and (status.active or status.state == "paused"))
        return (frames.progress_html(status), frames.drawn(reward_frame(rows, recent)),
                answers_html(steps[::-1][:SHOWN_STEPS]), before_after_html(rows), gr.update(interactive=stoppable), sig)


def _settings_row(page: Page) -> dict:
    stage = LATER_STAGES[RL_PRESET]
    lo, hi = SAMPLES_RANGE
    with gr.Row():
        c = dict(parent=gr.Dropdown(label="Chat run to reward", elem_id="rl-parent", scale=3))
        c["refresh"] = gr.Button("↻", scale=0, min_width=40, elem_id="rl-refresh")
        c["task"] = gr.Dropdown(list(TASKS), value="addition", label="Task (its grader gives the reward)",
                                elem_id="rl-task", scale=2)
    with gr.Row():
        c["samples"] = gr.Slider(lo, hi, stage["rl"]["samples"], step=1, label="Answers per question (k)",
                                 elem_id="rl-samples")
        c["temperature"] = gr.Slider(0.1, 2.0, stage["rl"]["temperature"], step=0.1, label="Sampling temperature",
                                     elem_id="rl-temperature")
        c["seconds"] = gr.Slider(10, 600, stage["train"]["max_seconds"], step=10, label="Seconds of training",
                                 elem_id="rl-seconds")
    return c


def build_rl_panel(page: Page) -> dict:
    """Lay the panel out where it is called (inside the Chat tab's accordion) and wire it; returns its components."""
    h, who = RLHandlers(page.manager), page.who
    gr.Markdown(INTRO, elem_id="rl-intro")
    c = _settings_row(page)
    with gr.Row():
        c["start"] = gr.Button("▶ Start RL", variant="primary", scale=2, elem_id="rl-start")
        c["stop"] = gr.Button("■ Stop", variant="stop", interactive=False, scale=1, elem_id="rl-stop")
    c["msg"] = gr.Markdown(elem_id="rl-msg")
    c["progress"] = gr.HTML(elem_id="rl-progress")
    c["plot"] = gr.LinePlot(None, x="step", y="value", color="series", color_map=COLOURS, colors_in_legend=list(SERIES),
                            y_lim=[0, 1], height=300, title="Reward and held-out accuracy (fractions of 1: higher "
                            "is better)", elem_id="rl-plot")
    with gr.Row():
        c["answers"] = gr.HTML(label="Sampled answers", elem_id="rl-answers")
        c["before_after"] = gr.HTML(label="Before and after", elem_id="rl-before-after")
    watched, last = gr.State(None), gr.State(None)

    pick = dict(fn=h.parents, inputs=[who, c["parent"]], outputs=c["parent"], **PRIVATE)
    page.on_load.append(pick)
    c["refresh"].click(**pick)
    poll_out = [c["progress"], c["plot"], c["answers"], c["before_after"], c["stop"], last]
    settings = [c["parent"], c["task"], c["samples"], c["temperature"], c["seconds"]]
    started = c["start"].click(h.start, [who, *settings], [c["msg"], watched], **PRIVATE)
    started.then(h.poll, [who, watched, last], poll_out, show_progress="hidden", **PRIVATE)
    page.wake_after(started)
    c["stop"].click(h.stop, [who, watched], c["msg"], **PRIVATE)
    page.every_tick(h.poll, [who, watched, last], poll_out)
    return c
