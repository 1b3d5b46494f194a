"""Tokens drawn as coloured boxes: the one renderer the page uses for pieces of text.

The lecture's first picture: a sentence cut into tokens, each box with its id
underneath and whitespace made visible (`gpt.insight.show_piece`), so the
char / BPE trade-off is visible at a glance. The Train tab's preview and the
'Tokenizers' view both draw with `token_boxes`.
"""

from __future__ import annotations

import html

from ..errors import GPTError
from ..insight import show_piece
from ..tokenizer import Tokenizer

PALETTE = ("#fde68a", "#bbf7d0", "#bfdbfe", "#fbcfe8", "#ddd6fe", "#fed7aa", "#a5f3fc", "#d9f99d")


def token_boxes(pieces: list[tuple[str, int]], max_tokens: int = 300, colours: list[str] | None = None) -> str:
    """(piece, id) pairs as coloured boxes, the id under each; past `max_tokens`, a count of the rest.
    `colours`: one per piece (the chat mask: trained or given); else the palette in turn, so neighbours differ."""
    shown = pieces[:max_tokens]
    colours = colours or [PALETTE[k % len(PALETTE)] for k in range(len(shown))]
    boxes = [f'<span class="tok" style="background:{colours[k]}" title="token id {tid}">'
             f'<span class="tok-text">{html.escape(show_piece(piece))}</span><span class="tok-id">{tid}</span></span>'
             for k, (piece, tid) in enumerate(shown)]
    more = len(pieces) - len(shown)
    tail = f'<span class="tok-more">... {more:,} more</span>' if more > 0 else ""
    return f'<div class="tok-preview">{"".join(boxes)}{tail}</div>'


def preview_html(tokenizer: Tokenizer, text: str, max_tokens: int = 120) -> str:
    """`text` cut by `tokenizer`, with a caption: characters, tokens, characters per token."""
    try:
        pieces = tokenizer.pieces(text)
    except GPTError as err:
        return f'<div class="tok-preview tok-error">{html.escape(str(err))}</div>'
    ratio = len(text) / max(1, len(pieces))
    caption = (f'<div class="tok-caption">{len(text)} characters &rarr; {len(pieces)} tokens '
               f'({ratio:.2f} characters per token)</div>')
    return token_boxes(pieces, max_tokens) + caption


TOKENS_CSS = """
.tok-preview { font-family: ui-monospace, monospace; line-height: 1.1; }
.tok { display: inline-flex; flex-direction: column; align-items: center; color: #111;
       border-radius: 4px; padding: 2px 3px; margin: 2px 1px; }
.tok-text { white-space: pre; font-size: 15px; }
.tok-id { font-size: 10px; opacity: .65; }
.tok-more, .tok-caption { font-size: 12px; opacity: .75; margin-top: 4px; }
.tok-error { color: #b91c1c; }
"""
