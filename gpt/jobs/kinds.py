"""What each kind of run trains on: its settings, checked at Start, and the objective the one trainer is handed.

- pretrain: a corpus encoded with a new tokenizer (`gpt.corpus`), from scratch,
  the lecture's next-token objective (`gpt.train.NextToken`);
- finetune: a parent run made into a chat model (`gpt.chat.grow`: the chat
  tokens and the characters the data brings, new rows at the mean) and trained
  on a task's or a file's conversations with the loss on the assistant's tokens
  (`gpt.chat.objective.Finetune`). The grown parent is the new run's step-0
  checkpoint, so the run then trains, stops, resumes and slices like any other;
- rl: a chat run (a parent whose tokenizer is a chat tokenizer) rewarded by a
  task's grader (`gpt.chat.rl.Reinforce`): its step 0 is a copy of the parent's
  weights, its settings the RL stage's and the request's answers per question
  (`samples`) and temperature.

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
from ..chat import rl
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

KINDS = ("pretrain", "finetune", "rl")
FROM_PARENT = ("finetune", "rl")  # the kinds that start from a parent run's weights (its step 0 is written first)
SUFFIX = {"finetune": "chat", "rl": "rl"}  # what a run made from a parent adds to the parent's name
PREPARING = {"finetune": "Making the parent run a chat model", "rl": "Copying the parent chat run"}  # its step 0


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
        raise ConfigError("Choose the run to start from (the parent run).")
    checked = check_checkpoint(parent / ckpt.WEIGHTS, limits)  # its header and settings, no weights read
    data = conversations(corpus, request, limits)
    if request.kind == "rl":
        rl.RLConfig.for_stage(request.samples, request.temperature)  # k and the temperature in range, or a sentence
        chat = rl.check_parent(checked.tokenizer, data, parent.name)
    else:
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
    if request.kind == "rl":
        data = conversations(corpus, request, limits)
        return rl.rl_objective(data, tokenizer, block_size, rl.RLConfig.for_stage(request.samples, request.temperature))
    return NextToken(dataset or Dataset(corpus.text, tokenizer, name=corpus.name))


def meta(request: RunRequest, corpus: corpora.Corpus) -> dict:
    """What every checkpoint of the run records about where it comes from (never a server path)."""
    source = CORPUS_FILE if corpus.source == "text" else corpus.source
    out = {"corpus": corpus.name, "data_source": source}
    if request.kind in FROM_PARENT:
        out.update(parent=request.parent, task=request.task or corpus.name)
    if request.kind == "rl":
        settings = rl.RLConfig.for_stage(request.samples, request.temperature)
        out.update(samples=settings.samples, temperature=settings.temperature)
    return out


def write_initial(path: Path, request: RunRequest, corpus: corpora.Corpus, parent: Path, limits: Limits,
                  train_cfg: TrainConfig, meta: dict) -> str:
    """A fine-tune's step 0: the parent made into a chat model, saved as the new run's checkpoint. Returns the
    note saying what was added ("Added 14 characters the conversations use: ..."). An RL run's: the parent's
    weights as they are ("Starts from ... at step 300.")."""
    if request.kind == "rl":
        return rl.write_step_zero(path, parent, conversations(corpus, request, limits), parent.name,
                                  train_cfg.to_dict(), limits, meta)
    saved = ckpt.load_checkpoint(parent, limits=limits)
    grown = chat_model(saved.model, saved.tokenizer, conversations(corpus, request, limits), limits=limits)
    ckpt.save_checkpoint(path, grown.model, grown.model.config, grown.tokenizer, 0, train=train_cfg.to_dict(),
                         elapsed_s=0.0, n_params=sum(p.numel() for p in grown.model.parameters()),
                         **{**meta, "grown": grown.note})
    return grown.note
