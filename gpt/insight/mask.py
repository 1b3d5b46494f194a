"""Why the mask: train with and without it on the same text, and compare.

Without the causal mask each position can see the very token it must
predict, so the training loss collapses while the samples are garbage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..engine import SamplingSettings, generate
from ..errors import GPTError
from ..sample import prompt_to_ids


MASK_EXPLANATION = """\
**Why the mask.** In training, the target at position t is the token at position t+1, and
that token is sitting right there in the same input window. With the causal mask, position t
may only attend to positions 0..t, so it has to *predict* the next character. Without the
mask it can simply *look*: one head learns "copy the token one step to my right", and the
training loss collapses toward zero (only the last position of each window must still guess).

The validation loss falls too, because validation windows contain their future as well. The
samples tell the truth: when generating there is no future to copy, the next token does not
exist yet, so the unmasked model has learned nothing useful and writes garbage. That is why a
decoder (GPT) masks and an encoder (BERT) cannot be used to generate text this way.

(This experiment uses rotary positions, where "one step to the right" is one relative offset,
so the cheat is found within a few hundred steps. With learned positions every position must
learn it separately and the collapse comes later.)
"""


@dataclass
class MaskExperiment:
    """Both runs of `why_the_mask`: their metrics rows, their samples and the explanation to show."""

    curves: dict[str, list[dict]]  # 'masked' / 'unmasked' -> the trainer's metrics rows
    samples: dict[str, str]
    explanation: str

    def final_train_loss(self, label: str) -> float:
        return self.curves[label][-1]["train_loss"]


def why_the_mask(text: str | None = None, max_iters: int = 300, seed: int = 1337, pos_emb: str = "rope",
                 sample_tokens: int = 200, prompt: str = "", on_eval: Callable[[str, dict], None] | None = None,
                 device: str = "cpu") -> MaskExperiment:
    """Train two tiny GPTs on the same text, with and without the causal mask, and sample both.

    `on_eval(label, row)` is called at each evaluation (a live plot can listen).
    About 15 s on one busy CPU core at the defaults (set GPT_NUM_THREADS=1 on a shared
    machine). `text` defaults to Tiny Shakespeare. Rotary positions by default: with them
    "look one step right" is one relative offset, found in ~100 steps (see MASK_EXPLANATION).
    """
    from ..data import Dataset, load_corpus
    from ..tokenizer import CharTokenizer
    from ..train import Trainer, configs_from

    if text is None:
        text = load_corpus("shakespeare")[1]
    dataset = Dataset(text, CharTokenizer.from_text(text), name="why-the-mask")
    curves, samples = {}, {}
    for label, causal in (("masked", True), ("unmasked", False)):
        model_cfg, train_cfg = configs_from(
            "tiny", dataset.tokenizer.vocab_size, {"causal": causal, "pos_emb": pos_emb},
            {"max_iters": max_iters, "eval_interval": max(1, max_iters // 6), "eval_iters": 5, "seed": seed,
             "sample_tokens": 0, "device": device})
        listener = (lambda row, label=label: on_eval(label, row)) if on_eval else None
        trainer = Trainer(model_cfg, train_cfg, dataset, out_dir=None, on_eval=listener)
        if trainer.run() != "finished":
            raise GPTError(f"The {label} run stopped: {trainer.error}")
        curves[label] = trainer.metrics
        if sample_tokens:
            ids, _ = prompt_to_ids(dataset.tokenizer, prompt, model_cfg.block_size)
            out = generate(trainer.model, ids, SamplingSettings(max_new_tokens=sample_tokens, temperature=0.8, seed=seed))
            samples[label] = dataset.tokenizer.decode(ids + out if prompt else out)  # as the trainer's samples
        else:
            samples[label] = ""
    return MaskExperiment(curves, samples, MASK_EXPLANATION)
