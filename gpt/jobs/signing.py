"""Signed owner tokens: who is asking, as a value no client can forge.

A person (a browser, or an API client) is an opaque owner id: 32 hex digits.
The server hands out `token = id.signature` (HMAC-SHA256) and accepts an id
back only with its signature, so an owner id alone (what a leak would give)
is worth nothing. No response carries an owner id.

The key is 32 random bytes made once and kept in the runs folder
(`.identity_key`, mode 0600). It is read by this module alone and never
sent anywhere, nor is anything derived from it. GPT_APP_SECRET is not read:
until this version it was the key, and it was also the encryption key of the
page's `gr.BrowserState`, which Gradio sends to every browser in /config, so
anyone could sign a token for anyone. A server that had it set makes a new
key on its next start, and the tokens signed with the old one are refused.

Rotating the key: delete `.identity_key` and restart. Every token issued
before is refused from then on; each browser becomes a new person at its
next page load. Their private runs stay on disk, owned by ids no token names
any more: the teacher's page still lists them (share or delete them there).
People signed in with Hugging Face keep theirs (`account_owner` is derived
from the account, not from the key).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from pathlib import Path

from ..errors import GPTError

_ID = re.compile(r"^[0-9a-f]{32}$")
KEY_FILE = ".identity_key"
RETIRED_ENV = "GPT_APP_SECRET"
log = logging.getLogger("gpt.jobs")


class IdentityError(GPTError):
    """A token this server did not issue."""


def _load_key(root: Path) -> bytes:
    """The key in `root`/.identity_key, made (0600) on first use; a random key of this process if unwritable."""
    path = Path(root) / KEY_FILE
    for attempt in range(20):
        try:
            key = bytes.fromhex(path.read_text(encoding="utf-8").strip())
            if len(key) >= 32:
                return key  # never an empty or short key: b"" would let anyone sign
        except (OSError, ValueError):
            pass
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            time.sleep(0.05)  # another process is writing it: read theirs
            continue
        except OSError:
            return secrets.token_bytes(32)  # a read-only folder: ids last until the next restart
        key = secrets.token_bytes(32)
        with os.fdopen(fd, "w") as f:
            f.write(key.hex())
        return key
    log.warning("%s in the runs folder is damaged; tokens last until the next restart (delete it to fix).", KEY_FILE)
    return secrets.token_bytes(32)


def account_owner(provider: str, account_id: str) -> str:
    """The owner id of an account verified by `provider` (e.g. Hugging Face's `sub`): the same on every device.

    A hash, not a key's signature: rotating the signing key must not take a
    signed-in person's runs away. Knowing it grants nothing (only a token does),
    and two accounts (two `sub`s) never share one.
    """
    if not account_id:
        raise IdentityError("The signed-in account has no id; sign out and in again.")
    return hashlib.sha256(f"account\0{provider}\0{account_id}".encode("utf-8")).hexdigest()[:32]


class Signer:
    """Issues and checks owner tokens under the runs folder's key. Its repr shows nothing of the key."""

    def __init__(self, root: Path):
        if os.environ.get(RETIRED_ENV):
            log.warning("%s is no longer used: it was sent to every browser. Remove it; the signing key is kept "
                        "in the runs folder (%s).", RETIRED_ENV, KEY_FILE)
        self._key = _load_key(root)

    def __repr__(self) -> str:
        return "Signer(<key hidden>)"

    def _signature(self, owner: str) -> str:
        return hmac.new(self._key, owner.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def issue(self, owner: str | None = None) -> str:
        """A token for `owner` (a new random id when None). Call it with ids the server checked, never raw input."""
        owner = owner if owner and _ID.fullmatch(owner) else secrets.token_hex(16)
        return f"{owner}.{self._signature(owner)}"

    def owner(self, token) -> str:
        """The owner id a token stands for, or '' when it is not one this server signed."""
        if not isinstance(token, str) or len(token) != 65 or token.count(".") != 1:
            return ""
        owner, signature = token.split(".")
        if not _ID.fullmatch(owner) or not hmac.compare_digest(signature, self._signature(owner)):
            return ""
        return owner

    def require(self, token) -> str:
        """The owner id of a token a client gave, or IdentityError with a sentence."""
        owner = self.owner(token)
        if not owner:
            raise IdentityError("The token is not one this server issued. Leave it empty to act as a new "
                                "person, or pass the token that /start_run returned to you.")
        return owner
