"""The run dropdowns every tab has, and the rule for which run they show first.

Each picker lists only runs the asker may see (`RunBook.list_runs`), and
keeps the current choice while it is still there; else it shows the asker's
own current run, else the model shipped with the app, else the first run.
"""

from __future__ import annotations

from typing import Callable

import gradio as gr

from ..jobs import JobManager, RunStatus

SHIPPED = "shakespeare-char"  # the pretrained model in checkpoints/, so Generate works at once


def sampleable(runs: list[RunStatus]) -> list[RunStatus]:
    """Runs that can be sampled: a checkpoint on disk, or training right now."""
    return [r for r in runs if r.has_weights or r.state == "running"]


def with_metrics(runs: list[RunStatus]) -> list[RunStatus]:
    """Runs that have or will soon have a curve."""
    return [r for r in runs if r.has_weights or r.active]


def run_label(r: RunStatus) -> str:
    """A dropdown label that stays true while the dropdown is open: the step only once the run has ended
    (a live step count would read 'training, step 1,339' long after; the progress line is live instead)."""
    bits = [r.name, r.whose, r.corpus, r.tokenizer]
    if r.step and not r.active:
        bits.append(f"step {r.step:,}")
    return " · ".join(bits)


def short_label(r: RunStatus) -> str:
    """A label that does not go stale while the run trains (for pickers that stay open)."""
    return " · ".join([r.name, r.whose, r.corpus, r.tokenizer])


def first_choice(manager: JobManager, owner: str, runs: list[RunStatus]) -> str | None:
    """The run a picker shows when nothing listed is chosen: the asker's current run, the shipped one, the first."""
    names = [r.name for r in runs]
    mine = manager.runs.current_run(owner) if owner else None
    return next((n for n in (mine, SHIPPED) if n in names), names[0] if names else None)


def pick_run(manager: JobManager, owner: str, runs: list[RunStatus], current: str | None,
             label: Callable[[RunStatus], str] = run_label) -> dict:
    """A dropdown update listing `runs`, keeping `current` if listed."""
    if current not in [r.name for r in runs]:
        current = first_choice(manager, owner, runs)
    return gr.update(choices=[(label(r), r.name) for r in runs], value=current)


def pick_runs(manager: JobManager, owner: str, runs: list[RunStatus], selected: list[str] | None) -> dict:
    """A multi-select update: the still-listed `selected`, else the asker's current run and the shipped one."""
    names = [r.name for r in runs]
    keep = [s for s in (selected or []) if s in names]
    if not keep:
        current = manager.runs.current_run(owner) if owner else None
        keep = [n for n in (current, SHIPPED) if n in names] or names[:2]
    return gr.update(choices=[(short_label(r), r.name) for r in runs], value=keep)
