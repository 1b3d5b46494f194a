"""Next token: the distribution after a prompt, redrawn as temperature, top-k and top-p move.

The tokens the filters cut are drawn grey; append a chosen token or sample
one and step forward, one token at a time, as the sampler does. The bars are
drawn by the browser from every logit (`gpt.plots.next_token_chart`,
`next_token_chart.js`): a slider's move redraws them at once, as it moves,
and the server's answer (the status, the token list) follows; the same
figure as a PNG, for the download button, is rendered after that.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from ... import insight
from ... import plots as figures
from ...errors import GPTError
from ..figure_downloads import NO_FILE, download, export_file, png_button
from ..messages import problem
from ..page import PRIVATE
from .base import View, refresh_button

NEXT_TOKEN_PROMPT = "First Citizen:\nBefore we proceed"
CHART_JS = (Path(__file__).parent / "next_token_chart.js").read_text(encoding="utf-8")


class NextTokenView(View):
    def _distribution(self, owner, run, prompt, temperature, top_k, top_p):
        """(the opened run, its `insight.NextTokenView` after `prompt`); raises GPTError as a sentence."""
        loaded = self._open(owner, run)
        return loaded, insight.next_token_view(loaded.model, loaded.tokenizer, prompt or "", temperature, top_k, top_p)

    def show(self, owner, run, prompt, temperature=1.0, top_k=0, top_p=1.0, note: str = "", chart: bool = True):
        """(chart, token dropdown, status, download button) for what the model may write after `prompt`; the
        button waits for `png`. `chart=False`: the chart is left as it is (`retune`)."""
        try:
            loaded, view = self._distribution(owner, run, prompt, temperature, top_k, top_p)
        except Exception as err:  # noqa: BLE001
            return ("null" if chart else gr.skip()), gr.update(choices=[], value=None), problem(err, toast=False), \
                dict(NO_FILE)
        data = json.dumps(figures.next_token_chart(view)) if chart else gr.skip()
        choices = insight.token_choices(view)
        kept = int((view.probs > 0).sum())
        status = " ".join(filter(None, [
            note, f"{self._at(run, loaded)} reads {len(view.ids)} tokens. {kept:,} of its "
                  f"{loaded.tokenizer.vocab_size:,} tokens can be drawn; {len(view.cut):,} are cut by top-k / top-p.",
            *view.notes]))
        return data, gr.update(choices=choices, value=choices[0][1] if choices else None), status, dict(NO_FILE)

    def retune(self, owner, run, prompt, temperature=1.0, top_k=0, top_p=1.0):
        """`show` for a slider's move: the browser has redrawn the bars from the logits it has, so only the
        token list, the status and the download change (the logits are 200 KB for GPT-2's vocabulary)."""
        return self.show(owner, run, prompt, temperature, top_k, top_p, chart=False)

    def png(self, owner, run, prompt, temperature=1.0, top_k=0, top_p=1.0):
        """The download button offering the chart as a PNG (the matplotlib figure), once the chart is shown."""
        try:
            _, view = self._distribution(owner, run, prompt, temperature, top_k, top_p)
        except Exception:  # noqa: BLE001 - `show` has said what is wrong
            return dict(NO_FILE)
        return download(export_file(f"next-token-{run}", figures.next_token_figure, view))

    def append(self, owner, run, prompt, token, temperature=1.0, top_k=0, top_p=1.0):
        """Append the chosen token to the prompt, then show the next distribution: (prompt, *show)."""
        if token is None or token == "":
            return (gr.skip(), gr.skip(), gr.skip(), problem(GPTError("Choose a token first."), toast=False), gr.skip())
        try:
            tok = self._open(owner, run).tokenizer
            new = insight.step_forward(prompt or "", int(token), tok)
        except Exception as err:  # noqa: BLE001
            return (gr.skip(), gr.skip(), gr.skip(), problem(err, toast=False), gr.skip())
        piece = insight.show_piece(tok.decode([int(token)]))
        return (new, *self.show(owner, run, new, temperature, top_k, top_p, note=f"Appended '{piece}'."))

    def sample(self, owner, run, prompt, temperature=1.0, top_k=0, top_p=1.0, seed=None):
        """Draw one token as the sampler would, append it, show the next distribution."""
        try:
            loaded, view = self._distribution(owner, run, prompt, temperature, top_k, top_p)
            token = insight.pick_token(view, seed)
        except Exception as err:  # noqa: BLE001
            return (gr.skip(), gr.skip(), gr.skip(), problem(err, toast=False), gr.skip())
        new = insight.step_forward(prompt or "", token, loaded.tokenizer)
        note = (f"Sampled '{insight.show_piece(loaded.tokenizer.decode([token]))}' "
                f"(it had {100 * view.probs[token].item():.1f}%).")
        return (new, *self.show(owner, run, new, temperature, top_k, top_p, note=note))


def build_next_token_view(v: NextTokenView, who) -> tuple[gr.Tab, dict]:
    with gr.Tab("Next token", id="v-next", elem_id="v-next") as tab:
        with gr.Row():
            run = gr.Dropdown(label="Model", scale=5, elem_id="nt-run")
            refresh = refresh_button("nt-refresh")
        prompt = gr.Textbox(NEXT_TOKEN_PROMPT, label="Prompt (Shift+Enter to redraw)", lines=2, elem_id="nt-prompt")
        with gr.Row():
            temperature = gr.Slider(0, 2, 1.0, step=0.05, label="Temperature (0 = greedy)", elem_id="nt-temperature")
            top_k = gr.Slider(0, 100, 0, step=1, label="Top-k (0 = off)", elem_id="nt-top-k")
            top_p = gr.Slider(0.05, 1.0, 1.0, step=0.05, label="Top-p (1 = off)", elem_id="nt-top-p")
        plot = gr.HTML("null", html_template='<div class="nt-chart"></div>', js_on_load=CHART_JS,
                       elem_id="nt-plot")  # the bars, drawn by the browser from the logits in its value
        with gr.Row(equal_height=True):
            token = gr.Dropdown(label="Top tokens", scale=3, elem_id="nt-token")
            append = gr.Button("Append this token", scale=1, elem_id="nt-append")
            sample = gr.Button("Sample one", variant="primary", scale=1, elem_id="nt-sample")
            png = png_button("nt-png")
        status = gr.Markdown(elem_id="nt-status")

    knobs = [temperature, top_k, top_p]
    out = [plot, token, status, png]
    then_png = dict(fn=v.png, inputs=[who, run, prompt, *knobs], outputs=png, show_progress="hidden", **PRIVATE)
    gr.on([run.change, prompt.submit], v.show, [who, run, prompt, *knobs], out, trigger_mode="always_last",
          **PRIVATE).success(**then_png)
    gr.on([k.change for k in knobs], v.retune, [who, run, prompt, *knobs], out, trigger_mode="always_last",
          show_progress="hidden", **PRIVATE).success(**then_png)  # the bars were redrawn as the slider moved
    append.click(v.append, [who, run, prompt, token, *knobs], [prompt, *out], **PRIVATE).success(**then_png)
    sample.click(v.sample, [who, run, prompt, *knobs], [prompt, *out], **PRIVATE).success(**then_png)
    show_runs = dict(fn=v.model_runs, inputs=[who, run], outputs=run, **PRIVATE)
    refresh.click(**show_runs)
    tab.select(**show_runs)
    return tab, show_runs
