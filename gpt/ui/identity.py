"""The page's 'who is asking': a signed token kept in the browser, and Hugging Face sign-in on a Space.

The browser keeps the token (`gr.BrowserState`, in its localStorage, so a
refresh or a second tab is the same person). Every event that takes it as
input receives the owner id it stands for, checked against the server's
signature (`gpt.jobs.signing`), or '' for a value the server did not sign:
a client that calls the page's events by hand with someone else's id gets
nothing of theirs.

The BrowserState's own `secret` only encrypts the value in localStorage, and
Gradio sends it to every browser in /config: it protects nothing, so it is
a random value of its own (`browser_secret`), never the signing key nor
anything derived from it. What a thief of a browser's storage gets is that
person's token, which is what the token is for.

Sign in with Hugging Face (only on a Space whose README sets `hf_oauth: true`;
locally there is no button and nothing changes): the page's load event gets
the visitor's profile from Gradio, which reads it from the session cookie
that its OAuth callback wrote and signed (`gradio.oauth`). The account's
owner id is derived from that verified profile's `sub` on the server, never
from anything the client sends, so runs follow the student to any device.
While signed in the browser holds `"<account token> <own token>"`; signing
out (a page load without a profile) drops the account's, and the browser is
again the person it was before signing in.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import gradio as gr

from ..jobs import JobManager
from ..jobs.labels import MAX_LABEL
from ..jobs.signing import Signer, account_owner
from .page import PRIVATE

MAX_STORED = 200  # two tokens of 65 characters and a space: anything longer is not ours


def _tokens(stored) -> list[str]:
    """The tokens in a stored value: '<token>', or '<account token> <token>' while signed in."""
    return stored.split()[:2] if isinstance(stored, str) and len(stored) <= MAX_STORED else []


class Identity(gr.BrowserState):
    def __init__(self, signer: Signer, secret: str):
        super().__init__("", storage_key="gpt-browser-id", secret=secret)
        self._signer = signer  # private: gr.Block.get_config sends every attribute named like an __init__ parameter

    def preprocess(self, payload) -> str:
        tokens = _tokens(super().preprocess(payload))
        return self._signer.owner(tokens[0]) if tokens else ""

    def api_info(self) -> dict:
        return {"type": "string"}

    def get_block_name(self) -> str:
        return "browserstate"  # the browser side is gr.BrowserState's: only the server side checks the token


def hf_sign_in_enabled(env=None) -> bool:
    """A Space with OAuth: Gradio's real login routes exist only there (elsewhere it would mock a login)."""
    env = os.environ if env is None else env
    return (env.get("SYSTEM") == "spaces" and bool(env.get("SPACE_ID"))
            and bool(env.get("OAUTH_CLIENT_ID")) and bool(env.get("OAUTH_CLIENT_SECRET")))


class SignIn:
    """The page's load event: the token of the person this browser is, and of its Hugging Face account if signed in."""

    def __init__(self, manager: JobManager, accounts: bool):
        self.m, self.accounts = manager, accounts

    def account(self, profile) -> str:
        """The owner id of the verified profile Gradio injected; '' when not signed in (or sign-in is off)."""
        if not self.accounts or not profile:
            return ""
        return account_owner("huggingface", str(profile.get("sub") or ""))

    def load(self, stored, profile: gr.OAuthProfile | None = None) -> str:
        tokens = _tokens(stored)
        person = self.m.identity.owner(tokens[-1]) if tokens else ""
        token = self.m.identity.issue(person or None)
        account = self.account(profile)
        if not account:
            return token
        if not self.m.labels.get(account):  # the teacher's page calls a signed-in student by their account
            username = str(profile.get("preferred_username") or profile.get("name") or "")[:MAX_LABEL]
            try:
                self.m.labels.set(account, username)
            except Exception:  # noqa: BLE001 - a name the board cannot show: the student may type one
                pass
        return f"{self.m.identity.issue(account)} {token}"


def sign_in_button(env=None) -> gr.LoginButton | None:
    """'Sign in with Hugging Face' where the Space has OAuth (call it where the button belongs); None elsewhere."""
    return gr.LoginButton(elem_id="hf-sign-in", size="md", scale=1) if hf_sign_in_enabled(env) else None


def sign_in_event(page, env=None) -> dict:
    """The page's load event (kwargs for `demo.load`): the browser's token, and its account's where signed in."""
    h = SignIn(page.manager, hf_sign_in_enabled(env))
    return dict(fn=h.load, inputs=page.who, outputs=page.who, preprocess=False, **PRIVATE)


def browser_secret(root) -> str:
    """The BrowserState's encryption key: random, kept in the runs folder so a restart can still read it back.

    It is public (Gradio sends it to every browser) and signs nothing.
    """
    path = Path(root) / ".browser_secret"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="utf-8").strip()
        if secret:
            return secret
        path.unlink(missing_ok=True)
        return browser_secret(root)
    except OSError:
        return secrets.token_hex(16)  # a read-only folder: ids last until the next restart
    secret = secrets.token_hex(16)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return secret
