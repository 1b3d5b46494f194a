"""The class's live limits, kept in the runs folder so that a restart keeps what the teacher set.

The teacher's page checks what was typed (`Limits.with_class_limits`),
`save`s it here (one JSON file, written atomically) and applies it with
`JobManager.set_limits`, the one way limits change live. When the app starts
with a teacher's page, `restore` reads the file back through the same checks
and the same `set_limits`. No file changes nothing; a damaged or out-of-range
one is logged and ignored, and the environment's limits hold.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from .. import checkpoint as ckpt
from ..errors import GPTError
from ..limits import Limits
from . import folder as folders

if TYPE_CHECKING:
    from .manager import JobManager

FILE = ".class_limits.json"
FIELDS = ("max_run_seconds", "max_concurrent_jobs", "max_params")
log = logging.getLogger("gpt.jobs")


def save(root: Path, limits: Limits) -> None:
    ckpt.atomic_write_text(Path(root) / FILE, json.dumps({f: getattr(limits, f) for f in FIELDS}, indent=1))


def restore(manager: "JobManager") -> bool:
    """Apply the limits the teacher last set, if any; whether it did."""
    path = Path(manager.root) / FILE
    saved = folders.read_json(path)
    if not saved:
        return False
    try:
        limits = manager.limits.with_class_limits(*(saved.get(f) for f in FIELDS))
    except GPTError as err:
        log.warning("%s is not used: %s", FILE, err)
        return False
    manager.set_limits(limits)
    return True
