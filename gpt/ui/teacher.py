"""The teacher's page: every run on the server, the class's limits, and the class challenge board.

It exists only when the server is started with GPT_TEACHER_TOKEN set: then
`build_teacher_page` adds a page at /teacher (not in the navigation bar);
without it there is no route and no component of it anywhere.

How it is kept from students. The page's layout is public (any browser can
read /config and call an event by its fn_index, as the page itself does),
so nothing relies on the page being hidden: every event takes the token
typed into the page as its first input and checks it on the server, on
every call, with `hmac.compare_digest` (constant time). A wrong or missing
token gets one sentence and nothing else: no run, no name, no figure. The
token is never logged, stored or sent back. The events are private
(`api_visibility="private"`): no named endpoint, nothing in the API docs.

What the teacher does here: stop, delete or share any run (as `TEACHER`,
the scheduler's owner that no client string can be), change the time per
run, the runs at the same time and the largest model live
(`JobManager.set_limits`: the queue wakes; each value within its range, kept
in the runs folder so a restart keeps them: `gpt.jobs.class_limits`), and
watch the board: each student's best validation bits per character within a
training time.
"""

from __future__ import annotations

import hmac
import html
import os

import gradio as gr

from ..errors import ConfigError, GPTError
from ..estimate import human_count, human_seconds
from ..limits import CLASS_MAX_PARAMS, CLASS_MIN_PARAMS
from ..validate import number
from ..jobs import JobManager
from ..jobs import folder as folders
from ..jobs import class_limits
from ..jobs.board import challenge_board
from ..jobs.manager import TEACHER
from .frames import STATE_COLOURS
from .messages import problem, say
from .page import PRIVATE, QUIET

TOKEN_ENV = "GPT_TEACHER_TOKEN"
MIN_TOKEN = 8
PATH = "teacher"
WRONG = "That is not the teacher's token (GPT_TEACHER_TOKEN); nothing is shown."
TABLE_CSS = """<style>
.teacher-table { border-collapse: collapse; width: 100%; font-size: 15px; }
.teacher-table th, .teacher-table td { border-bottom: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; }
.teacher-table td.num, .teacher-table th.num { text-align: right; font-variant-numeric: tabular-nums; }
.teacher-table .state { color: white; border-radius: 10px; padding: 1px 8px; font-size: 13px; }
</style>"""


def teacher_token(env=None) -> str | None:
    """The token from the environment; None (no teacher's page) when unset or blank."""
    token = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    if token and len(token) < MIN_TOKEN:
        raise ConfigError(f"{TOKEN_ENV} must be at least {MIN_TOKEN} characters long; choose a longer secret.")
    return token or None


class Gate:
    """The one check every teacher event makes. Holds the token; never shows it (repr included)."""

    def __init__(self, token: str):
        self._token = token.encode("utf-8")

    def __repr__(self) -> str:
        return "Gate(<token hidden>)"

    def opens(self, given) -> bool:
        given = given.strip().encode("utf-8") if isinstance(given, str) else b""
        return hmac.compare_digest(given, self._token)


def _cell(value, num: bool = False) -> str:
    return f'<td class="num">{html.escape(str(value))}</td>' if num else f"<td>{html.escape(str(value))}</td>"


def _table(head: list[str], rows: list[str], empty: str, elem: str) -> str:
    if not rows:
        return f'<p class="{elem}-empty">{html.escape(empty)}</p>'
    nums = {"Step", "Bits/char", "Elapsed", "Tokens/s", "Parameters", "Rank", "At step", "At"}
    header = "".join(f'<th class="num">{h}</th>' if h in nums else f"<th>{h}</th>" for h in head)
    return f'{TABLE_CSS}<table class="teacher-table {elem}"><tr>{header}</tr>{"".join(rows)}</table>'


def runs_html(manager: JobManager) -> tuple[str, list[str]]:
    """Every run on the server, whoever made it, with its owner's display name; and the run names."""
    rows, names = [], []
    for summary in manager.runs.list_runs(None):
        try:
            s = manager.runs.status(summary.name)
        except GPTError:
            continue
        names.append(s.name)
        colour = STATE_COLOURS.get(s.state, "#6b7280")
        queue = ""
        if s.state == "queued" and s.queue_position:
            queue = f"#{s.queue_position}, starts in ~{human_seconds(s.starts_in_s)}"
        rows.append(
            f'<tr data-run="{html.escape(s.name)}">' + _cell(s.name) + _cell(manager.labels.display(s.owner, s.label))
            + f'<td><span class="state" style="background:{colour}">{html.escape(s.state)}</span></td>'
            + _cell(f"{s.step:,} / {s.max_iters:,}" if s.max_iters else "-", True)
            + _cell("-" if s.val_bpc is None else f"{s.val_bpc:.3f}", True)
            + _cell(human_seconds(s.elapsed_s) if s.elapsed_s else "-", True)
            + _cell(f"{s.tokens_per_sec:,.0f}" if s.tokens_per_sec else "-", True)
            + _cell(human_count(s.params or s.n_params) if s.params or s.n_params else "-", True) + _cell(queue)
            + _cell("yes" if s.shared else "no") + "</tr>")
    head = ["Run", "Student", "State", "Step", "Bits/char", "Elapsed", "Tokens/s", "Parameters", "Queue", "Shared"]
    return _table(head, rows, "No runs on this server yet.", "teacher-runs"), names


