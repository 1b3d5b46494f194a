"""The Checkpoints tab: every run you may see, one file each way (download, upload), delete, resume.

Delete asks first: the first click names the run and says a deleted run
cannot be recovered; only a second click on the same run deletes it.

The files themselves are `gpt.ui.library`'s business (safetensors only, every
upload checked before it is kept); this module is the tab and its events.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ..errors import GPTError
from ..jobs import JobManager
from . import library
from .exchange import build_exchange_panel
from .messages import problem, say
from .page import PRIVATE, Page
from .pickers import run_label

DELETE_LABEL = "Delete"


class CheckpointHandlers:
    def __init__(self, manager: JobManager):
        self.m = manager

    def runs_table(self, owner, selected=None):
        runs = self.m.runs.list_runs(owner)
        table = pd.DataFrame(library.table_rows(runs), columns=library.TABLE_HEADERS)
        names = [r.name for r in runs]
        value = selected if selected in names else (names[0] if names else None)
        return table, gr.update(choices=[(run_label(r), r.name) for r in runs], value=value)

    def prepare_download(self, owner, run):
        if not run:
            return gr.update(value=None, interactive=False)
        try:
            return gr.update(value=library.download_file(self.m, owner, run), interactive=True)
        except GPTError:
            return gr.update(value=None, interactive=False)

    def delete(self, owner, run, armed=None):
        """(message, table, dropdown, armed, button): the first click arms, the second on the same run deletes."""
        disarmed = (None, gr.update(value=DELETE_LABEL))
        if not run:
            return (say("Choose a run first.", ok=False), *self.runs_table(owner), *disarmed)
        if armed != run:
            return (say(f"Delete **{run}** for good? Its weights and curves cannot be recovered afterwards. "
                        f"Click **Yes, delete {run}** to confirm, or choose another run to keep it."),
                    gr.skip(), gr.skip(), run, gr.update(value=f"Yes, delete {run}"))
        try:
            self.m.delete(owner, run)
            msg = say(f"Deleted **{run}**.")
        except Exception as err:  # noqa: BLE001
            msg = problem(err)
        return (msg, *self.runs_table(owner), *disarmed)

    @staticmethod
    def disarm():
        """Another run chosen: a Delete click no longer confirms the old one."""
        return None, gr.update(value=DELETE_LABEL)

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

    def resume(self, owner, run, more_iters=None):
        try:
            if not run:
                return say("Choose a run first.", ok=False)
            job = self.m.resume(owner, run, int(more_iters) if more_iters else None)
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(f"Resuming **{job.name}** from its last checkpoint.")


def build_checkpoints_tab(page: Page) -> gr.Tab:
    h, who = CheckpointHandlers(page.manager), page.who
    with gr.Tab("4 · Checkpoints", id="checkpoints") as tab:
        table = gr.Dataframe(headers=library.TABLE_HEADERS, interactive=False, elem_id="runs-table")
        with gr.Row():
            run = gr.Dropdown(label="Run", scale=5, elem_id="ckpt-run")
            refresh = gr.Button("↻", scale=0, min_width=40, elem_id="ckpt-refresh")
        with gr.Row():
            download = gr.DownloadButton("⬇ Download .safetensors", interactive=False, elem_id="ckpt-download")
            resume = gr.Button("↻ Resume training", elem_id="ckpt-resume")
            delete = gr.Button(DELETE_LABEL, variant="stop", elem_id="ckpt-delete")
        upload = gr.File(label="Upload a checkpoint (.safetensors only; pickles are refused)",
                         file_types=[".safetensors"], type="filepath", elem_id="ckpt-upload")
        msg = gr.Markdown(elem_id="ckpt-msg")
        armed = gr.State(None)  # the run a first Delete click named
        panel = build_exchange_panel(page, run)  # the same run in transformers' and nanoGPT's formats, and back

    show_table = dict(fn=h.runs_table, inputs=[who, run], outputs=[table, run], **PRIVATE)
    tab.select(**show_table)
    refresh.click(**show_table)
    for imported in panel.imported:  # an imported model is a run: list it at once
        imported.then(**show_table)
    run.change(h.prepare_download, [who, run], download, **PRIVATE)
    run.input(h.disarm, None, [armed, delete], **PRIVATE)
    delete.click(h.delete, [who, run, armed], [msg, table, run, armed, delete], **PRIVATE)
    more_iters = page.train.sliders[7] if page.train else gr.State(None)
    resume.click(h.resume, [who, run, more_iters], msg, **PRIVATE)
    upload.upload(h.upload, [who, upload], [msg, table, run], **PRIVATE)
    return tab
