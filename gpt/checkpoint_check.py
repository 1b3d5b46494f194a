"""What a checkpoint file promises, checked before one byte of its weights is loaded.

An uploaded `model.safetensors` is a stranger's file: its metadata may say
`block_size=1e9` or `n_layer=1e6`, its tokenizer may carry a hostile
regular expression, its header may lie about shapes. Building the model a
config describes allocates what the config says, so everything is checked
first, in this order, each step cheap:

1. the header (`gpt.safetensors_header`): a regular file, sane entries;
2. the embedded config: a JSON object whose fields have the right types
   (`format_version` a whole number, `step` too, `model` and `tokenizer`
   objects), then `GPTConfig`, which checks every model field;
3. the server's limits, when given (`Limits.check_model`, and
   `check_run` with the saved training settings): arithmetic only;
4. the tokenizer: its size against the config before it is built;
5. every tensor's name and shape against the shapes the config implies,
   read from a model built on the meta device (no memory), so the loader
   allocates exactly what the file holds and nothing more.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .errors import CheckpointError, GPTError
from .model import GPTConfig, build_model
from .safetensors_header import read_header, tensor_shapes
from .tokenizer import Tokenizer
from .tokenizers import tokenizer_from_spec
from .validate import whole

if TYPE_CHECKING:  # pragma: no cover
    from .limits import Limits

FORMAT_VERSION = 1
FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")
_LAYER_RE = re.compile(r"transformer\.h\.(\d{1,6})\.")
MAX_BUFFER_BYTES = 2**30  # rotary tables are built, not read: bound what a config makes us allocate


@dataclass
class Checked:
    """A checkpoint file's config and tokenizer, and its header, every part checked."""

    meta: dict
    model_config: GPTConfig
    tokenizer: Tokenizer
    header: dict


def parse_meta(raw, where: str) -> dict:
    """The embedded config as a dict whose top-level fields have the types the loader relies on."""
    if raw is None:
        raise CheckpointError(f"{where} has no embedded gpt config; it was not written by this project.")
    try:
        meta = json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):
        raise CheckpointError(f"{where} has a corrupt embedded config (not JSON).") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: its embedded config is not a JSON object; the file is damaged.")
    check_version(meta, where)
    for key in ("model", "tokenizer"):
        if key not in meta:
            raise CheckpointError(f"{where} is missing the '{key}' setting in its config.")
        if not isinstance(meta[key], dict):
            raise CheckpointError(f"{where}: its '{key}' setting must be a JSON object, got {type(meta[key]).__name__}.")
    if "train" in meta and not isinstance(meta["train"], dict):
        raise CheckpointError(f"{where}: its 'train' setting must be a JSON object, got {type(meta['train']).__name__}.")
    try:
        meta["step"] = whole(meta.get("step", 0), "step", 0, 10**12, error=CheckpointError)
        for key in ("elapsed_s", "best_val_loss"):
            if meta.get(key) is not None and (isinstance(meta[key], bool) or not isinstance(meta[key], (int, float))):
                raise CheckpointError(f"{key} must be a number")
    except CheckpointError as err:
        raise CheckpointError(f"{where}: its config is damaged ({str(err).rstrip('.')}).") from None
    return meta


def check_version(meta: dict, where: str) -> None:
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise CheckpointError(f"{where}: its format_version {str(version)[:20]!r} is not a whole number; "
                              "the file is damaged.")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where} uses checkpoint format version {version}, newer than this program's {FORMAT_VERSION}. "
            "Update the app to load it."
        )


def _model_config(meta: dict, where: str, limits: "Limits | None") -> GPTConfig:
    try:
        config = GPTConfig.from_dict(meta["model"])
    except GPTError as err:
        raise CheckpointError(f"{where}: its model settings are refused: {err}") from None
    except TypeError as err:  # a field missing or named twice
        raise CheckpointError(f"{where}: its model settings are incomplete ({err}).") from None
    if limits is not None:
        _under_limits(meta, config, where, limits)
    head = config.n_embd // config.n_head
    if config.model_type == "gpt" and config.pos_emb == "rope" and 8 * config.block_size * head > MAX_BUFFER_BYTES:
        raise CheckpointError(f"{where}: a context of {config.block_size:,} tokens needs rotary tables over 1 GB; "
                              "the file is not a model this program can load.")
    return config


