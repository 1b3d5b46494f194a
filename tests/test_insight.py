"""Look-inside views: attention, next-token bars, tokenizers, anatomy, timeline, runs, the mask, export.

Tiny models only; the whole module runs in well under a minute on one CPU core.
"""

import csv
import io
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt import plots
from gpt.data import Dataset
from gpt.engine import filtered_probs
from gpt.errors import GPTError, SamplingError
from gpt.engine import SamplingSettings, generate
from gpt.insight import (MASK_EXPLANATION, MaskExperiment, attention_maps, attention_pass, load_run, metrics_to_csv,
                         next_token_view, parameter_rows, pick_token, runs_table, sample_timeline, shape_trace,
                         show_piece, step_forward, strongest_links, timeline_html, token_choices, write_csv)
from gpt.tokcompare import compare_tokenizers
from gpt.ui.token_html import token_boxes
from gpt.model import ARCHITECTURES, MODEL_PRESETS, GPTConfig, build_model, parameter_breakdown
from gpt.tokenizer import CharTokenizer
from gpt.tokenizers import build_tokenizer
from gpt.train import Trainer
from gpt.train import configs_from

HERE = os.path.dirname(os.path.abspath(__file__))
SHAKESPEARE = [os.path.join(os.environ.get("GPT_DATA_DIR", "data"), "tinyshakespeare.txt"),
               os.path.join(HERE, "..", "data", "tinyshakespeare.txt"),
               os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare.txt")]
FALLBACK = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
            "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
            "ROMEO:\nWhat light through yonder window breaks? R&J\n\n") * 60
PROMPT = "ROMEO:\nWhat light"


def _shakespeare() -> str | None:
    for path in SHAKESPEARE:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return f.read()
    return None


