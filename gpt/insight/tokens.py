"""Token text made visible, and tokenizers side by side.

`show_piece` makes whitespace tokens visible on a slide; the other
functions turn `gpt.tokcompare.compare_tokenizers` rows into what a page
shows: (text, label) pairs for gr.HighlightedText, coloured HTML spans
with the id on hover, and a table of the compression / vocabulary trade-off.
"""

from __future__ import annotations

import html

import torch

from ..sample import prompt_to_ids
from ..tokcompare import compare_tokenizers
from ..tokenizer import Tokenizer


def show_piece(piece: str) -> str:
    """A token's text made visible on a slide: newline as ⏎, tab as ⇥, space as ␣."""
    return piece.replace("\n", "⏎").replace("\t", "⇥").replace(" ", "␣") or "∅"


def prompt_tensor(model: torch.nn.Module, tokenizer: Tokenizer, prompt: str) -> torch.Tensor:
    """The prompt as a (1, T) id tensor on the model's device, exactly as the sampler would feed it."""
    ids, _ = prompt_to_ids(tokenizer, prompt, model.config.block_size)  # empty -> start token; long -> cropped
    return torch.tensor([ids], device=next(model.parameters()).device)  # (1, T)


PALETTE = ("#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad")


def highlighted_pieces(pieces: list[tuple[str, int]]) -> list[tuple[str, str]]:
    """(text, label) pairs for gr.HighlightedText; the label is the token id."""
    return [(piece, str(i)) for piece, i in pieces]


def piece_color_map(pieces: list[tuple[str, int]]) -> dict[str, str]:
    """A colour per id label for gr.HighlightedText (the same id always gets the same colour)."""
    return {str(i): PALETTE[i % len(PALETTE)] for _, i in pieces}


def pieces_html(pieces: list[tuple[str, int]], show_ids: bool = False) -> str:
    """Tokens as coloured spans, neighbours always in different colours; the id shows on hover."""
    spans = []
    for n, (piece, i) in enumerate(pieces):
        text = html.escape(piece).replace("\n", "⏎<br>")
        sub = f"<sub style='font-size:0.6em;color:#555'>{i}</sub>" if show_ids else ""
        spans.append(f"<span title='id {i}' style='background:{PALETTE[n % len(PALETTE)]};border-radius:3px;"
                     f"padding:1px 0;margin:0 1px'>{text}{sub}</span>")
    return ("<div style='font-family:monospace;font-size:1.15em;line-height:2;white-space:pre-wrap'>"
            + "".join(spans) + "</div>")


def tokenizer_views(text: str, tokenizers: dict[str, Tokenizer], n_embd: int = 128) -> list[dict]:
    """`gpt.tokcompare.compare_tokenizers` rows plus 'highlighted' and 'html' for display."""
    rows = compare_tokenizers(text, tokenizers, n_embd)
    for row in rows:
        row["highlighted"] = highlighted_pieces(row["pieces"])
        row["html"] = pieces_html(row["pieces"]) if row["error"] is None else f"<p>{html.escape(row['error'])}</p>"
    return rows


def tokenizer_table(rows: list[dict]) -> tuple[list[str], list[list]]:
    """(headers, rows) for a gr.Dataframe: the compression / vocabulary trade-off in numbers."""
    headers = ["tokenizer", "vocab size", "tokens", "chars / token", "embedding params"]
    return headers, [[r["name"], r["vocab_size"], r["n_tokens"] if r["error"] is None else "cannot encode",
                      None if r["chars_per_token"] is None else round(r["chars_per_token"], 2), r["embedding_params"]]
                     for r in rows]