def _under_limits(meta: dict, config: GPTConfig, where: str, limits: "Limits") -> None:
    from .train.config import TrainConfig  # gpt.train imports model, which this module also needs late

    try:
        if "train" in meta:
            limits.check_run(config, TrainConfig.from_dict(meta["train"]))
        else:
            limits.check_model(config)
    except GPTError as err:
        raise CheckpointError(f"{where} cannot be used on this server: {err}") from None
    except TypeError as err:
        raise CheckpointError(f"{where}: its training settings are damaged ({err}).") from None


def _spec_size_matches(spec: dict, vocab_size: int) -> bool:
    """Before building: does the tokenizer description have the model's vocabulary size (when it says)?"""
    if spec.get("type") == "char":
        return not isinstance(spec.get("chars"), str) or len(spec["chars"]) == vocab_size
    if spec.get("type") == "chat":  # a text tokenizer's size plus its chat tokens, one level deep
        base, specials = spec.get("base"), spec.get("specials")
        if not isinstance(base, dict) or not isinstance(specials, list) or base.get("type") == "chat":
            return True  # tokenizer_from_spec refuses it with its own sentence
        return _spec_size_matches(base, vocab_size - len(specials))
    if spec.get("type") == "bpe":
        kept, tokens = spec.get("kept_ids"), spec.get("tokens")
        if isinstance(kept, list):
            return len(kept) + 1 == vocab_size
        return not isinstance(tokens, list) or len(tokens) + 256 == vocab_size
    return True


def _tokenizer(meta: dict, config: GPTConfig, where: str) -> Tokenizer:
    spec = meta["tokenizer"]
    if not _spec_size_matches(spec, config.vocab_size) or (
            (tokenizer := tokenizer_from_spec(spec)).vocab_size != config.vocab_size):
        raise CheckpointError(
            f"{where}: the tokenizer's vocabulary does not have the {config.vocab_size:,} tokens the model expects; "
            "config and weights do not belong together."
        )
    return tokenizer


def expected_shapes(config: GPTConfig) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """The state-dict shapes the config implies, and the names a file may leave out (a tied lm_head)."""
    with torch.device("meta"):
        model = build_model(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tied = {"lm_head.weight"} if config.model_type == "gpt" and config.tie_weights else set()
    return shapes, tied


def _check_tensors(header: dict, config: GPTConfig, where: str) -> None:
    found = tensor_shapes(header)
    if config.model_type == "gpt":  # before building even on the meta device: its cost grows with n_layer
        layers = {m.group(1) for k in found if (m := _LAYER_RE.match(k))}
        if len(layers) != config.n_layer:
            raise CheckpointError(f"{where}: the config says {config.n_layer:,} layers but the weights hold "
                                  f"{len(layers):,}; config and weights do not belong together.")
    expected, optional = expected_shapes(config)
    missing = [k for k in expected if k not in found and k not in optional]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{where}: the weights do not match the config (missing {missing[:3]}, "
                              f"unexpected {[k[:60] for k in unexpected[:3]]}).")
    for k, shape in found.items():
        if shape != expected[k]:
            raise CheckpointError(
                f"{where}: weight '{k}' has shape {shape} but the config implies {expected[k]} "
                "(a vocabulary size or width that does not match the weights)."
            )
        if header[k]["dtype"] not in FLOAT_DTYPES:
            raise CheckpointError(f"{where}: weight '{k}' is stored as {header[k]['dtype']}, not as floating point "
                                  "numbers; the file is damaged.")


def check_checkpoint(weights: str | Path, limits: "Limits | None" = None, meta: dict | None = None) -> Checked:
    """Check a model.safetensors file (see the module docstring); nothing of its weights is read.

    meta: the config to trust instead of the embedded one (a run folder's config.json of the same
    step); it is checked the same way. Call it with the server's `Limits` on anything uploaded."""
    weights = Path(weights)
    where = weights.name
    header = read_header(weights)
    embedded = parse_meta(header["__metadata__"].get("gpt_config"), where)
    meta = embedded if meta is None else parse_meta(meta, where)
    config = _model_config(meta, where, limits)
    tokenizer = _tokenizer(meta, config, where)
    _check_tensors(header, config, where)
    return Checked(meta=meta, model_config=config, tokenizer=tokenizer, header=header)
