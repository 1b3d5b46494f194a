"""The Lesson tab: the lecture's steps on the Train tab's text, and the ablation ladder from one button.

`LessonHandlers` computes what each event shows (plain values in, values out;
testable without a browser) from `gpt.lesson`, whose steps carry their own
code (read with `inspect`), output and notes. `build_lesson_tab(page)` lays
the tab out. The corpus and tokenizer are the Train tab's (`page.train`), so
what a student picked there is what the lesson runs on.

The ladder's rungs are normal runs of the run service, queued one after
another for the person who asked (`JobManager.start(..., then=...)`): each
has its live curve, its checkpoint to sample and its row in Compare runs.
Stop ends the rung that trains and the rest of the climb; the status says
which rungs finished, which was stopped and which never started, and Go on
climbs on from the first rung that did not finish.
"""

from __future__ import annotations

import threading
import time

import gradio as gr
import pandas as pd

from .. import corpus as corpora
from .. import insight, ladder, lesson
from .. import plots as figures
from ..errors import GPTError
from ..jobs import JobManager, RunRequest, check_request
from ..jobs import folder as folders
from .chat import student_runs
from .figure_downloads import export
from ..jobs.sampling import ModelCache
from .messages import problem, say
from .page import PRIVATE, Page, unchanged
from .uploads import page_corpus

STEP_CHOICES = [(title, name) for name, title, _ in lesson.steps()]
LADDER_CHOICES = [("Rungs 1-6 (about 2-7 minutes on a 2-core CPU)", "1-6"),
                  ("Rungs 1-7 (7 on a CPU: the fast preset, 2 more minutes)", "1-7")]
TABLE_COLUMNS = ["rung", "change", "state", "step", "val loss", "lecture", "parameters"]
PREFIX = "ladder-"


