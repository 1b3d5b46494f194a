"""Models in and out: transformers' GPT-2, NanoChat, Qwen3 and Llama, and nanoGPT, both ways, without ever unpickling.

    verdicts(config, tokenizer)             which formats can carry a run, and why not (gpt.convert.fit)
    run_to_hf(run_dir, out_dir)             a transformers folder: GPT-2, NanoChat, Qwen3, Llama (gpt.convert.hf)
    run_to_nanogpt(run_dir, out_dir)        nanoGPT's ckpt.pt (+ meta.pkl) (gpt.convert.nanogpt)
    nanogpt_to_run(src, out_dir, meta_pkl)  a nanoGPT checkpoint as a run folder
    hf_to_run(src_dir, out_dir)             a local transformers folder as a run folder
    download_gpt2(progress)                 GPT-2 124M from the Hugging Face hub (gpt.convert.hub)

The command line is `python -m gpt.convert` (see __main__.py).
"""

from .hf import hf_to_run, load_hf, run_to_hf
from .nanogpt import nanogpt_to_run, run_to_nanogpt
from .fit import Verdict, summary, verdicts
from .hub import download_gpt2
from .pack import unzip_safely, zip_folder

__all__ = ["run_to_hf", "hf_to_run", "load_hf", "run_to_nanogpt", "nanogpt_to_run", "download_gpt2",
           "zip_folder", "unzip_safely", "init_run", "Verdict", "verdicts", "summary"]


def init_run(source: str, out_dir, dropout: float = 0.0):
    """Make `out_dir` a run from `source` (a transformers folder, a nanoGPT ckpt.pt or its folder, or 'gpt2',
    downloaded) and load it: the start of a fine-tune (`python -m gpt.train --init-from`)."""
    from pathlib import Path

    from .. import checkpoint as ckpt
    from ..errors import ConvertError

    out, src = Path(out_dir), Path(source)
    if (out / ckpt.WEIGHTS).exists():
        raise ConvertError(f"{out} already holds a run; continue it with --resume or choose another --out.")
    if source == "gpt2" and not src.exists():
        hf_to_run(download_gpt2(), out, dropout=dropout, corpus="GPT-2 (WebText)")
    elif src.is_dir() and (src / "config.json").exists():
        hf_to_run(src, out, dropout=dropout)
    elif src.suffix == ".pt" or (src / "ckpt.pt").exists():
        nanogpt_to_run(src, out)
    else:
        raise ConvertError(f"--init-from {src.name}: give a transformers folder (config.json, model.safetensors), "
                           "nanoGPT's ckpt.pt or its out_dir, or 'gpt2'.")
    return ckpt.load_checkpoint(out)
