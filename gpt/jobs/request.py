"""What a person asks for: a preset, and the sliders that override it.

`RunRequest` is the plain, JSON-able form of the Train tab (and of the
`/start_run` API call). It turns into a `GPTConfig` and a `TrainConfig`
once the tokenizer's vocabulary size is known, and `check_request` refuses
impossible shapes and anything over the server's limits with a sentence,
before a run is queued.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..data import check_windows, split_sizes
from ..errors import ConfigError
from ..model import ARCHITECTURES, GPTConfig
from ..presets import DEFAULT_PRESET, LATER_STAGES, preset
from ..tokenizers import TOKENIZER_KINDS
from ..train import TrainConfig, configs_from
from .. import corpus as corpora
from .. import ladder
from ..limits import Limits

GPT2_VOCAB_GUESS = 12_000  # a compact GPT-2 vocabulary of a mid-sized corpus; checked exactly once built


@dataclass
class RunRequest:
    """What a person asks for: a preset, and any slider that overrides it. None keeps the preset's value."""

    tokenizer: str = "char"
    vocab_size: int | None = None  # BPE trained here only
    preset: str = DEFAULT_PRESET
    model_type: str = "gpt"
    architecture: str | None = None  # 'classic' or 'modern'; None keeps the preset's
    n_layer: int | None = None
    n_head: int | None = None
    n_embd: int | None = None
    block_size: int | None = None
    dropout: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    max_iters: int | None = None
    max_seconds: float | None = None  # 0 or None: no time limit
    seed: int | None = None
    shared: bool = False
    causal: bool = True  # False drops the causal mask (the 'why the mask' experiment)
    rung: int | None = None  # a rung of the lecture's ablation ladder (gpt.ladder): its settings, not the preset's
    kind: str = "pretrain"  # 'pretrain' (a corpus, from scratch), 'finetune' (a parent run, on conversations)
    #                         or 'rl' (a chat run, rewarded by a task's grader)
    parent: str | None = None  # finetune, rl: the run it starts from
    task: str | None = None  # finetune, rl: a built-in task ('addition', 'mix', ...); None: the uploaded conversations
    samples: int | None = None  # rl: answers sampled per question (None: the stage's)
    temperature: float | None = None  # rl: the sampling temperature (None: the stage's)

    def configs(self, vocab_size: int, device: str = "auto",
                base_model: GPTConfig | None = None) -> tuple[GPTConfig, TrainConfig]:
        """The model and training configs (the preset merged with what was asked), ConfigError if impossible.
        `base_model`: a fine-tune's or an RL run's parent, whose shape it keeps (with a fine-tune's grown vocabulary)."""
        if self.rung is not None:
            return ladder.configs(self.rung, vocab_size, device, seed=self.seed)
        if self.kind in LATER_STAGES:  # 'finetune', 'rl': the stage's settings, the parent's shape
            if base_model is None:
                raise ConfigError("A run made from another keeps its parent run's shape: name the parent run.")
            model = {k: v for k, v in base_model.to_dict().items() if k != "vocab_size"}
            train = {k: getattr(self, k) for k in ("batch_size", "lr", "max_iters", "seed", "max_seconds")}
            model_cfg, train_cfg = configs_from(self.kind, vocab_size, model, {**train, "device": device})
            train_cfg.eval_interval = max(1, min(train_cfg.eval_interval, max(10, train_cfg.max_iters // 10)))
            return model_cfg, train_cfg
        model = {"model_type": self.model_type, "causal": self.causal}
        if self.architecture:
            if self.architecture not in ARCHITECTURES:
                raise ConfigError(f"Architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}.")
            own = preset(self.preset)["model"]  # the preset's own block is not asked for: its shapes may refine it
            model.update({k: v for k, v in ARCHITECTURES[self.architecture].items() if own.get(k) != v})
        model.update({k: getattr(self, k) for k in ("n_layer", "n_head", "n_embd", "block_size", "dropout")})
        train = {k: getattr(self, k) for k in ("batch_size", "lr", "max_iters", "seed", "max_seconds")}
        model_cfg, train_cfg = configs_from(self.preset, vocab_size, model, {**train, "device": device})
        # about ten points on the validation curve, however long the run
        train_cfg.eval_interval = max(1, min(train_cfg.eval_interval, max(10, train_cfg.max_iters // 10)))
        return model_cfg, train_cfg

    @classmethod
    def from_form(cls, tokenizer, vocab_size, preset, model_type, architecture, n_layer, n_head, n_embd, block_size,
                  dropout, batch_size, lr, max_iters, max_seconds, shared=False) -> "RunRequest":
        """The Train tab's values (sliders send floats; None keeps the preset's), as the page, its ZeroGPU
        slices and the API all send them: the one place a form becomes a request."""
        as_int = lambda x: None if x is None else int(x)  # noqa: E731
        return cls(
            tokenizer=tokenizer, vocab_size=as_int(vocab_size) if tokenizer == "bpe" else None, preset=preset,
            model_type=model_type, architecture=architecture, n_layer=as_int(n_layer), n_head=as_int(n_head),
            n_embd=as_int(n_embd), block_size=as_int(block_size), dropout=None if dropout is None else float(dropout),
            batch_size=as_int(batch_size), lr=None if lr is None else float(lr), max_iters=as_int(max_iters),
            max_seconds=None if max_seconds is None else float(max_seconds), shared=bool(shared),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunRequest":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


def check_request(corpus: corpora.Corpus, request: RunRequest, limits: Limits, device: str = "cpu",
                  vocab_size: int | None = None) -> tuple[GPTConfig, TrainConfig]:
    """The run's configs, or ConfigError for a shape that cannot work or a limit exceeded.

    vocab_size: the tokenizer's, when it is built already (then the configs are exact and this is the one
    check of a Start); else it is worked out (characters) or estimated (BPE: the asked size; GPT-2: a
    typical compact size), for an answer before anything is built.
    """
    if request.tokenizer not in TOKENIZER_KINDS:
        raise ConfigError(f"Tokenizer must be one of {', '.join(TOKENIZER_KINDS)}, got {request.tokenizer!r}.")
    built = vocab_size is not None
    if vocab_size is None:
        if request.tokenizer == "char":
            vocab_size = len(set(corpus.text))
        elif request.tokenizer == "bpe":
            vocab_size = int(request.vocab_size or corpora.BPE_VOCAB_DEFAULT)
            if not corpora.BPE_VOCAB_MIN <= vocab_size <= corpora.BPE_VOCAB_MAX:
                raise ConfigError(f"The BPE vocabulary size must be from {corpora.BPE_VOCAB_MIN:,} to "
                                  f"{corpora.BPE_VOCAB_MAX:,}, got {vocab_size:,}.")
        else:
            vocab_size = GPT2_VOCAB_GUESS
    model_cfg, train_cfg = request.configs(vocab_size, device)
    if corpus.source == "text":  # a pasted or uploaded text: too short is said now, not once it is queued
        check_windows(corpus.name, *split_sizes(_token_count(corpus, request, built)), model_cfg.block_size)
    limits.check_run(model_cfg, train_cfg)  # by arithmetic: nothing is built to check a limit
    return model_cfg, train_cfg


def _token_count(corpus: corpora.Corpus, request: RunRequest, built: bool) -> int:
    """Tokens in the corpus: exact for characters and for a tokenizer the caller built (it is cached);
    else the character count, which a byte-level BPE rarely exceeds."""
    if request.tokenizer != "char" and built:
        return len(corpora.dataset(corpus, request.tokenizer, request.vocab_size).data)
    return len(corpus.text)
