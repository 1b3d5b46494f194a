"""nanoGPT's checkpoints: written for its sample.py and train.py, read without running any pickle.

nanoGPT's `train.py` saves `torch.save({'model', 'optimizer', 'model_args',
'iter_num', 'best_val_loss', 'config'})` to `out_dir/ckpt.pt`, and its
`data/<dataset>/prepare.py` a `meta.pkl` ({'vocab_size', 'itos', 'stoi'})
for a character model. Its `sample.py` rebuilds `GPT(GPTConfig(**model_args))`,
strict-loads `model` (so `lm_head.weight` must be there, tied or not) and
looks for `data/<config['dataset']>/meta.pkl`; without one it uses GPT-2's
tiktoken encoding.

Writing pickles is fine. Reading them is where code can run, so:
- ckpt.pt goes through `torch.load(..., weights_only=True)`: tensors, dicts,
  lists and numbers only; any other object refuses the whole file;
- meta.pkl goes through an unpickler that allows no globals at all (a dict of
  ints and strings needs none), under a size limit.
Both refusals are one sentence, and the payload never runs.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path

import torch

from .. import checkpoint as ckpt
from ..errors import ConvertError
from ..model import GPTConfig, build_model, parameter_breakdown
from ..tokenizer import CharTokenizer, Tokenizer
from ..tokenizers import tokenizer_from_spec
from .fit import check_nanogpt, full_gpt
from .layout import full_gpt_weights, load_into, strip_wrappers

META_MAX_BYTES = 8 * 1024 * 1024
GPT2_VOCAB = 50257  # nanoGPT pads it to 50304 for speed; the 47 extra rows are never a real token


# --- out -------------------------------------------------------------------------------------------


def _nanogpt_config(run: ckpt.Checkpoint, dataset: str) -> dict:
    """nanoGPT's `config` dict (its train.py globals), filled from our training settings."""
    t, c = run.meta.get("train") or {}, run.model_config
    lr = float(t.get("lr", 1e-3))
    return {"out_dir": "out", "dataset": dataset, "init_from": "resume", "eval_interval": int(t.get("eval_interval", 250)),
            "eval_iters": int(t.get("eval_iters", 200)), "batch_size": int(t.get("batch_size", 12)),
            "gradient_accumulation_steps": int(t.get("grad_accum", 1)), "block_size": c.block_size,
            "n_layer": c.n_layer, "n_head": c.n_head, "n_embd": c.n_embd, "dropout": c.dropout, "bias": c.bias,
            "learning_rate": lr, "max_iters": int(t.get("max_iters", run.step)), "weight_decay": float(t.get("weight_decay", 0.1)),
            "beta1": float(t.get("beta1", 0.9)), "beta2": float(t.get("beta2", 0.99)), "grad_clip": float(t.get("grad_clip", 1.0)),
            "decay_lr": True, "warmup_iters": int(t.get("warmup_iters", 100)), "lr_decay_iters": int(t.get("max_iters", run.step)),
            "min_lr": lr * float(t.get("min_lr_ratio", 0.1)), "device": "cpu", "dtype": "float32", "compile": False}


def _fresh_adamw(model: torch.nn.Module, config: dict) -> dict:
    """An AdamW state_dict with no moments, grouped as nanoGPT's configure_optimizers groups: matrices
    (weight decay) then vectors, so its train.py can `init_from='resume'` from the export."""
    params = dict(model.named_parameters())  # tied weights once, as nanoGPT's own named_parameters
    n_decay = sum(p.dim() >= 2 for p in params.values())
    common = dict(lr=config["learning_rate"], betas=(config["beta1"], config["beta2"]), eps=1e-8, amsgrad=False,
                  foreach=None, maximize=False, capturable=False, differentiable=False, fused=None)
    return {"state": {}, "param_groups": [
        {**common, "weight_decay": config["weight_decay"], "params": list(range(n_decay))},
        {**common, "weight_decay": 0.0, "params": list(range(n_decay, len(params)))}]}


