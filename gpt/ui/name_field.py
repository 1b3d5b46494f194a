"""The name a student goes by on the teacher's page and the class board: one small field in the page header.

The run service keeps it (`gpt.jobs.labels`: with the owner's runs and
across restarts); this field only asks. Enter or leaving the box saves it;
an empty or too long name gets a sentence. It is shown as text wherever it
appears, never as HTML.
"""

from __future__ import annotations

import html

import gradio as gr

from ..jobs import JobManager
from .identity import sign_in_button
from .messages import problem, say
from .page import PRIVATE

MARKDOWN_SPECIALS = "\\`*_[]#|~"


class NameHandlers:
    def __init__(self, manager: JobManager):
        self.m = manager

    def saved(self, owner) -> str:
        """The name this browser gave before (the page's load fills the box with it)."""
        return self.m.labels.get(owner)

    def save(self, owner, text, quiet_if_empty: bool = False):
        if quiet_if_empty and not (text or "").strip():
            return ""  # leaving an empty box is not a request
        try:
            name = self.m.labels.set(owner, text)
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(f"Saved: the class board calls you {as_text(name)}.")

    def leave(self, owner, text):
        return self.save(owner, text, quiet_if_empty=True)


def as_text(name: str) -> str:
    """A name inside a Markdown status line, as text: no HTML, no emphasis, no link."""
    out = html.escape(name, quote=False)
    return "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in out)


def build_name_field(page) -> gr.Textbox:
    """The 'your name' box; call it inside the page's gr.Blocks, before its load event is wired."""
    h = NameHandlers(page.manager)
    with gr.Column(elem_id="display-name-row"):
        with gr.Row():
            box = gr.Textbox(label="Your name on the class board (optional)", max_lines=1, scale=2,
                             placeholder="Type it and press Enter", elem_id="display-name")
            sign_in_button()  # "Sign in with Hugging Face", only on a Space that has it
        msg = gr.Markdown(elem_id="display-name-msg")
    box.submit(h.save, [page.who, box], msg, **PRIVATE)
    box.blur(h.leave, [page.who, box], msg, **PRIVATE)
    page.on_load.append(dict(fn=h.saved, inputs=page.who, outputs=box, **PRIVATE))
    return box
