"""The page's 'who is asking': a signed token kept in the browser, handed to events as the owner id.

The browser keeps the token (`gr.BrowserState`, in its localStorage, so a
refresh or a second tab is the same person). Every event that takes it as
input receives the owner id it stands for, checked against the server's
signature, or '' for a value the server did not sign: a client that calls
the page's events by hand with someone else's id gets nothing of theirs.
"""

from __future__ import annotations

import gradio as gr

from ..jobs.identity import Signer

from gradio.events import Dependency

class Identity(gr.BrowserState):
    def __init__(self, signer: Signer, secret: str):
        super().__init__("", storage_key="gpt-browser-id", secret=secret)
        self.signer = signer

    def preprocess(self, payload):
        return self.signer.owner(super().preprocess(payload))

    def sign_in(self, owner: str) -> str:
        """The load event: the token of the person this browser already is, or of a new one."""
        return self.signer.issue(owner or None)

    def api_info(self) -> dict:
        return {"type": "string"}

    def get_block_name(self) -> str:
        return "browserstate"
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component