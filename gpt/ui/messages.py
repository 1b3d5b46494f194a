"""Every refusal as one sentence: the one place an exception becomes words on the page or in the API.

A `GPTError` already carries a sentence that names the field and what to do.
Anything else is a bug or a fault of the machine (a full disk, a folder made
read-only): the person gets a plain sentence without a traceback or a server
path, and the server log gets one line with the details.
"""

from __future__ import annotations

import html
import logging

import gradio as gr

from ..errors import GPTError

log = logging.getLogger("gpt.ui")

UNEXPECTED = "Something went wrong on the server while doing that; it was logged. Try again, or reload the page."


def sentence_of(err: BaseException, unexpected: str = UNEXPECTED) -> str:
    """The words a person sees for `err` (plain text); `unexpected` names what failed when it is a bug."""
    if isinstance(err, GPTError):
        return str(err)
    if isinstance(err, OSError):
        log.warning("refused: %s: %s", type(err).__name__, err)
        return ("The server could not read or write its files (" + (err.strerror or "an I/O error").lower()
                + "); the previous checkpoint is unchanged. Tell whoever runs the server.")
    log.warning("unexpected %s: %s", type(err).__name__, err)
    return unexpected


def say(message: str, ok: bool = True) -> str:
    """A status line; a problem is red and also pops up as a toast."""
    if not ok:
        gr.Warning(message)
        return f'<span class="msg-error">{message}</span>'
    return message


def problem(err: BaseException, toast: bool = True, unexpected: str = UNEXPECTED) -> str:
    """`err` as a red status line (with a toast unless `toast` is False: a view that redraws often).

    A GPTError's `details` (URLs, paths, errno) sit folded under the sentence, for whoever runs the server."""
    text = sentence_of(err, unexpected)
    if toast:
        gr.Warning(text)
    line = f'<span class="msg-error">{html.escape(text, quote=False)}</span>'
    details = getattr(err, "details", None) if isinstance(err, GPTError) else None
    if details:
        line += (f'<details class="msg-details"><summary>Details for whoever runs the server</summary>'
                 f"{html.escape(details, quote=False)}</details>")
    return line


def refuse(err: BaseException):
    """Raise `err` to an API client as a gr.Error carrying its sentence; the log gets one line, no traceback."""
    text = sentence_of(err)
    log.info("refused: %s", text[:300])
    raise gr.Error(text, print_exception=False) from None
