"""Look inside a GPT: the numbers behind the app's teaching views.

Each module answers one question a student asks during the lecture and
returns plain values (lists, dicts, tensors). `gpt.plots` draws them and
`app.py` wires them to widgets; nothing here imports matplotlib or gradio.

- `tokens`     how tokenizers cut the same text (`tokenizer_views`)
- `attention`  where each head looks: (n_layer, n_head, T, T) (`attention_maps`)
- `nexttoken`  what may come next, and what temperature, top-k and top-p do
               to that distribution (`next_token_view`, `step_forward`)
- `anatomy`    where the parameters are, and the true shape of every tensor
               in one forward pass (`parameter_rows`, `shape_trace`)
- `runs`       the fixed-seed sample at each evaluation, several runs side
               by side, a run's metrics as CSV
- `mask`       train with and without the causal mask and see who cheats

(Named `insight`, not `inspect`, so it never hides the standard library's
`inspect` from a script run inside this folder.)
"""

from .anatomy import COMPONENTS, parameter_rows, shape_trace
from .attention import AttentionMaps, attention_maps, attention_pass, strongest_links
from .mask import MASK_EXPLANATION, MaskExperiment, why_the_mask
from .nexttoken import NextTokenView, next_token_view, pick_token, step_forward, token_choices
from .runs import (RunSummary, find_runs, load_run, metrics_to_csv, runs_table, sample_timeline, timeline_html,
                   timeline_markdown, write_csv)
from .tokens import (PALETTE, highlighted_pieces, piece_color_map, pieces_html, prompt_tensor, show_piece,
                     tokenizer_table, tokenizer_views)

__all__ = [
    "COMPONENTS", "parameter_rows", "shape_trace",
    "AttentionMaps", "attention_maps", "attention_pass", "strongest_links",
    "MASK_EXPLANATION", "MaskExperiment", "why_the_mask",
    "NextTokenView", "next_token_view", "pick_token", "step_forward", "token_choices",
    "RunSummary", "find_runs", "load_run", "metrics_to_csv", "runs_table", "sample_timeline", "timeline_html",
    "timeline_markdown", "write_csv",
    "PALETTE", "highlighted_pieces", "piece_color_map", "pieces_html", "prompt_tensor", "show_piece",
    "tokenizer_table", "tokenizer_views",
]