def board_html(manager: JobManager, within_s: float) -> str:
    """The class challenge: each student's best shared run within `within_s` s of training; a run with no
    evaluation after training yet is listed without a rank ('not yet')."""
    rows = []
    for r in challenge_board(manager, within_s):
        ranked = r.rank is not None
        rows.append(f'<tr data-run="{html.escape(r.run)}" data-ranked="{str(ranked).lower()}">'
                    + _cell(r.rank if ranked else "-", True) + _cell(r.student)
                    + _cell(f"{r.val_bpc:.3f}" if ranked else "not yet", True) + _cell(r.run)
                    + _cell(f"{r.step:,}" if ranked else "-", True)
                    + _cell(human_seconds(r.elapsed_s) if ranked else "-", True)
                    + _cell(r.tokenizer) + _cell(human_count(r.params) if r.params else "-", True) + _cell(r.state)
                    + "</tr>")
    head = ["Rank", "Student", "Bits/char", "Run", "At step", "At", "Tokenizer", "Parameters", "State"]
    return _table(head, rows, "No shared run yet: a student's run joins the board once they share it.", "teacher-board")


class TeacherHandlers:
    """What each event of the teacher's page does; every one checks the token first."""

    def __init__(self, manager: JobManager, gate: Gate):
        self.m, self.gate = manager, gate

    def unlock(self, token):
        """Open the page: the panel and the current limits, or a sentence and nothing."""
        if not self.gate.opens(token):
            return say(WRONG, ok=False), gr.update(visible=False), None, None, None
        lim = self.m.limits
        return (say("Teacher's page open. It updates every two seconds."), gr.update(visible=True),
                lim.max_run_seconds, lim.max_concurrent_jobs, lim.max_params / 1e6)

    def refresh(self, token, within_s, last):
        """Timer tick: the runs table, the run picker and the board, each sent only when it changed."""
        if not self.gate.opens(token):
            return gr.skip(), gr.skip(), gr.skip(), last
        runs, names = runs_html(self.m)
        board = board_html(self.m, float(within_s or 0))
        sig = (runs, names, board)
        if sig == last:
            return gr.skip(), gr.skip(), gr.skip(), last
        picker = gr.update(choices=names) if not last or last[1] != names else gr.skip()
        return (runs if not last or last[0] != runs else gr.skip(), picker,
                board if not last or last[2] != board else gr.skip(), sig)

    def stop(self, token, run):
        if not self.gate.opens(token):
            return say(WRONG, ok=False)
        try:
            return say(self.m.stop(TEACHER, run or ""))  # what really happens: a stop, or a cancel while it waits
        except Exception as err:  # noqa: BLE001
            return problem(err)

    def delete(self, token, run, armed):
        """Two clicks: the first names the run, the second deletes it."""
        if not self.gate.opens(token):
            return say(WRONG, ok=False), ""
        if not run:
            return say("Pick a run first.", ok=False), ""
        if armed != run:
            return say(f"Click **Delete** again to delete **{run}** and its checkpoint."), run
        try:
            self.m.delete(TEACHER, run)
        except Exception as err:  # noqa: BLE001
            return problem(err), ""
        return say(f"Deleted **{run}**."), ""

    def share(self, token, run):
        """Share a run with everyone (it joins the board), or stop sharing it."""
        if not self.gate.opens(token):
            return say(WRONG, ok=False)
        try:
            path = self.m.runs.run_path(run or "")
            info = folders.app_info(self.m.root, path.name)
            if info.get("owner") is None:
                raise ConfigError(f"Run {run!r} ships with the app: everyone sees it already.")
            info = folders.update_app_info(path, shared=not info.get("shared"))
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(f"**{run}** is {'shared with everyone' if info['shared'] else 'no longer shared'}.")

    def set_limits(self, token, run_seconds, concurrent, max_params_m):
        """Check the three values (each against its range), keep them in the runs folder, apply them live."""
        if not self.gate.opens(token):
            return say(WRONG, ok=False)
        try:
            millions = number(max_params_m, "Largest model (millions of parameters)", CLASS_MIN_PARAMS / 1e6,
                              CLASS_MAX_PARAMS / 1e6)
            limits = self.m.limits.with_class_limits(run_seconds, concurrent, round(millions * 1e6))
            class_limits.save(self.m.root, limits)  # first: a restart keeps what the teacher was told is applied
            self.m.set_limits(limits)
        except Exception as err:  # noqa: BLE001
            return problem(err)
        per_run = human_seconds(limits.max_run_seconds) if limits.max_run_seconds else "no limit"
        return say(f"Applied: {per_run} per run, {limits.max_concurrent_jobs} at the same time, models up to "
                   f"{human_count(limits.max_params)} parameters. Queued runs use them at once.")


