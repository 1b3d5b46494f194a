"""Uploaded files do not pile up: Gradio keeps every upload in its cache folder until told otherwise.

A person's upload is read once (a corpus, a checkpoint) and copied where it
belongs; the cached original is then useless. `sweep` deletes cached files
older than an hour and, past a total size, the oldest first; `keep_swept`
runs it every few seconds in a daemon thread for the life of the server.

So a page can hold the name of an upload the server no longer has (a text
uploaded before lunch, Start pressed after it; a restart). `still_cached`
says so as a sentence that asks for the file again, where reading it would
have named the cache's path on the server or blamed the server's disk.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

from ..corpus import Corpus, load
from ..errors import DataError

MAX_AGE_S = 3600


def upload_dir() -> Path:
    """Where Gradio caches uploads (GRADIO_TEMP_DIR, else the system temp folder's 'gradio')."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def still_cached(path: str | os.PathLike) -> Path:
    """The cached upload at `path`, or a DataError naming the file (never the folder) when it is gone."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"The file you uploaded ({p.name[:60]}) is no longer on the server: uploads are kept for "
                        f"an hour at most (less when many arrive at once). Upload it again.")
    return p


def page_corpus(choice: str, upload: str | None, pasted: str | None, max_bytes: int) -> Corpus:
    """The corpus a page's picker names (`gpt.corpus.load`), its upload first checked with `still_cached`."""
    if choice == "upload" and upload:
        still_cached(upload)
    return load(choice, upload, pasted, max_bytes=max_bytes)


def sweep(folder: Path, max_total_bytes: int, max_age_s: float = MAX_AGE_S, now: float | None = None) -> int:
    """Delete stale or excess cached files under `folder`; returns how many were deleted."""
    now = time.time() if now is None else now
    files = []
    for path in folder.rglob("*") if folder.is_dir() else []:
        try:
            if path.is_file() and not path.is_symlink():
                st = path.stat()
                files.append((st.st_mtime, st.st_size, path))
        except OSError:
            continue
    files.sort()  # oldest first
    total, deleted = sum(size for _, size, _ in files), 0
    for mtime, size, path in files:
        if now - mtime <= max_age_s and total <= max_total_bytes:
            continue
        try:
            path.unlink()
            total -= size
            deleted += 1
        except OSError:
            pass
    return deleted


def keep_swept(max_total_bytes: int, every_s: float = 5.0) -> threading.Thread:
    def loop():
        while True:
            sweep(upload_dir(), max_total_bytes)
            time.sleep(every_s)

    thread = threading.Thread(target=loop, name="upload-sweeper", daemon=True)
    thread.start()
    return thread