def run_to_nanogpt(run_dir: str | Path, out_dir: str | Path, dataset: str | None = None) -> Path:
    """Write `out_dir/ckpt.pt` (and `meta.pkl` for a character model) that nanoGPT's sample.py loads."""
    run = ckpt.load_checkpoint(run_dir, device="cpu")
    check_nanogpt(run.model_config, run.tokenizer)  # refuses before anything is written
    c, tok = full_gpt(run.model_config), run.tokenizer
    dataset = dataset or Path(run_dir).name
    state = full_gpt_weights(dict(run.model.state_dict()), run.model_config)
    state = {k: v.detach().to("cpu", torch.float32).clone() for k, v in state.items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]  # tied: one tensor under both names, as nanoGPT saves
    best = run.meta.get("best_val_loss")
    payload = {
        "model": state,
        "model_args": dict(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, block_size=c.block_size,
                           bias=c.bias, vocab_size=c.vocab_size, dropout=c.dropout),
        "iter_num": run.step,
        "best_val_loss": float(best) if isinstance(best, (int, float)) else 1e9,
        "config": _nanogpt_config(run, dataset),
    }
    with torch.device("meta"):  # the exported model's parameters, counted: nothing is allocated
        exported = build_model(c)
    payload["optimizer"] = _fresh_adamw(exported, payload["config"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_write(out / "ckpt.pt", lambda tmp: torch.save(payload, tmp))
    if isinstance(tok, CharTokenizer):
        meta = {"vocab_size": tok.vocab_size, "itos": dict(tok.itos), "stoi": dict(tok.stoi)}
        ckpt.atomic_write(out / "meta.pkl", lambda tmp: Path(tmp).write_bytes(pickle.dumps(meta)))
    return out


# --- in --------------------------------------------------------------------------------------------


class _NoGlobals(pickle.Unpickler):
    """Unpickles plain containers only: every class or function a pickle names is refused."""

    def find_class(self, module, name):
        raise ConvertError(f"meta.pkl asks to load {module}.{name}, which a vocabulary never needs; it was refused "
                           "and nothing in it ran. Use the meta.pkl that nanoGPT's prepare.py wrote.")

    def persistent_load(self, pid):
        raise ConvertError("meta.pkl refers to outside objects; it was refused and nothing in it ran.")


def read_meta_pkl(path: str | Path) -> CharTokenizer:
    """The character tokenizer of a nanoGPT meta.pkl, read without allowing any global."""
    path = Path(path)
    try:
        data = path.read_bytes() if path.stat().st_size <= META_MAX_BYTES else None
    except OSError:
        raise ConvertError(f"{path.name} cannot be read.") from None
    if data is None:
        raise ConvertError(f"{path.name} is over {META_MAX_BYTES // 2**20} MB; a character vocabulary is a few kB.")
    try:
        meta = _NoGlobals(io.BytesIO(data)).load()
    except ConvertError:
        raise
    except Exception:  # noqa: BLE001 - any malformed pickle is one sentence
        raise ConvertError(f"{path.name} is not a pickle that nanoGPT's prepare.py writes; it could not be read.") from None
    itos = meta.get("itos") if isinstance(meta, dict) else None
    if not isinstance(itos, dict) or not all(isinstance(k, int) and isinstance(v, str) and len(v) == 1 for k, v in itos.items()):
        raise ConvertError(f"{path.name} has no 'itos' mapping of ids to single characters; it is not a character "
                           "vocabulary (nanoGPT's GPT-2 runs need no meta.pkl).")
    chars = [itos[i] for i in sorted(itos)]
    if sorted(itos) != list(range(len(itos))) or chars != sorted(set(chars)):
        raise ConvertError(f"{path.name} numbers its characters out of sorted order; nanoGPT's prepare.py sorts them.")
    return CharTokenizer(chars)


def _torch_load(path: Path) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConvertError(f"There is no nanoGPT checkpoint at {path.name}: give the folder that holds ckpt.pt "
                           "(and meta.pkl), or ckpt.pt itself.") from None
    except pickle.UnpicklingError as err:
        if "GLOBAL " not in str(err):  # torch's words for "this pickle names a class or function"
            raise ConvertError(f"{path.name} is not a PyTorch checkpoint (torch.save) or it is damaged.") from None
        what = str(err).split("GLOBAL ")[-1].split(" ")[0]
        raise ConvertError(f"{path.name} holds {what} besides weights; loading it could run code, so it was refused "
                           "and nothing in it ran. Only tensors, numbers and dicts are read.") from None
    except Exception:  # noqa: BLE001 - a torn zip, not a torch file, ...
        raise ConvertError(f"{path.name} is not a PyTorch checkpoint (torch.save) or it is damaged.") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict) or not isinstance(obj.get("model_args"), dict):
        raise ConvertError(f"{path.name} has no 'model' and 'model_args'; it is not a checkpoint from nanoGPT's train.py.")
    return obj


def _find(src: Path, meta_pkl: str | Path | None) -> tuple[Path, Path | None]:
    ckpt_path = src / "ckpt.pt" if src.is_dir() else src
    if meta_pkl and not Path(meta_pkl).exists():  # named, so wanted: never fall back to GPT-2's tokens silently
        raise ConvertError(f"There is no {Path(meta_pkl).name}, the meta.pkl given; give the path of nanoGPT's "
                           "meta.pkl, or leave it out for a GPT-2 vocabulary.")
    meta = Path(meta_pkl) if meta_pkl else ckpt_path.parent / "meta.pkl"
    return ckpt_path, (meta if meta.exists() else None)


def load_nanogpt(src: str | Path, meta_pkl: str | Path | None = None) -> tuple[torch.nn.Module, GPTConfig, Tokenizer, dict]:
    """Model, config, tokenizer and the raw checkpoint (minus weights) of a nanoGPT ckpt.pt."""
    ckpt_path, meta_path = _find(Path(src), meta_pkl)
    raw = _torch_load(ckpt_path)
    args = raw["model_args"]
    tok = read_meta_pkl(meta_path) if meta_path else tokenizer_from_spec({"type": "gpt2", "kept_ids": None})
    try:
        config = GPTConfig(vocab_size=tok.vocab_size, block_size=int(args["block_size"]), n_layer=int(args["n_layer"]),
                           n_head=int(args["n_head"]), n_embd=int(args["n_embd"]), dropout=float(args.get("dropout", 0.0)),
                           bias=bool(args.get("bias", True)))
    except (KeyError, TypeError, ValueError) as err:
        raise ConvertError(f"{ckpt_path.name}'s model_args lack or garble {err}.") from None
    state = strip_wrappers(raw["model"])
    rows = int(args.get("vocab_size") or 0)
    if rows < tok.vocab_size:
        hint = "" if meta_path else " (GPT-2's, since no meta.pkl came with it: a character model needs its meta.pkl too)"
        raise ConvertError(f"{ckpt_path.name} has {rows} token rows but the tokenizer has {tok.vocab_size} tokens{hint}.")
    for key in ("transformer.wte.weight", "lm_head.weight"):  # padded rows are never a token: dropped
        if key in state and torch.is_tensor(state[key]):
            state[key] = state[key][: tok.vocab_size]
    model = build_model(config)
    load_into(model, {k: v.float() for k, v in state.items() if torch.is_tensor(v)}, ckpt_path.name)
    return model.eval(), config, tok, {k: v for k, v in raw.items() if k not in ("model", "optimizer")}


def _number(v) -> float | None:
    v = v.item() if torch.is_tensor(v) and v.numel() == 1 else v
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def nanogpt_to_run(src: str | Path, out_dir: str | Path, meta_pkl: str | Path | None = None, **meta) -> Path:
    """A nanoGPT checkpoint (its folder or ckpt.pt; meta.pkl beside it or given) as the run folder `out_dir`."""
    model, config, tok, raw = load_nanogpt(src, meta_pkl)
    cfg = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    step = int(raw.get("iter_num") or 0)
    train = {"batch_size": int(cfg.get("batch_size", 12)), "lr": float(cfg.get("learning_rate", 1e-3)),
             "max_iters": max(step, int(cfg.get("max_iters", step) or step)), "eval_interval": int(cfg.get("eval_interval", 250)),
             "weight_decay": float(cfg.get("weight_decay", 0.1)), "warmup_iters": int(cfg.get("warmup_iters", 100)),
             "grad_clip": float(cfg.get("grad_clip", 1.0)), "optimizer": "adamw"}
    out = Path(out_dir)
    ckpt.save_checkpoint(out, model, config, tok, step=step, train=train, best_val_loss=_number(raw.get("best_val_loss")),
                         n_params=parameter_breakdown(model)["total"], corpus=meta.pop("corpus", str(cfg.get("dataset", "imported"))),
                         imported_from={"format": "nanogpt", "dataset": str(cfg.get("dataset", ""))}, **meta)
    ckpt.write_status(out, "finished", f"Imported from nanoGPT's ckpt.pt (step {step:,}).", step=step)
    return out