class LessonHandlers:
    def __init__(self, manager: JobManager, models: ModelCache | None = None):
        self.m = manager
        self.models = models or ModelCache(2)  # the last step loads the student's runs
        self._naming = threading.Lock()  # a class presses "Train the ladder" in the same second

    def _stem(self, corpus, kind) -> str:
        """`ladder-CORPUS-KIND-MMDD-HHMMSS`, with `-2`, `-3`... when another ladder of that second has it:
        every rung's name grows from the stem, and a name is never given twice (folder.new_folder)."""
        base = f"{PREFIX}{corpus.name}-{kind}-{time.strftime('%m%d-%H%M%S')}"
        taken = folders.used_names(self.m.root) | {p.name for p in self.m.root.iterdir()}
        k = 1
        while any(n.startswith(f"{base}{'' if k == 1 else f'-{k}'}-rung") for n in taken):
            k += 1
        return base if k == 1 else f"{base}-{k}"

    def _lesson(self, choice, upload, pasted, kind, bpe_vocab, seed, block_size, batch_size) -> lesson.Lesson:
        settings = lesson.Settings(seed=int(seed), block_size=int(block_size), batch_size=int(batch_size))
        corpus = page_corpus(choice, upload, pasted, self.m.limits.max_upload_bytes)
        vocab = int(bpe_vocab) if kind == "bpe" and bpe_vocab else None
        return lesson.Lesson(corpus, corpora.dataset(corpus, kind, vocab), settings)

    def show(self, choice, upload, pasted, kind, bpe_vocab, step, seed, block_size, batch_size, owner=None):
        """(heading, why, code, output, lecture note, weights plot) of one step on the chosen text."""
        try:
            ls = self._lesson(choice, upload, pasted, kind, bpe_vocab, seed, block_size, batch_size)
            if step == "chat":  # From GPT to ChatGPT works on the student's own runs
                ls.runs = student_runs(self.m, self.models, owner)
            s = lesson.run(ls, step or "data")
        except Exception as err:  # noqa: BLE001 - the page shows the sentence
            return problem(err, toast=False), "", "", "", "", gr.update(value=None, visible=False)
        heading = f"### {s.title}\n*on **{ls.corpus.name}** with **{ls.dataset.tokenizer.describe()}***"
        plot = gr.update(value=export(f"lesson-{step}", figures.weights_figure, s.matrix)[0], visible=True) \
            if s.matrix is not None else gr.update(value=None, visible=False)
        return heading, s.why, s.code, s.output, s.lecture, plot  # s.lecture begins "The lecture..."

    @staticmethod
    def next_step(step):
        names = list(lesson.STEP_NAMES)
        return names[min(names.index(step) + 1, len(names) - 1)] if step in names else names[0]

    # --- the ladder -------------------------------------------------------------------------
    def start_ladder(self, owner, choice, upload, pasted, kind, bpe_vocab, rungs):
        """Queue the rungs as runs of `owner`, one after another; returns (message, the planned run names)."""
        try:
            numbers = ladder.parse_rungs(rungs or "1-6")
            corpus = page_corpus(choice, upload, pasted, self.m.limits.max_upload_bytes)
            vocab = int(bpe_vocab) if kind == "bpe" and bpe_vocab else None
            exact = corpora.dataset(corpus, kind, vocab).tokenizer.vocab_size
            for n in numbers:  # refuse before anything is queued, not halfway up the ladder
                check_request(corpus, RunRequest(tokenizer=kind, vocab_size=vocab, rung=n), self.m.limits,
                              self.m.device, exact)
            with self._naming:  # the first rung's folder takes the stem before another ladder looks
                stem = self._stem(corpus, kind)
                plan = [(corpus, RunRequest(tokenizer=kind, vocab_size=vocab, rung=n), f"{stem}-rung{n}")
                        for n in numbers]
                (c, request, name), *rest = plan
                self.m.start(owner, c, request, name=name, vocab_size=exact, then=rest)
        except Exception as err:  # noqa: BLE001
            return problem(err), gr.skip()
        return say(f"The ladder is queued: {len(plan)} runs, one after another. The curves below fill in "
                   "as each rung trains."), [name for _, _, name in plan]

    def stop_ladder(self, owner, names):
        """Stop the rung that trains (or waits) and the climb after it; says where the ladder stands."""
        planned = self._planned(owner, names)
        job = self.m.active_job(owner) if owner else None
        between = nxt = None
        if job is None or job.name not in planned:  # a rung may have just finished, the next not yet begun
            between = next((j for n in planned if (j := self.m.job(n)) is not None and j.then and not j.active), None)
            plan = between.then if between is not None else []
            if not plan:
                return say("No rung of your ladder is training.", ok=False)
            nxt = plan[0][2]
        waited = job is not None and job.state == "queued"  # behind other runs: nothing trained, nothing to save
        try:
            self.m.stop(owner, (between or job).name)
        except Exception as err:  # noqa: BLE001
            return problem(err)
        if between is not None:
            return say(f"Stopping the ladder at rung {_rung_of(nxt)}, before it began: rung "
                       f"{_rung_of(between.name)} had just finished. **Go on** climbs on from there.")
        if waited:
            return say(f"Cancelled the ladder at rung {_rung_of(job.name)} while it waited in the queue: nothing of "
                       "it was trained. **Go on** climbs on from there.")
        return say(f"Stopping the ladder at rung {_rung_of(job.name)}: its weights are saved. **Go on** climbs on "
                   "from there.")

    def go_on(self, owner, names):
        """Climb on from the first rung that did not finish: resume it (or start it), then the rest in turn."""
        planned = self._planned(owner, names)
        states = {name: self._state(name, owner) for name in planned}
        todo = [name for name in planned if states[name] != "finished"]
        if not planned or not todo:
            return say("There is no ladder of yours to go on with." if not planned else
                       "Every rung of this ladder has finished.", ok=not planned), gr.skip()
        try:
            first = next(n for n in planned if (self.m.root / n).is_dir())
            info = self.m.runs.summary(first, owner).request
            corpus = folders.corpus_of(self.m.runs.run_path(first))
            plan = [(corpus, RunRequest.from_dict({**info, "rung": _rung_of(n)}), n) for n in todo]
            (_, request, name), *rest = plan
            if states[name] == "not started":
                self.m.start(owner, corpus, request, name=name, then=rest)
            else:
                self.m.resume(owner, name, then=rest)
        except Exception as err:  # noqa: BLE001
            return problem(err), gr.skip()
        return say(f"Going on with the ladder from rung {_rung_of(todo[0])}: {len(todo)} rung"
                   f"{'s' if len(todo) > 1 else ''} to go, one after another."), planned

    def _state(self, name: str, owner) -> str:
        """A rung's state; 'waiting' if it has no run yet but the climb goes on, else 'not started'."""
        try:
            return self.m.runs.summary(name, owner).state
        except GPTError:
            # an earlier rung holds the rest of the climb in its plan: the one training now, or one that has just
            # finished and whose worker is starting the next
            stem = name.rsplit("-rung", 1)[0]
            earlier = (self.m.job(f"{stem}-rung{k}") for k in range(1, _rung_of(name)))
            climbing = any(job is not None and any(n == name for _, _, n in job.then) for job in earlier)
            return "waiting" if climbing else "not started"

    def _planned(self, owner, names) -> list[str]:
        """The names to show: the ones this page queued, else the asker's latest ladder (after a refresh)."""
        if names:
            return list(names)
        mine = [r for r in self.m.runs.list_runs(owner) if r.mine and r.name.startswith(PREFIX)] if owner else []
        if not mine:
            return []
        latest = max(mine, key=lambda r: r.created).name.rsplit("-rung", 1)[0]
        return sorted((r.name for r in mine if r.name.startswith(latest + "-rung")), key=_rung_of)

    def ladder_view(self, owner, names):
        """(figure of the validation curves, table, status line, the names shown) of a ladder's runs."""
        runs, rows = [], []
        planned = self._planned(owner, names)
        for name in planned:
            number = _rung_of(name)
            r = ladder.rung(number, self.m.device)
            state, metrics, params = self._state(name, owner), [], None
            if state not in ("waiting", "not started"):
                summary = self.m.runs.summary(name, owner)
                params = summary.params or None
                metrics = self.m.runs.metrics(name)
            last = metrics[-1] if metrics else {}
            rows.append([number, r.change, state, last.get("step", 0),
                         round(last["val_loss"], 3) if "val_loss" in last else None, r.lecture_val_loss, params])
            if metrics:
                runs.append(insight.RunSummary(f"rung {number}", None, {}, metrics, {"state": state}))
        if not rows:
            return None, None, "Press the button to train the ladder on this text.", []
        fig = figures.runs_figure(runs, "step", "val_loss") if runs else None
        return fig, pd.DataFrame(rows, columns=TABLE_COLUMNS), ladder_line(rows), planned

    def poll(self, owner, names, last):
        """Timer tick: redraw only when a rung gained a point or changed state; nothing to do without a ladder."""
        if not names:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), last
        sig = []
        for name in names:
            try:
                s = self.m.runs.summary(name, owner)
                sig.append((name, s.state, s.step))
            except GPTError:  # no run yet: 'waiting' while the climb goes on, 'not started' once it was stopped
                sig.append((name, self._state(name, owner), 0))
        same = unchanged(sig, last, 4)
        if same:
            return same
        return (*self.ladder_view(owner, names), sig)


