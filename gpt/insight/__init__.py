"""Look inside a GPT: the numbers behind the app's teaching views.

Each module answers one question a student asks during the lecture and
returns plain values (lists, dicts, tensors). `gpt.plots` draws them and
`app.py` wires them to widgets; nothing here imports matplotlib or gradio.

- `tokens`     token text made visible (`show_piece`), a prompt as the model reads it
- `attention`  where each head looks: (n_layer, n_head, T, T) (`attention_maps`)
- `nexttoken`  what may come next, and what temperature, top-k and top-p do
               to that distribution (`next_token_view`, `step_forward`)
- `anatomy`    where the parameters are, and the true shape of every tensor
               in one forward pass (`parameter_rows`, `shape_trace`)
- `runs`       the fixed-seed sample at each evaluation, several runs side
               by side, a run's metrics as CSV
- `mask`       why the causal mask: the explanation beside the two runs

(Named `insight`, not `inspect`, so it never hides the standard library's
`inspect` from a script run inside this folder.)
"""

from .anatomy import COMPONENTS, parameter_rows, shape_trace
from .attention import AttentionMaps, attention_maps, attention_pass, strongest_links
from .mask import MASK_EXPLANATION, MaskExperiment
from .nexttoken import NextTokenView, next_token_view, pick_token, step_forward, token_choices
from .runs import RunSummary, load_run, metrics_to_csv, runs_table, sample_timeline, timeline_html, write_csv
from .tokens import prompt_tensor, show_piece

__all__ = [
    "COMPONENTS", "parameter_rows", "shape_trace",
    "AttentionMaps", "attention_maps", "attention_pass", "strongest_links",
    "MASK_EXPLANATION", "MaskExperiment",
    "NextTokenView", "next_token_view", "pick_token", "step_forward", "token_choices",
    "RunSummary", "load_run", "metrics_to_csv", "runs_table", "sample_timeline", "timeline_html", "write_csv",
    "prompt_tensor", "show_piece",
]
