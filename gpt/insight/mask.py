"""Why the mask: the same text trained with and without it, side by side.

Without the causal mask each position can see the very token it must
predict, so the training loss collapses while the samples are garbage.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    """Both runs of the experiment (a masked and an unmasked run): their metrics rows, their samples and the explanation to show."""

    curves: dict[str, list[dict]]  # 'masked' / 'unmasked' -> the trainer's metrics rows
    samples: dict[str, str]
    explanation: str

    def final_train_loss(self, label: str) -> float:
        return self.curves[label][-1]["train_loss"]