TEXT = _shakespeare() or FALLBACK


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread: on a shared 2-core machine two threads per process are many times slower."""
    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPT_NUM_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_text(TEXT)


def tiny(tok, arch="classic", **kw):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tok.vocab_size, **MODEL_PRESETS["tiny"], **{**ARCHITECTURES[arch], **kw})
    return build_model(cfg).eval()


def _embed(model, idx):
    """The input of block 0, and the rotary tables (None for learned positions)."""
    x, rope = model.transformer.wte(idx), None
    if model.config.pos_emb == "learned":
        x = x + model.transformer.wpe(torch.arange(idx.size(1)))
    else:
        rope = model.rotary(0, idx.size(1))
    return (model.transformer.ln_emb(x) if model.config.embed_norm else x), rope


# --- attention -------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["classic", "modern"])
def test_attention_rows_sum_to_one_and_future_is_exactly_zero(tok, arch):
    maps = attention_maps(tiny(tok, arch), tok, PROMPT)
    T = len(tok.encode(PROMPT))
    assert maps.weights.shape == (2, 2, T, T)
    assert maps.pieces == list(PROMPT) and maps.causal
    assert torch.allclose(maps.weights.sum(-1), torch.ones(2, 2, T), atol=1e-6)
    assert (maps.weights.triu(1) == 0).all()  # exactly zero, not just small
    assert (maps.weights[..., torch.ones(T, T, dtype=torch.bool).tril()] > 0).all()  # the past always gets some


def test_without_the_mask_attention_reaches_the_future(tok):
    maps = attention_maps(tiny(tok, causal=False), tok, PROMPT)
    assert not maps.causal
    T = len(maps.pieces)
    assert (maps.weights[..., torch.ones(T, T, dtype=torch.bool).triu(1)] > 0).all()
    assert torch.allclose(maps.weights.sum(-1), torch.ones(maps.weights.shape[:-1]), atol=1e-6)


@pytest.mark.parametrize("arch", ["classic", "modern", "nanochat"])
@pytest.mark.parametrize("causal", [True, False])
def test_manual_pass_reproduces_the_model(tok, arch, causal):
    nanochat = dict(norm="rms", embed_norm=True) if arch == "nanochat" else {}
    model = tiny(tok, "modern" if nanochat else arch, causal=causal, **nanochat)
    idx = torch.randint(tok.vocab_size, (2, 11), generator=torch.Generator().manual_seed(1))
    weights, logits, max_error = attention_pass(model, idx)
    assert weights.shape == (2, 2, 2, 11, 11)  # (n_layer, B, nh, T, T)
    assert torch.allclose(logits, model(idx)[0], atol=1e-6)  # the final logits are model(idx)'s
    assert max_error < 1e-5  # each layer rebuilt from our weights equals the layer itself
    # and directly: our weights times v is what scaled_dot_product_attention computes
    x, rope = _embed(model, idx)
    q, k, v = model.transformer.h[0].attn.qkv(model.transformer.h[0].ln_1(x), rope)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert torch.allclose(weights[0] @ v, expected, atol=1e-6)


def test_bigram_has_no_attention(tok):
    bigram = build_model(GPTConfig(vocab_size=tok.vocab_size, model_type="bigram"))
    with pytest.raises(GPTError, match="bigram model has no attention"):
        attention_maps(bigram, tok, PROMPT)


def test_attention_figures_blank_the_future_and_label_tokens(tok):
    maps = attention_maps(tiny(tok), tok, PROMPT)
    T = len(maps.pieces)
    fig = plots.attention_figure(maps, layer=1, head=1)
    image = fig.axes[0].images[0].get_array()
    future = torch.ones(T, T, dtype=torch.bool).triu(1).numpy()
    assert (image.mask == future).all()  # masked cells drawn as "bad" (grey), the rest coloured
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [show_piece(p) for p in maps.pieces]
    assert "⏎" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    grid = plots.attention_grid_figure(maps)
    mosaic = plots.attention_mosaic(maps)  # 2 layers x 2 heads, one blank cell between tiles
    assert mosaic.shape == (2 * T + 1, 2 * T + 1)
    tile = mosaic[T + 1 :, : T]  # layer 1, head 0
    assert np.allclose(np.nan_to_num(tile), maps.head(1, 0).numpy() * ~future)
    assert np.isnan(tile[future]).all() and np.isnan(mosaic[T]).all()  # the future and the gaps are blank
    assert grid.axes[0].images[0].get_array().shape[:2] == mosaic.shape  # every head in one image
    with pytest.raises(GPTError, match="layer in 0..1"):
        maps.head(2, 0)
    assert len(strongest_links(maps, 0, 0)) == T


# --- next token ------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, None, None), (0.7, 5, None), (1.3, None, 0.8),
                                                     (0.5, 10, 0.9), (2.0, 0, 1.0)])
def test_bars_are_softmax_over_temperature_after_the_filters(tok, temperature, top_k, top_p):
    model = tiny(tok)
    view = next_token_view(model, tok, PROMPT, temperature, top_k, top_p, top_n=tok.vocab_size)
    logits = model(torch.tensor([tok.encode(PROMPT)]))[0][0, -1]
    expected = filtered_probs(logits, temperature, top_k or None, top_p if top_p and top_p < 1 else None)
    tempered = torch.softmax(logits / temperature, dim=-1)
    assert torch.allclose(view.probs, expected, atol=1e-7)
    assert torch.allclose(view.raw, torch.softmax(logits, -1), atol=1e-7)
    assert math.isclose(view.probs.sum().item(), 1.0, rel_tol=1e-5)
    assert sorted(view.cut) == ((expected == 0) & (tempered > 0)).nonzero().flatten().tolist()
    if top_k:  # top-k keeps k tokens; top-p after it may keep fewer
        kept = int((view.probs > 0).sum())
        assert kept == top_k if not top_p or top_p >= 1 else 1 <= kept <= top_k
    fig = plots.next_token_figure(view)
    bars = {c.get_label(): [p.get_height() for p in c.patches] for c in fig.axes[0].containers}
    order = [r["id"] for r in view.rows]
    assert bars["sampled from (after T and filters)"] == pytest.approx(expected[order].tolist(), abs=1e-7)
    cut_heights = [tempered[i].item() if i in set(view.cut) else 0.0 for i in order]
    assert bars["cut by top-k / top-p"] == pytest.approx(cut_heights, abs=1e-6)
    assert bars["model's own (T = 1, no filter)"] == pytest.approx(torch.softmax(logits, -1)[order].tolist(), abs=1e-7)


def test_temperature_zero_is_greedy_and_stepping_appends_the_token(tok):
    model = tiny(tok)
    view = next_token_view(model, tok, PROMPT, temperature=0, top_n=5)
    best = int(view.logits.argmax())
    assert view.probs[best] == 1 and view.probs.sum() == 1
    assert pick_token(view) == best and view.rows[0]["id"] == best
    assert step_forward(PROMPT, best, tok) == PROMPT + tok.decode([best])
    assert step_forward("ab", "c") == "abc"
    sampled = next_token_view(model, tok, PROMPT, temperature=1.0, top_k=3)
    assert pick_token(sampled, seed=7) == pick_token(sampled, seed=7)
    assert pick_token(sampled, seed=7) in [r["id"] for r in sampled.rows[:3]]
    assert len(token_choices(sampled)) == len(sampled.rows)
    with pytest.raises(SamplingError, match="Temperature"):
        next_token_view(model, tok, PROMPT, temperature=-1)
    with pytest.raises(GPTError, match="tokenizer"):
        step_forward("a", 3)


# --- tokenizers ------------------------------------------------------------------------------


def test_tokenizer_views_colour_pieces_and_count(tok):
    text = "First Citizen:\nBefore we proceed any further, R&J."
    bpe = build_tokenizer("bpe", TEXT[:20000], vocab_size=300)
    narrow = CharTokenizer.from_text("abc ")
    rows = compare_tokenizers(text, {"char": tok, "bpe": bpe, "abc": narrow}, n_embd=64)
    by_name = {r["name"]: r for r in rows}
    for name, t in (("char", tok), ("bpe", bpe)):
        row = by_name[name]
        assert "".join(piece for piece, _ in row["pieces"]) == text
        assert [i for _, i in row["pieces"]] == t.encode(text)
        assert row["n_tokens"] == len(t.encode(text))
        assert row["chars_per_token"] == pytest.approx(len(text) / len(t.encode(text)))
        assert row["embedding_params"] == t.vocab_size * 64
        boxes = token_boxes(row["pieces"])
        assert "&amp;" in boxes and "R&J" not in boxes
        assert f'title="token id {t.encode(text)[0]}"' in boxes
    assert by_name["bpe"]["n_tokens"] < by_name["char"]["n_tokens"]
    assert by_name["abc"]["error"] and by_name["abc"]["n_tokens"] is None
    assert token_boxes([]).count("<span") == 0
    assert plots.figure_png(plots.tokenizer_figure(rows)).startswith(plots.PNG_SIGNATURE)


# --- anatomy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [dict(MODEL_PRESETS["tiny"]), dict(MODEL_PRESETS["small"], **ARCHITECTURES["modern"]),
                                dict(n_layer=3, n_head=3, n_embd=48, block_size=16), dict(model_type="bigram")])
def test_shape_trace_matches_a_real_forward(kw):
    cfg = GPTConfig(vocab_size=65, **kw)
    B, T = 3, 5
    rows = shape_trace(cfg, B, T, all_blocks=True)
    shapes = {r["where"]: r["shape"] for r in rows}
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    idx = torch.zeros(B, T, dtype=torch.long)
    assert rows[0]["shape"] == (B, T) and rows[-1]["shape"] == tuple(model(idx)[0].shape) == (B, T, 65)
    if cfg.model_type == "bigram":
        return
    x, rope = _embed(model, idx)
    assert shapes["wte"] == tuple(x.shape)
    for i, block in enumerate(model.transformer.h):
        q, k, v = block.attn.qkv(block.ln_1(x), rope)
        assert shapes[f"h[{i}].q"] == tuple(q.shape) == (B, cfg.n_head, T, cfg.head_size)
        assert shapes[f"h[{i}].attention weights"] == (B, cfg.n_head, T, T)
        assert shapes[f"h[{i}].mlp.c_fc"] == tuple(block.mlp.c_fc(block.ln_2(x)).shape)
        x = block(x, rope)
        assert shapes[f"h[{i}]"] == tuple(x.shape)
    short = shape_trace(cfg)  # default: block 0 in full, then one line for the rest
    assert sum(r["where"].startswith("h[0]") for r in short) == sum(r["where"].startswith("h[0]") for r in rows)
    assert all(r["symbols"] for r in short), "default B and T are chosen so every size has one letter"


@pytest.mark.parametrize("kw", [dict(MODEL_PRESETS["small"]), dict(MODEL_PRESETS["small"], **ARCHITECTURES["modern"]),
                                dict(model_type="bigram")])
def test_parameter_counts_sum_to_the_total(kw):
    cfg = GPTConfig(vocab_size=65, **kw)
    rows = parameter_rows(cfg)
    *parts, total = rows
    assert total[0] == "total" and sum(n for _, n, _ in parts) == total[1]
    assert total[1] == parameter_breakdown(build_model(cfg))["total"]
    assert sum(share for *_, share in parts) == pytest.approx(100, abs=0.5)
    fig = plots.parameters_figure(cfg)
    assert [p.get_width() for p in fig.axes[0].patches] == [n for _, n, _ in parts]


# --- runs: timeline, comparison, CSV ---------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tok):
    """Two real runs (a bigram and a GPT) of 20 steps, written by the trainer itself."""
    root = tmp_path_factory.mktemp("runs")
    dataset = Dataset(TEXT[:50000], tok)
    for name, model_type in (("bigram", "bigram"), ("gpt", "gpt")):
        m, t = configs_from("tiny", tok.vocab_size, {"model_type": model_type},
                            {"max_iters": 20, "eval_interval": 10, "eval_iters": 2, "sample_tokens": 12, "device": "cpu"})
        assert Trainer(m, t, dataset, root / name).run() == "finished"
    return root


def test_sample_timeline_and_renderings(runs):
    rows = load_run(runs / "gpt").metrics
    timeline = sample_timeline(rows)
    assert [s for s, _, _ in timeline] == [0, 10, 20]
    assert all(len(sample) >= 12 and loss == r["val_loss"] for (_, loss, sample), r in zip(timeline, rows))
    page = timeline_html(timeline + [(30, 1.5, "a <b>")])
    assert "a &lt;b&gt;" in page and "step 10" in page
    assert "No samples" in timeline_html([])


def test_compare_runs_one_line_per_run_and_a_table(runs):
    found = sorted(p for p in runs.iterdir() if p.is_dir())
    assert [p.name for p in found] == ["bigram", "gpt"]
    summaries = [load_run(p) for p in found]
    for x in ("step", "elapsed_s"):
        fig = plots.runs_figure(summaries, x=x, y="val_bpc")
        assert len(fig.axes[0].lines) == 2
        assert [line.get_xdata()[-1] for line in fig.axes[0].lines] == [s.metrics[-1][x] for s in summaries]
    headers, table = runs_table(summaries)
    for s, row in zip(summaries, table):
        rec = dict(zip(headers, row))
        assert rec["run"] == s.name and rec["step"] == 20 and rec["status"] == "finished"
        assert rec["val loss"] == round(s.metrics[-1]["val_loss"], 4)
        assert rec["val ppl"] == round(math.exp(s.metrics[-1]["val_loss"]), 2)
        assert rec["parameters"] == s.n_params == s.meta["n_params"]
        assert rec["tokens/s"] > 0 and rec["wall time (s)"] >= 0
    assert dict(zip(headers, table[0]))["model"] == "bigram"
    with pytest.raises(GPTError):
        load_run(runs / "missing")


def test_metrics_csv_round_trips(runs, tmp_path):
    rows = load_run(runs / "gpt").metrics + [{"step": 99, "val_loss": 1.25, "sample": 'a, "quoted"\nline', "eta_s": None,
                                               "extra": [1, 2]}]
    text = metrics_to_csv(rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0]) == list(dict.fromkeys(k for r in rows for k in r))  # the header: every key, first seen first
    assert len(parsed) == len(rows)
    for got, want in zip(parsed, rows):
        assert float(got["val_loss"]) == want["val_loss"] and int(got["step"]) == want["step"]
        assert got["sample"] == want["sample"]
    assert parsed[-1]["eta_s"] == "" and parsed[-1]["extra"] == "[1, 2]" and parsed[0]["extra"] == ""
    path = write_csv(rows, tmp_path / "m.csv")
    assert path.read_text(encoding="utf-8") == text


# --- export and the mask experiment ----------------------------------------------------------


def test_every_figure_saves_as_png(tok, runs, tmp_path):
    model = tiny(tok)
    maps = attention_maps(model, tok, PROMPT)
    figures = [plots.attention_figure(maps), plots.attention_grid_figure(maps),
               plots.next_token_figure(next_token_view(model, tok, PROMPT, 0.8, 5)),
               plots.parameters_figure(model.config), plots.runs_figure([load_run(runs / "gpt")]),
               plots.runs_figure([])]
    for n, fig in enumerate(figures):
        assert plots.figure_png(fig).startswith(plots.PNG_SIGNATURE)
        path = plots.save_figure(fig, tmp_path / f"f{n}.png")
        assert path.read_bytes()[:8] == plots.PNG_SIGNATURE
    temp = plots.save_figure(figures[0])
    try:
        assert temp.suffix == ".png" and temp.read_bytes().startswith(plots.PNG_SIGNATURE)
    finally:
        temp.unlink()


def _train_with_and_without_the_mask(text, max_iters, sample_tokens, on_eval) -> MaskExperiment:
    """Two tiny rotary GPTs on the same text, with and without the causal mask, as the app's experiment trains them."""
    dataset = Dataset(text, CharTokenizer.from_text(text), name="why-the-mask")
    curves, samples = {}, {}
    for label, causal in (("masked", True), ("unmasked", False)):
        model_cfg, train_cfg = configs_from(
            "tiny", dataset.tokenizer.vocab_size, {"causal": causal, "pos_emb": "rope"},
            {"max_iters": max_iters, "eval_interval": max(1, max_iters // 6), "eval_iters": 5, "seed": 1337,
             "sample_tokens": 0, "device": "cpu"})
        trainer = Trainer(model_cfg, train_cfg, dataset, out_dir=None, on_eval=lambda row, label=label: on_eval(label, row))
        assert trainer.run() == "finished"
        curves[label] = trainer.metrics
        out = generate(trainer.model, [0], SamplingSettings(max_new_tokens=sample_tokens, temperature=0.8, seed=1337))
        samples[label] = dataset.tokenizer.decode(out)
    return MaskExperiment(curves, samples, MASK_EXPLANATION)


def test_without_the_mask_training_loss_collapses():
    if _shakespeare() is None:
        pytest.skip("needs Tiny Shakespeare (set GPT_DATA_DIR)")
    seen = []
    exp = _train_with_and_without_the_mask(TEXT[:100000], 200, 40, lambda label, row: seen.append(label))
    masked, unmasked = exp.final_train_loss("masked"), exp.final_train_loss("unmasked")
    assert unmasked < 0.5 * masked and unmasked < 1.2 and masked > 2.0
    assert exp.curves["unmasked"][-1]["val_loss"] < exp.curves["masked"][-1]["val_loss"]  # val windows hold their future too
    assert set(seen) == {"masked", "unmasked"} and all(len(s) == 40 for s in exp.samples.values())
    assert "mask" in exp.explanation
    fig = plots.mask_figure(exp)
    assert len(fig.axes[0].lines) == 4
    assert plots.figure_png(fig).startswith(plots.PNG_SIGNATURE)
