"""A run as the page, the tables and the API see it: one typed record.

`RunStatus` is what `RunBook.status` and `RunBook.list_runs` return. Code
reads its fields; `to_json()` is the public shape the `gradio_client` API
has always returned (the same keys), minus the owner's id, which no client
is ever shown: `whose` says "yours", "shared" or "shipped" instead.

`describe(path)` reads a run folder into one; the run service then lays
what only this process knows (the live job's state, step, queue position)
over it. A folder whose status says 'running' but whose writer is gone (the
app was killed) reads as 'interrupted'.

Two fields a person reads first: `limit`, what will end the run (its steps
or its seconds, whichever comes first), and, once it ended, `end_reason`
("reached its 2 min 10 s time limit at step 1,527"). `history` is the whole
per-step curve (downsampled), continuous across stops and resumes.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import checkpoint as ckpt
from ..errors import GPTError
from ..estimate import human_seconds
from .request import RunRequest
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
    val_ppl: float | None = None  # perplexity: as unsure as a uniform choice among this many tokens
    latest_sample: str = ""
    metrics: list = field(default_factory=list)  # every evaluation row, without its sample text
    n_params: int = 0
    max_seconds: float | None = None  # the time limit (None: none)
    limit_note: str = ""  # while it trains: when the class's time per run ends it, which limit and since when
    history: list = field(default_factory=list)  # [step, batch loss] of every step (downsampled when long)
    end_reason: str | None = None  # once ended: why, as a sentence
    request: dict = field(default_factory=dict)  # what the Train tab asked for (restores the form)
    label: str = ""  # the owner's display name as app.json keeps it (the teacher's page: gpt.jobs.labels)
    kind: str = "pretrain"  # 'pretrain' or 'finetune' (a chat model, made from `parent`)
    parent: str | None = None  # the run a fine-tune started from
    task: str | None = None  # what a fine-tune trains on: a built-in task, or its conversation file's name
    chat: bool = False  # its tokenizer has the chat tokens: it can answer in the Chat tab
    grown: str = ""  # what making it a chat model added ("Added 14 characters the conversations use: ...")

    @property
    def limit(self) -> str:
        """What ends the run: 'stops at 2,000 steps or 2 min 10 s, whichever comes first'."""
        steps = f"{self.max_iters:,} steps"
        if not self.max_seconds:
            return f"stops after {steps}"
        seconds = human_seconds(self.max_seconds) + (f" ({self.limit_note})" if self.limit_note else "")
        return f"stops after {steps} or {seconds}, whichever comes first"

    @property
    def time_bound(self) -> bool:
        """True when the time limit, not the step count, is the nearer end (what the bar follows)."""
        if not self.max_seconds:
            return False
        steps_done = self.step / self.max_iters if self.max_iters else 0.0
        return self.elapsed_s / self.max_seconds >= steps_done

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
        out["limit"] = self.limit
        return out


def end_reason(state: str, message: str, status: dict, meta: dict) -> str | None:
    """Why an ended run ended, as a sentence; None while it is queued or trains."""
    if state not in ("finished", "stopped", "failed", "interrupted"):
        return None
    if status.get("end_reason") and status.get("state") == state:
        return status["end_reason"]
    step = int(meta.get("step", 0))
    if state == "failed":
        return f"failed: {message}" if message else "failed"
    if state == "interrupted":
        return f"interrupted: the app stopped at step {step:,}"
    if state == "stopped":
        return message.rstrip(".").lower() if message.startswith("Cancelled") else f"stopped at step {step:,}"
    train = meta.get("train") or {}
    if train.get("max_iters") and step >= int(train["max_iters"]):
        return f"reached its {int(train['max_iters']):,} steps"
    if train.get("max_seconds"):
        return f"reached its {human_seconds(train['max_seconds'])} time limit at step {step:,}"
    return f"finished at step {step:,}"


def _limits(meta: dict, request: dict) -> tuple[int, float | None]:
    """(max_iters, max_seconds): the checkpoint's, else what the request will train with."""
    train = meta.get("train") or {}
    if train:
        return int(train.get("max_iters", 0)), train.get("max_seconds") or None
    try:
        _, cfg = RunRequest.from_dict(request).configs(65)
    except (GPTError, TypeError, KeyError):
        return 0, None
    return cfg.max_iters, cfg.max_seconds or None


def describe(path: Path, owner: str | None = None) -> RunStatus:
    """What a run folder holds (the live job, if any, is laid over it by the run service)."""
    path = Path(path)
    app = read_json(path / APP_FILE)
    has_weights = (path / ckpt.WEIGHTS).exists()
    meta = {}
    if has_weights:  # the weights carry their own config: the commit point, even if config.json lags behind
        with contextlib.suppress(GPTError, OSError, ValueError):
            meta = ckpt.read_meta(path / ckpt.WEIGHTS)
    meta = meta or read_json(path / ckpt.CONFIG)
    status = ckpt.read_status(path)
    state = status.get("state", "unknown")
    if state in ACTIVE:
        state = "running elsewhere" if written_elsewhere(path) else "interrupted"
    elif state == "unknown" and has_weights:
        state = "finished"
    model = meta.get("model") or {}
    request = app.get("request") or {}
    tok = (meta.get("tokenizer") or {}).get("type") or request.get("tokenizer", "?")
    max_iters, max_seconds = _limits(meta, request)
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
        max_iters=max_iters,
        best_val_loss=meta.get("best_val_loss"),
        state=state,
        message=status.get("message", ""),
        elapsed_s=float(meta.get("elapsed_s") or 0.0),
        max_seconds=max_seconds,
        end_reason=end_reason(state, status.get("message", ""), status, meta),
        request=request,
        has_weights=has_weights,
        created=app.get("created", 0),
        updated=(path / ckpt.WEIGHTS).stat().st_mtime if has_weights else app.get("created", 0),
        label=str(app.get("label") or ""),
        kind=str(request.get("kind") or "pretrain"),
        parent=meta.get("parent") or app.get("parent"),
        task=meta.get("task") or (app.get("corpus") if request.get("kind") == "finetune" else None),
        chat=(meta.get("tokenizer") or {}).get("type") == "chat",
        grown=str(meta.get("grown") or ""),
    )
