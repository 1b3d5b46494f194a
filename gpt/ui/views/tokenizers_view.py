"""Tokenizers: one text cut by the character tokenizer, GPT-2's and a BPE trained on the Train tab's corpus.

GPT-2's row says why when its vocabulary cannot be had (offline); the rows
show the pieces with their ids, counts, characters per token, vocabulary
size and the embedding cost at the Train tab's width.
"""

from __future__ import annotations

import html

import gradio as gr

from ... import corpus as corpora
from ... import plots as figures
from ...errors import GPTError
from ...tokcompare import compare_tokenizers
from ..figure_downloads import NO_FILE, download, export, png_button
from ..messages import problem
from ..page import PRIVATE
from ..token_html import token_boxes
from .base import View

MAX_SHOWN_TOKENS = 300


class TokenizersView(View):
    def show(self, text, corpus_choice, upload=None, pasted=None, vocab_size=None, n_embd=128):
        """(table of coloured pieces and numbers, figure, status, PNG): every tokenizer on one text."""
        try:
            corpus = corpora.load(corpus_choice, upload, pasted, max_bytes=self.m.limits.max_upload_bytes)
        except Exception as err:  # noqa: BLE001
            return "", None, problem(err, toast=False), dict(NO_FILE)
        text = text or corpora.sample_sentence(corpus.text)
        vocab = int(vocab_size or corpora.BPE_VOCAB_DEFAULT)
        kinds = {"char": "char", "gpt2 (compact)": "gpt2", f"bpe {vocab:,} (trained here)": "bpe"}
        built, failed = {}, {}
        for label, kind in kinds.items():
            try:
                built[label] = corpora.dataset(corpus, kind, vocab).tokenizer
            except GPTError as err:  # GPT-2 offline: its row says why
                failed[label] = str(err)
        rows = {r["name"]: r for r in compare_tokenizers(text, built, int(n_embd or 128))}
        rows = [rows.get(label) or dict(name=label, vocab_size=None, embedding_params=None, pieces=[], n_tokens=None,
                                        chars_per_token=None, error=failed[label]) for label in kinds]
        fig, png = export("tokenizers", figures.tokenizer_figure, rows)
        status = (f"{len(text):,} characters; tokenizers built on **{corpus.name}** (the Train tab's corpus); "
                  f"embedding cost at width {int(n_embd or 128)} (the Train tab's n_embd).")
        return tokenizer_table_html(rows), fig, status, download(png)


def tokenizer_table_html(rows: list[dict]) -> str:
    """One row per tokenizer: the text cut into coloured pieces (ids underneath), then the numbers."""
    head = ("<tr><th>tokenizer</th><th>the text, cut into tokens (id under each)</th><th>tokens</th>"
            "<th>chars/token</th><th>vocab</th><th>embedding params</th></tr>")
    body = []
    for r in rows:
        if r["error"] is not None:
            cut = f'<span class="msg-error">{html.escape(r["error"])}</span>'
        else:
            cut = token_boxes(r["pieces"], MAX_SHOWN_TOKENS)

        def num(v, fmt="{:,}"):
            return "-" if v is None else fmt.format(v)

        body.append(f"<tr><td><b>{html.escape(r['name'])}</b></td><td>{cut}</td><td>{num(r['n_tokens'])}</td>"
                    f"<td>{num(r['chars_per_token'], '{:.2f}')}</td><td>{num(r['vocab_size'])}</td>"
                    f"<td>{num(r['embedding_params'])}</td></tr>")
    return f'<table class="tok-compare">{head}{"".join(body)}</table>'


def build_tokenizers_view(v: TokenizersView, train) -> gr.Tab:
    with gr.Tab("Tokenizers", id="v-tokens", elem_id="v-tokens") as tab:
        gr.Markdown("Each tokenizer is built on the corpus chosen in the **Train** tab (the BPE at its vocabulary "
                    "size). A bigger vocabulary cuts text into fewer tokens but costs `vocab × n_embd` embedding "
                    "parameters.")
        with gr.Row():
            text = gr.Textbox(label="Text (Shift+Enter to compare)", lines=2, scale=5, elem_id="tok-text",
                              placeholder="Empty: the first lines of the corpus")
            btn = gr.Button("Compare", variant="primary", scale=1, elem_id="tok-btn")
        status = gr.Markdown(elem_id="tok-status")
        table = gr.HTML(elem_id="tok-table")
        plot = gr.Plot(show_label=False, elem_id="tok-plot")
        png = png_button("tok-png")
    show = dict(fn=v.show, inputs=[text, train.corpus, train.upload, train.pasted, train.bpe_vocab, train.n_embd],
                outputs=[table, plot, status, png], **PRIVATE)
    for event in (tab.select, btn.click, text.submit):
        event(**show)
    return tab
