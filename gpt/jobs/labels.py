"""Display names: what a student is called on the teacher's page and the class board.

An owner id (a browser's or an API session's) never leaves the server; a
person may give a display name instead. It is stored with the owner's runs,
as `label` in each run's app.json, and in `.labels.json` under the runs root
(owner -> name), so runs started after the name was given, and a restart,
keep it. Someone without a name is "unnamed 1", "unnamed 2", ... in the order
the server first met them: never anything derived from the id.

A name is one line of at most MAX_LABEL printable characters; the page that
shows it escapes it (it is text, never HTML).
"""

from __future__ import annotations

import json
import threading
import unicodedata
from pathlib import Path

from .. import checkpoint as ckpt
from ..errors import ConfigError
from . import folder as folders

MAX_LABEL = 40
LABELS_FILE = ".labels.json"


def check_label(text) -> str:
    """The name as stored (spaces trimmed and collapsed), or ConfigError with a sentence naming the field."""
    name = " ".join(str(text or "").split())
    if not name:
        raise ConfigError("Your name is empty: type the name the class board should show.")
    if len(name) > MAX_LABEL:
        raise ConfigError(f"Your name is {len(name)} characters long; keep it to {MAX_LABEL}.")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ConfigError("Your name has control characters in it; use letters, digits and punctuation.")
    return name


class Labels:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        saved = folders.read_json(self.root / LABELS_FILE)
        self._names: dict[str, str] = {k: v for k, v in saved.items() if isinstance(k, str) and isinstance(v, str)}
        self._unnamed: dict[str, int] = {}

    def set(self, owner: str, text) -> str:
        """Give `owner` a display name; every run of theirs carries it from now on. Returns it as stored."""
        if not owner:
            raise ConfigError("The page has not finished loading; try again in a second.")
        name = check_label(text)
        with self._lock:
            self._names[owner] = name
            ckpt.atomic_write_text(self.root / LABELS_FILE, json.dumps(self._names, indent=1))
            for path in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if folders.read_json(path / folders.APP_FILE).get("owner") == owner:
                    folders.update_app_info(path, label=name)
        return name

    def get(self, owner: str | None) -> str:
        """The name `owner` gave, or '' if none."""
        return self._names.get(owner or "", "")

    def display(self, owner: str | None, stored: str = "") -> str:
        """What the teacher sees for `owner`: their name, the run's stored label, or 'unnamed N'."""
        if owner is None:
            return "(ships with the app)"
        name = self._names.get(owner) or stored
        if name:
            return name
        with self._lock:
            number = self._unnamed.setdefault(owner, len(self._unnamed) + 1)
        return f"unnamed {number}"
