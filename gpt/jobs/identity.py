"""Who is asking: an owner id the server signs, so no client can forge or learn another's.

A person (a browser, or an API client) is an opaque random id. The server
hands out `token = id.signature` (HMAC-SHA256 under a key that never leaves
the server) and accepts an id back only with its signature. Tokens are never
shown to anyone but their holder, and no response carries an owner id, so a
stranger who knows everything the server sent them still cannot act as
someone else.

The key is GPT_APP_SECRET when set (a Space: set it as a secret), else a
random key kept in the runs folder (0600), so people keep their runs across
restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from ..errors import GPTError

_ID = re.compile(r"^[0-9a-f]{32}$")
KEY_FILE = ".identity_key"


class IdentityError(GPTError):
    """A token this server did not issue."""


def _load_key(root: Path) -> bytes:
    if os.environ.get("GPT_APP_SECRET"):
        return os.environ["GPT_APP_SECRET"].encode("utf-8")
    path = Path(root) / KEY_FILE
    for _ in range(2):
        try:
            return bytes.fromhex(path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            pass
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue  # another process wrote it first: read theirs
        except OSError:
            return secrets.token_bytes(32)  # a read-only folder: ids last until the next restart
        key = secrets.token_bytes(32)
        with os.fdopen(fd, "w") as f:
            f.write(key.hex())
        return key
    return secrets.token_bytes(32)  # pragma: no cover - an unreadable key file


class Signer:
    def __init__(self, root: Path):
        self._key = _load_key(root)

    def _signature(self, owner: str) -> str:
        return hmac.new(self._key, owner.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def issue(self, owner: str | None = None) -> str:
        """A token for `owner` (a new random id when None)."""
        owner = owner if owner and _ID.fullmatch(owner) else secrets.token_hex(16)
        return f"{owner}.{self._signature(owner)}"

    def owner(self, token) -> str:
        """The owner id a token stands for, or '' when it is not one this server signed."""
        if not isinstance(token, str) or token.count(".") != 1:
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
