"""What each kind of run trains on: its settings, checked at Start, and the objective the one trainer is handed.

- pretrain: a corpus encoded with a new tokenizer (`gpt.corpus`), from scratch,
  the lecture's next-token objective (`gpt.train.NextToken`);
- finetune: a parent run made into a chat model (`gpt.chat.grow`: the chat
  tokens and the characters the data brings, new rows at the mean) and trained
  on a task's or a file's conversations with the loss on the assistant's tokens
  (`gpt.chat.objective.Finetune`). The grown parent is the new run's step-0
  checkpoint, so the run then trains, stops, resumes and slices like any other.

Both runners (a thread here, a GPU slice on ZeroGPU) build the objective the
same way: `objective_for`.
"""

from __future__ import annotations

from pathlib import Path

from .. import checkpoint as ckpt
from .. import corpus as corpora
from ..chat.batches import ChatBatches
from ..chat.files import parse_conversations
from ..chat.grow import chat_model, grown_tokenizer
from ..chat.objective import Finetune
from ..chat.task import Task
from ..chat.tasks import task_from_name
from ..checkpoint_check import check_checkpoint
from ..data import Dataset
from ..errors import ConfigError
from ..limits import Limits
from ..model import GPTConfig
from ..tokenizer import Tokenizer
from ..train import NextToken, Objective, TrainConfig
from .folder import CORPUS_FILE
from .request import RunRequest, check_request

KINDS = ("pretrain", "finetune")


def conversations(corpus: corpora.Corpus | None, request: RunRequest, limits: Limits) -> Task:
    """A fine-tune's data: the built-in task it names, else the conversation file kept as its corpus."""
    if request.task:
        return task_from_name(request.task)
    if corpus is None or not corpus.text:
        raise ConfigError("Choose a built-in task or upload a conversation file (JSONL or Alpaca) to fine-tune on.")
    return parse_conversations(corpus.text.encode("utf-8"), corpus.name)


def check(corpus: corpora.Corpus | None, request: RunRequest, limits: Limits, device: str,
          vocab_size: int | None, parent: Path | None) -> tuple[GPTConfig, TrainConfig]:
    """The run's configs, every limit checked, before anything is written or trained (the one check of a Start)."""
    if request.kind not in KINDS:
        raise ConfigError(f"The kind of run must be one of {', '.join(KINDS)}, got {request.kind!r}.")
    if request.kind == "pretrain":
        return check_request(corpus, request, limits, device, vocab_size)
    if parent is None:
        raise ConfigError("Choose the run to fine-tune (the parent run).")
    checked = check_checkpoint(parent / ckpt.WEIGHTS, limits)  # its header and settings, no weights read
    data = conversations(corpus, request, limits)
    chat, _ = grown_tokenizer(checked.tokenizer, data)
    model_cfg, train_cfg = request.configs(chat.vocab_size, device, base_model=checked.model_config)
    limits.check_run(model_cfg, train_cfg)
    ChatBatches(data, chat, model_cfg.block_size)  # some conversation fits the context, or a sentence now
    return model_cfg, train_cfg


def objective_for(request: RunRequest, corpus: corpora.Corpus, tokenizer: Tokenizer, block_size: int,
                  limits: Limits, dataset: Dataset | None = None) -> Objective:
    """What the trainer trains on, for a run whose tokenizer is known (saved in its checkpoint, or just built;
    `dataset`: the corpus already encoded with it, as a new run's Start cached it)."""
    if request.kind == "finetune":
        data = conversations(corpus, request, limits)
        return Finetune(data, ChatBatches(data, tokenizer, block_size))
    return NextToken(dataset or Dataset(corpus.text, tokenizer, name=corpus.name))


def meta(request: RunRequest, corpus: corpora.Corpus) -> dict:
    """What every checkpoint of the run records about where it comes from (never a server path)."""
    source = CORPUS_FILE if corpus.source == "text" else corpus.source
    out = {"corpus": corpus.name, "data_source": source}
    if request.kind == "finetune":
        out.update(parent=request.parent, task=request.task or corpus.name)
    return out


def write_initial(path: Path, request: RunRequest, corpus: corpora.Corpus, parent: Path, limits: Limits,
                  train_cfg: TrainConfig, meta: dict) -> str:
    """A fine-tune's step 0: the parent made into a chat model, saved as the new run's checkpoint. Returns the
    note saying what was added ("Added 14 characters the conversations use: ...")."""
    saved = ckpt.load_checkpoint(parent, limits=limits)
    grown = chat_model(saved.model, saved.tokenizer, conversations(corpus, request, limits), limits=limits)
    ckpt.save_checkpoint(path, grown.model, grown.model.config, grown.tokenizer, 0, train=train_cfg.to_dict(),
                         elapsed_s=0.0, n_params=sum(p.numel() for p in grown.model.parameters()),
                         **{**meta, "grown": grown.note})
    return grown.note