def ladder_line(rows: list) -> str:
    """Where the climb stands: '2 of 6 rungs finished; rung 3 stopped; rungs 4, 5 and 6 never started.'"""
    done = sum(1 for row in rows if row[2] == "finished")
    line = f"{done} of {len(rows)} rungs finished."
    by_state: dict[str, list[int]] = {}
    for row in rows:
        by_state.setdefault(row[2], []).append(row[0])
    parts = [f"{_rungs(by_state[s])} {s}" for s in ("stopped", "failed", "interrupted") if s in by_state]
    if "not started" in by_state:
        parts.append(f"{_rungs(by_state['not started'])} never started")
    if parts:
        line = line[:-1] + "; " + "; ".join(parts) + ". **Go on** climbs on from the first rung that did not finish."
    return line


def _rungs(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"rung {numbers[0]}"
    return "rungs " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def _rung_of(name: str) -> int:
    return int(name.rsplit("-rung", 1)[1])


def _step_panel() -> dict:
    c = dict(heading=gr.Markdown(elem_id="lesson-heading"), why=gr.Markdown(elem_id="lesson-why"))
    with gr.Row():
        with gr.Column():
            # long lines wrap: a line cut off at the pane's edge is a line a class cannot read
            c["code"] = gr.Code(language="python", label="The code that ran (from the package, via inspect)",
                                interactive=False, max_lines=40, wrap_lines=True, elem_id="lesson-code")
        with gr.Column():
            # printed text has no line numbers (the notebook's has none), so none can drift from it
            c["output"] = gr.Code(language=None, label="What it printed", interactive=False, max_lines=40,
                                  wrap_lines=True, show_line_numbers=False, elem_id="lesson-output")
            c["plot"] = gr.Plot(show_label=False, visible=False, elem_id="lesson-plot")
    c["lecture"] = gr.Markdown(elem_id="lesson-lecture")
    return c


def _ladder_area() -> dict:
    gr.Markdown("### Train the ladder\nEach rung adds one idea to the last and pays for it in validation loss. "
                "Every rung is a normal run: it trains in the queue, samples in Generate and shows in Compare runs.")
    with gr.Row():
        c = dict(rungs=gr.Dropdown(LADDER_CHOICES, value="1-6", label="Rungs", scale=2, elem_id="ladder-rungs"))
        c["start"] = gr.Button("▶ Train the ladder", variant="primary", scale=1, elem_id="ladder-btn")
        c["stop"] = gr.Button("■ Stop the ladder", variant="stop", scale=1, elem_id="ladder-stop")
        c["go_on"] = gr.Button("↻ Go on", scale=1, elem_id="ladder-go-on")
    c["msg"] = gr.Markdown(elem_id="ladder-msg")
    c["status"] = gr.Markdown(elem_id="ladder-status")
    c["plot"] = gr.Plot(show_label=False, elem_id="ladder-plot")
    c["table"] = gr.Dataframe(headers=TABLE_COLUMNS, interactive=False, wrap=True, elem_id="ladder-table")
    return c


def build_lesson_tab(page: Page) -> gr.Tab:
    """The Lesson tab, reading the Train tab's corpus and tokenizer (build it after build_train_tab)."""
    if page.train is None:
        raise RuntimeError("build_lesson_tab needs the Train tab's controls: call build_train_tab(page) first.")
    h, t = LessonHandlers(page.manager, page.models), page.train
    with gr.Tab("Lesson", id="lesson", elem_id="lesson-tab") as tab:
        gr.Markdown("The lecture *Let's build GPT: from scratch, in code, spelled out*, step by step, on the text and "
                    "tokenizer chosen in the Train tab. Change a setting and the numbers follow.")
        with gr.Row():
            step = gr.Radio(STEP_CHOICES, value="data", label="Step", scale=4, elem_id="lesson-step")
            with gr.Column(scale=1, min_width=220):
                seed = gr.Number(1337, label="seed", precision=0, elem_id="lesson-seed")
                block = gr.Slider(1, 64, 8, step=1, label="block_size", elem_id="lesson-block")
                batch = gr.Slider(1, 32, 4, step=1, label="batch_size", elem_id="lesson-batch")
        nxt = gr.Button("Next step →", size="sm", elem_id="lesson-next")
        p = _step_panel()
        lad = _ladder_area()
        names, last = gr.State([]), gr.State(None)
    inputs = [t.corpus, t.upload, t.pasted, t.tokenizer, t.bpe_vocab, step, seed, block, batch, page.who]
    outputs = [p["heading"], p["why"], p["code"], p["output"], p["lecture"], p["plot"]]
    show = dict(fn=h.show, inputs=inputs, outputs=outputs, show_progress="minimal", **PRIVATE)
    # drawn after a click, and the poll's memory cleared: a state that changed while the click's view was drawn
    # (a Stop lands a moment later) is drawn by the next tick, never hidden behind "nothing changed"
    view = dict(fn=lambda owner, shown: (*h.ladder_view(owner, shown), None), inputs=[page.who, names],
                outputs=[lad["plot"], lad["table"], lad["status"], names, last], **PRIVATE)
    tab.select(**show).then(**view)  # the Train tab's choices are read whenever the tab is opened, not followed
    gr.on([step.change, seed.submit, block.release, batch.release], trigger_mode="always_last", **show)
    nxt.click(h.next_step, step, step, **PRIVATE)
    climb = lad["start"].click(h.start_ladder, [page.who, *inputs[:5], lad["rungs"]], [lad["msg"], names], **PRIVATE)
    climb.then(**view)
    page.wake_after(climb)
    lad["stop"].click(h.stop_ladder, [page.who, names], lad["msg"], **PRIVATE).then(**view)
    go_on = lad["go_on"].click(h.go_on, [page.who, names], [lad["msg"], names], **PRIVATE)
    go_on.then(**view)
    page.wake_after(go_on)
    if page.timer is not None:
        page.every_tick(h.poll, [page.who, names, last], [lad["plot"], lad["table"], lad["status"], names, last])
    return tab
