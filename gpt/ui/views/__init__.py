"""The 'See inside the model' tab: one module per view, each its handlers beside its layout.

Matching `gpt.insight` (the numbers) and `gpt.plots` (the figures):

- `attention_view` one head's heatmap and every head at once, for a prompt
- `next_token_view` the distribution after temperature, top-k and top-p; step forward
- `tokenizers_view` char, GPT-2 and a BPE of the chosen corpus cutting one text
- `anatomy_view` parameters per component and every tensor shape
- `watch_view`  the loss curve of a run next to the sample of each evaluation
- `compare_view` runs side by side, against step or wall time, and a table
- `mask_view`   a masked and an unmasked run, trained as two normal runs

Two views poll (watch, mask); their timers tick only while their view is on
show, and every other tab of the page pauses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..page import PRIVATE, Page
from .anatomy_view import AnatomyView, build_anatomy_view
from .attention_view import AttentionView, build_attention_view
from .compare_view import CompareView, build_compare_view
from .mask_view import MaskView, build_mask_view
from .next_token_view import NextTokenView, build_next_token_view
from .tokenizers_view import TokenizersView, build_tokenizers_view
from .watch_view import WatchView, build_watch_view

VIEWS_CSS = """  /* projector-sized tables and samples */
.tok-compare { width: 100%; border-collapse: collapse; font-size: 17px; }
.tok-compare th, .tok-compare td { border-bottom: 1px solid #e5e7eb; padding: 6px 8px; text-align: right;
                                   vertical-align: top; }
.tok-compare th { white-space: nowrap; }
.tok-compare th:nth-child(-n+2), .tok-compare td:nth-child(-n+2) { text-align: left; }
.tok-compare td:nth-child(2) { width: 62%; }
.tok-compare .tok-text { font-size: 19px; }
.tok-compare .tok-id { font-size: 12px; }
.sample-timeline { max-height: 640px; overflow-y: auto; font-size: 16px; }
.sample-timeline pre { font-size: 15px; background: #f8fafc; padding: 6px; border-radius: 4px; }
#views-tab .prose p, #views-tab .prose li { font-size: 17px; }
#views-tab .matplotlib img { max-width: 100%; height: auto; }
"""


@dataclass
class Views:
    """Every view's handlers, sharing one run service and model cache."""

    attention: AttentionView
    next_token: NextTokenView
    tokenizers: TokenizersView
    anatomy: AnatomyView
    watch: WatchView
    compare: CompareView
    mask: MaskView

    @classmethod
    def of(cls, manager, models=None) -> "Views":
        return cls(*(kind(manager, models) for kind in (AttentionView, NextTokenView, TokenizersView, AnatomyView,
                                                        WatchView, CompareView, MaskView)))


def build_views_tab(page: Page) -> gr.Tab:
    """Lay out the tab inside the page's gr.Tabs and wire it; the page's other tabs pause its timers."""
    v, who = Views.of(page.manager, page.models), page.who
    with gr.Tab("5 · See inside the model", id="inside", elem_id="views-tab") as tab:
        with gr.Tabs(elem_id="views-tabs"):
            t_att, att_runs = build_attention_view(v.attention, who)
            t_next, nt_runs = build_next_token_view(v.next_token, who)
            t_tok = build_tokenizers_view(v.tokenizers, page.train)
            t_anat = build_anatomy_view(v.anatomy, who, page.train)
            t_watch, watch_timer = build_watch_view(v.watch, who)
            t_cmp = build_compare_view(v.compare, who)
            t_mask, mask_timer = build_mask_view(v.mask, who)
        open_view = gr.State("v-attention")  # the sub-tab on show, so coming back to this tab resumes its timer

    timers = [watch_timer, mask_timer]
    live = {"v-watch": watch_timer, "v-mask": mask_timer}

    def timers_for(view: str | None):
        """Timer updates with only `view`'s timer running (None: all paused)."""
        return tuple(gr.Timer(active=live.get(view) is t) for t in timers)

    subs = {"v-attention": t_att, "v-next": t_next, "v-tokens": t_tok, "v-anatomy": t_anat, "v-watch": t_watch,
            "v-compare": t_cmp, "v-mask": t_mask}
    for view, sub in subs.items():
        sub.select(lambda view=view: (view, *timers_for(view)), None, [open_view, *timers], **PRIVATE)
    for other in page.tabs:
        other.select(lambda: timers_for(None), None, timers, **PRIVATE)
    tab.select(timers_for, open_view, timers, **PRIVATE).then(**att_runs).then(**nt_runs)
    return tab
