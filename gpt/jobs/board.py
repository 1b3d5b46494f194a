"""The class challenge: who reached the lowest validation bits per character within a training time.

Bits per character is the one measure fair across tokenizers (a token is a
different amount of text in each), and a fixed training time is fair across
model sizes: a big model trained for as long as a small one must earn its
place. For every shared run a student made, the board takes the best
evaluation whose `elapsed_s` is within the time (a run still training counts
with the evaluations it has so far, so the board moves live); then each
student's best run, lowest first. Runs shipped with the app and runs nobody
shared are not on it.

Only evaluations after training count: every run is evaluated at step 0, before
its first step, where any model scores about log2(vocabulary) / characters per
token, and a board that ranked that point would rank the students by their
tokenizer ("4.474 bits/char at step 0, 0 s"). A student whose shared runs have
no such evaluation yet is listed below the ranked ones, without a rank.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import GPTError

if TYPE_CHECKING:
    from .manager import JobManager

SLACK_S = 1.0  # an evaluation right at the limit (a run stopped by its time limit evaluates once more)


@dataclass
class BoardRow:
    rank: int | None  # None: no evaluation after training within the time yet (listed last, unranked)
    student: str  # display name, never the owner id
    run: str
    val_bpc: float | None
    step: int | None
    elapsed_s: float | None
    tokenizer: str
    params: int
    state: str


def best_within(metrics: list[dict], within_s: float) -> dict | None:
    """The evaluation with the lowest val_bpc among those made after training began (step > 0) and within
    `within_s` seconds of training."""
    rows = [r for r in metrics if r.get("val_bpc") is not None and int(r.get("step", 0)) > 0
            and float(r.get("elapsed_s", 0.0)) <= within_s + SLACK_S]
    return min(rows, key=lambda r: (r["val_bpc"], r.get("elapsed_s", 0.0)), default=None)


def challenge_board(manager: "JobManager", within_s: float) -> list[BoardRow]:
    """Each student's best shared run within `within_s` seconds of training, best first; then, unranked, the
    students whose shared runs have no evaluation after training yet (each with their newest run)."""
    best: dict[str, tuple] = {}
    waiting: dict[str, object] = {}
    for status in manager.runs.list_runs(None):  # newest first
        if status.owner is None or not status.shared:
            continue
        with contextlib.suppress(GPTError, OSError):
            row = best_within(manager.runs.metrics(status.name), within_s)
            if row is None:
                waiting.setdefault(status.owner, status)
                continue
            key = (row["val_bpc"], float(row.get("elapsed_s", 0.0)))
            if status.owner not in best or key < best[status.owner][0]:
                best[status.owner] = (key, row, status)
    board = []
    for rank, (_, row, status) in enumerate(sorted(best.values(), key=lambda b: b[0]), start=1):
        label = manager.labels.display(status.owner, status.label)
        board.append(BoardRow(rank, label, status.name, float(row["val_bpc"]), int(row["step"]),
                              float(row.get("elapsed_s", 0.0)), status.tokenizer, status.params, status.state))
    for owner, status in waiting.items():
        if owner not in best:
            board.append(BoardRow(None, manager.labels.display(owner, status.label), status.name, None, None, None,
                                  status.tokenizer, status.params, status.state))
    return board
