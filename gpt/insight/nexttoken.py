"""The next-token distribution, and what the sampling knobs do to it.

Shows the same numbers the sampler uses (`gpt.engine.filtered_probs`):
softmax(logits / T), then top-k, then top-p, next to the untouched
distribution, so a student sees which tokens each knob removes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine import SamplingSettings, draw, filtered_probs
from ..errors import GPTError
from ..tokenizer import Tokenizer
from .tokens import prompt_tensor, show_piece


@dataclass
class NextTokenView:
    """What the model predicts after a prompt, before and after the sampling knobs."""

    ids: list[int]  # the prompt as the model saw it
    logits: torch.Tensor  # (vocab,)
    raw: torch.Tensor  # (vocab,) softmax(logits): temperature 1, no filter
    tempered: torch.Tensor  # (vocab,) softmax(logits / T), before top-k / top-p
    probs: torch.Tensor  # (vocab,) what the sampler draws from (gpt.engine.filtered_probs)
    cut: list[int]  # ids the filters set to zero although the temperature left them some mass
    rows: list[dict]  # the top_n tokens by probability: rank, id, piece, raw, tempered, prob, cut
    temperature: float
    top_k: int | None
    top_p: float | None
    notes: list[str]


@torch.no_grad()
def next_token_view(model: torch.nn.Module, tokenizer: Tokenizer, prompt: str, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None, top_n: int = 20) -> NextTokenView:
    """The top_n next tokens under softmax(logits / T) with top-k and top-p applied.

    Temperature 0 is greedy: all mass on the argmax, as in `sample_next_token`.
    A top_k of 0 and a top_p of 1 mean "off" (what an empty UI field sends).
    """
    settings = SamplingSettings.from_values(1, temperature, top_k, top_p)  # the page's convention, types checked
    notes = settings.validate(tokenizer.vocab_size)  # SamplingError for impossible values
    idx = prompt_tensor(model, tokenizer, prompt)
    was_training = model.training
    model.eval()
    try:
        logits = model(idx, last_only=True)[0][0, -1].float().cpu()  # (vocab,)
    finally:
        model.train(was_training)
    raw = torch.softmax(logits, dim=-1)
    if settings.temperature == 0:
        tempered = torch.zeros_like(raw).scatter(0, logits.argmax().view(1), 1.0)
        probs = tempered
    else:
        tempered = filtered_probs(logits, settings.temperature)
        probs = filtered_probs(logits, settings.temperature, settings.top_k, settings.top_p)
    cut_mask = (probs == 0) & (tempered > 0)
    order = torch.argsort(raw, descending=True)[:top_n]  # temperature keeps the order, filters keep a prefix
    rows = [dict(rank=r + 1, id=i, piece=tokenizer.decode([i]), raw=raw[i].item(), tempered=tempered[i].item(),
                 prob=probs[i].item(), cut=bool(cut_mask[i])) for r, i in enumerate(order.tolist())]
    return NextTokenView(idx[0].tolist(), logits, raw, tempered, probs, cut_mask.nonzero().flatten().tolist(), rows,
                         float(settings.temperature), settings.top_k, settings.top_p, notes)


def token_choices(view: NextTokenView) -> list[tuple[str, int]]:
    """(label, id) pairs for a dropdown: "'e'  31.2%"; cut tokens say so."""
    return [(f"{show_piece(r['piece'])}  {100 * r['prob']:.1f}%" + ("  (cut)" if r["cut"] else ""), r["id"])
            for r in view.rows]


def pick_token(view: NextTokenView, seed: int | None = None) -> int:
    """Draw one id from `view.probs`, as the sampler would (greedy at temperature 0)."""
    if view.temperature == 0:
        return int(view.probs.argmax())
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return int(draw(view.probs[None], gen))


def step_forward(prompt: str, token: int | str, tokenizer: Tokenizer | None = None) -> str:
    """The prompt with one more token: an id (decoded with `tokenizer`) or the token's text."""
    if isinstance(token, str):
        return (prompt or "") + token
    if tokenizer is None:
        raise GPTError("step_forward needs the tokenizer to turn a token id into text.")
    return (prompt or "") + tokenizer.decode([int(token)])