def _layout() -> dict:
    gr.Markdown("# Teacher's page\nEvery run on this server, the class's limits and the class challenge.")
    with gr.Row():
        c = dict(token=gr.Textbox(type="password", label="Teacher's token", scale=4, elem_id="teacher-token"))
        c["open"] = gr.Button("Open", variant="primary", scale=1, elem_id="teacher-open")
    c["msg"] = gr.Markdown(elem_id="teacher-msg")
    with gr.Column(visible=False, elem_id="teacher-panel") as c["panel"]:
        gr.Markdown("### Every run on this server")
        c["runs"] = gr.HTML(elem_id="teacher-runs")
        with gr.Row():
            c["run"] = gr.Dropdown([], label="Run", scale=3, allow_custom_value=True, elem_id="teacher-run")
            c["stop"] = gr.Button("■ Stop", variant="stop", scale=1, elem_id="teacher-stop")
            c["share"] = gr.Button("Share / unshare", scale=1, elem_id="teacher-share")
            c["delete"] = gr.Button("Delete", scale=1, elem_id="teacher-delete")
        c["action_msg"] = gr.Markdown(elem_id="teacher-action-msg")
        gr.Markdown("### Class limits: they apply at once, to queued and running runs; no restart")
        with gr.Row():
            # no precision: Gradio would round 1.5 runs to 2 without a word; the handler says what is whole
            c["seconds"] = gr.Number(label="Time per run, seconds (0 = none)", elem_id="limit-seconds")
            c["jobs"] = gr.Number(label="Runs at the same time", elem_id="limit-jobs")
            c["params"] = gr.Number(label="Largest model, millions of parameters", elem_id="limit-params")
            c["apply"] = gr.Button("Apply limits", scale=0, min_width=140, elem_id="limit-apply")
        c["limit_msg"] = gr.Markdown(elem_id="limit-msg")
        gr.Markdown("### Class challenge: lowest validation bits per character (shared runs)\nOnly evaluations "
                    "after training count (every run is also measured at step 0, untrained); a run without one yet "
                    "is listed last, without a rank.")
        c["within"] = gr.Slider(10, 1800, 120, step=10, label="Within this much training time (seconds)",
                                elem_id="board-seconds")
        c["board"] = gr.HTML(elem_id="teacher-board")
    return c


def build_teacher_page(demo: gr.Blocks, manager: JobManager, env=None) -> bool:
    """Add the teacher's page at /teacher when GPT_TEACHER_TOKEN is set; returns whether it did.

    Called once the main page is built (outside its `with gr.Blocks()`); a second call does nothing.
    """
    token = teacher_token(env)
    if token is None or any(p[0] == PATH for p in getattr(demo, "pages", [])):
        return False
    class_limits.restore(manager)  # the limits the teacher set before a restart
    with demo.route("Teacher", f"/{PATH}", show_in_navbar=False):
        _wire(TeacherHandlers(manager, Gate(token)), _layout())
    return True


def _wire(h: TeacherHandlers, c: dict) -> None:
    """Every event takes the typed token first: the handler checks it before anything else."""
    last, armed, timer, tok = gr.State(None), gr.State(""), gr.Timer(2.0), c["token"]
    refresh = dict(fn=h.refresh, inputs=[tok, c["within"], last], outputs=[c["runs"], c["run"], c["board"], last],
                   **QUIET)
    unlock_out = [c["msg"], c["panel"], c["seconds"], c["jobs"], c["params"]]
    gr.on([c["open"].click, tok.submit], h.unlock, tok, unlock_out, **PRIVATE).then(**refresh)
    timer.tick(**refresh)
    c["within"].release(**refresh)
    c["stop"].click(h.stop, [tok, c["run"]], c["action_msg"], **PRIVATE).then(**refresh)
    c["share"].click(h.share, [tok, c["run"]], c["action_msg"], **PRIVATE).then(**refresh)
    c["delete"].click(h.delete, [tok, c["run"], armed], [c["action_msg"], armed], **PRIVATE).then(**refresh)
    c["apply"].click(h.set_limits, [tok, c["seconds"], c["jobs"], c["params"]], c["limit_msg"], **PRIVATE).then(
        **refresh)
