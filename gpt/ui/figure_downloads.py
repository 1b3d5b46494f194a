"""Figures and tables as files a person can download, and the buttons that offer them.

A figure is rendered to PNG once: the same file is shown in the gr.Plot and
offered by its download button (the Next token view's bars are drawn by the
browser instead, and its PNG is rendered after them: `export_file`).
Exported files live in fresh folders under the system's temp directory
(their names stay readable); the oldest are pruned so a long class does not
fill the disk.
"""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

import gradio as gr
from gradio.components.plot import PlotData

from .. import plots as figures

EXPORT_DIR = Path(tempfile.gettempdir()) / "gpt-figures"
KEEP_EXPORTS = 200
NO_FILE = {"value": None, "interactive": False, "__type__": "update"}  # a download button with nothing to give
_DRAWING = threading.Lock()  # gpt.plots styles a figure inside matplotlib.rc_context, which sets global rcParams


def new_export_folder() -> Path:
    """A fresh folder for one exported file, oldest folders pruned."""
    EXPORT_DIR.mkdir(parents=True, exist_ok=True)
    old = []
    for entry in EXPORT_DIR.iterdir():
        try:
            old.append((entry.stat().st_mtime, entry))
        except FileNotFoundError:  # another request (or app) pruned it between the listing and now
            continue
    old.sort()
    for _, stale in old[:max(0, len(old) - KEEP_EXPORTS)]:
        shutil.rmtree(stale, ignore_errors=True)
    folder = EXPORT_DIR / uuid.uuid4().hex[:12]
    folder.mkdir()
    return folder


def stem(name: str) -> str:
    """A run or figure name as a safe file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "figure"


def export(name: str, make, *args) -> tuple[PlotData, str]:
    """Draw `make(*args)` and render it once with `gpt.plots.save_figure`: (what gr.Plot shows, the PNG file)."""
    path = export_file(name, make, *args)
    shown = "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return PlotData(type="matplotlib", plot=shown), path


def export_file(name: str, make, *args) -> str:
    """Draw `make(*args)` and write it as a PNG file for a download button: its path."""
    with _DRAWING:  # one figure at a time, so two requests never restore each other's style half-way
        fig = make(*args)
    return str(figures.save_figure(fig, new_export_folder() / f"{stem(name)}.png"))


def download(path: str | None) -> dict:
    """A download button offering `path`, or greyed out when there is nothing to give."""
    return gr.update(value=path, interactive=True) if path else dict(NO_FILE)


def png_button(elem_id: str, label: str = "⬇ PNG") -> gr.DownloadButton:
    return gr.DownloadButton(label, interactive=False, size="md", scale=0, min_width=40 + 11 * len(label),
                             elem_id=elem_id)
