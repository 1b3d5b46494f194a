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
        return "browserstate"  # the browser side is gr.BrowserState's: only the server side checks the token


def client_address(request: gr.Request | None) -> str | None:
    """The asker's network address: the first X-Forwarded-For hop behind a proxy (a Space), else the peer's."""
    if request is None:
        return None
    forwarded = (request.headers or {}).get("x-forwarded-for", "")
    if forwarded:
        return forwarded.split(",")[0].strip()[:64]
    return getattr(request.client, "host", None)
