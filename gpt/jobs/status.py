"""A run as the page, the tables and the API see it: one typed record.

`RunStatus` is what `RunBook.status` and `RunBook.list_runs` return. Code
reads its fields; `to_json()` is the public shape the `gradio_client` API
has always returned (the same keys), minus the owner's id, which no client
is ever shown: `whose` says "yours", "shared" or "shipped" instead.

`describe(path)` reads a run folder into one; the run service then lays
what only this process knows (the live job's state, step, queue position)
over it. A folder whose status says 'running' but whose writer is gone (the
app was killed) reads as 'interrupted'.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import checkpoint as ckpt
from ..errors import GPTError
from .folder import ACTIVE, APP_FILE, read_json, written_elsewhere


@dataclass
class RunStatus:
    name: str
    owner: str | None  # the owner id: never sent to a client (see to_json)
    mine: bool
    shared: bool  # visible to everyone: marked shared, or made by the CLI / shipped
    corpus: str
    tokenizer: str
    model_type: str
    params: int
    processes: int  # > 1: trained by torchrun on several processes
    step: int
    max_iters: int
    best_val_loss: float | None
    state: str
    message: str
    has_weights: bool
    created: float
    updated: float
    queue_position: int | None = None
    starts_in_s: float | None = None  # queued: estimated seconds until it starts (gpt.jobs.queue_eta); eta_s too
    # progress: filled by RunBook.status for one run
    tokens_per_sec: float = 0.0
    eta_s: float | None = None
    elapsed_s: float = 0.0
    fraction: float = 0.0
    loss: float | None = None  # the latest batch's, while it trains
    train_loss: float | None = None
    val_loss: float | None = None
    val_bpc: float | None = None
    latest_sample: str = ""
    metrics: list = field(default_factory=list)  # every evaluation row, without its sample text
    n_params: int = 0
    label: str = ""  # the owner's display name as app.json keeps it (the teacher's page: gpt.jobs.labels)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def whose(self) -> str:
        if self.mine:
            return "yours, shared" if self.shared else "yours"
        return "shipped" if self.owner is None else "shared"

    def to_json(self) -> dict:
        out = asdict(self)
        del out["owner"], out["label"]  # the teacher's page shows names; the API keeps its shape
        out["whose"] = self.whose
        return out


def describe(path: Path, owner: str | None = None) -> RunStatus:
    """What a run folder holds (the live job, if any, is laid over it by the run service)."""
    path = Path(path)
    app = read_json(path / APP_FILE)
    meta = read_json(path / ckpt.CONFIG)
    has_weights = (path / ckpt.WEIGHTS).exists()
    if not meta and has_weights:
        with contextlib.suppress(GPTError, OSError, ValueError):
            meta = ckpt.read_meta(path / ckpt.WEIGHTS)
    status = ckpt.read_status(path)
    state = status.get("state", "unknown")
    if state in ACTIVE:
        state = "running elsewhere" if written_elsewhere(path) else "interrupted"
    elif state == "unknown" and has_weights:
        state = "finished"
    model = meta.get("model") or {}
    tok = (meta.get("tokenizer") or {}).get("type") or (app.get("request") or {}).get("tokenizer", "?")
    return RunStatus(
        name=path.name,
        owner=app.get("owner"),
        mine=owner is not None and app.get("owner") == owner,
        shared=app.get("owner") is None or bool(app.get("shared")),
        corpus=meta.get("corpus") or app.get("corpus") or "?",
        tokenizer=f"{tok} ({model['vocab_size']:,})" if model.get("vocab_size") else tok,
        model_type=model.get("model_type", "?"),
        params=int(meta.get("n_params") or 0),
        processes=int(meta.get("world_size") or 1),
        step=int(meta.get("step", 0)),
        max_iters=int((meta.get("train") or {}).get("max_iters", 0)),
        best_val_loss=meta.get("best_val_loss"),
        state=state,
        message=status.get("message", ""),
        has_weights=has_weights,
        created=app.get("created", 0),
        updated=(path / ckpt.WEIGHTS).stat().st_mtime if has_weights else app.get("created", 0),
        label=str(app.get("label") or ""),
    )
