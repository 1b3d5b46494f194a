"""The Next token chart the browser draws (gpt/ui/views/next_token_chart.js) shows the sampler's numbers.

The page redraws the bars itself as a slider moves, from the logits the server sent once
(`gpt.plots.next_token_chart`). Its filters must be `gpt.engine.filtered_probs` step for step: every
bar's probability, which tokens are cut, the T = 1 outline and the title are checked here against
the server's `next_token_view` and `next_token_figure`, for temperatures, top-k and top-p settings
(greedy included) and for tokens that are markup characters. The script runs in Node (the one
Playwright brings) with the page's globals stubbed; `tests/test_app_browser_views.py` sees it draw
in Chromium.
"""

import json
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch

from gpt import plots
from gpt.engine import filtered_probs
from gpt.insight import next_token_view
from gpt.model import GPT, GPTConfig
from gpt.tokenizer import CharTokenizer

driver = pytest.importorskip("playwright._impl._driver")
CHART_JS = Path(__file__).resolve().parents[1] / "gpt" / "ui" / "views" / "next_token_chart.js"
SVG = "{http://www.w3.org/2000/svg}"
# the page's globals stubbed (no sliders: the knobs come from the data), then the chart's `svg(data, knob)`
HARNESS = """
const fs = require("fs");
const src = fs.readFileSync(process.argv[1], "utf8");
const page = { querySelector: () => null, addEventListener: () => {} };
const svg = new Function("element", "props", "watch", "document", "window", src + "\\nreturn svg;")(
  page, { value: "null" }, () => {}, page, {});
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(cases.map((c) => svg(c.data, c.knob))));
"""
KNOBS = [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.3, 0, 0.8), (0.5, 10, 0.9), (2.0, 0, 1.0), (0.0, 0, 1.0), (1.0, 1, 1.0),
         (0.05, 0, 0.5), (1.0, 3, 0.05)]


def drawn_in_js(cases: list[dict]) -> list[ElementTree.Element]:
    node, _ = driver.compute_driver_executable()
    out = subprocess.run([node, "-e", HARNESS, str(CHART_JS)], input=json.dumps(cases), capture_output=True,
                         text=True, timeout=60, check=True)
    return [ElementTree.fromstring(svg) for svg in json.loads(out.stdout)]  # well-formed XML, or this raises


def model_and_tokenizer(text: str):
    tok = CharTokenizer.from_text(text)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    with torch.no_grad():  # a peaked distribution, as a trained model's: a few likely tokens and a long tail
        model.lm_head.weight.mul_(12)
    return model, tok


def test_the_browsers_bars_are_the_samplers_numbers_for_every_knob():
    model, tok = model_and_tokenizer("First Citizen:\nBefore we proceed any further, hear me speak.")
    prompt = "First Cit"
    logits = next_token_view(model, tok, prompt).logits
    data = plots.next_token_chart(next_token_view(model, tok, prompt, top_n=tok.vocab_size))
    ranked = torch.softmax(logits, -1).sort(descending=True).values
    before = (ranked.cumsum(0) - ranked).tolist()  # the mass ranked above each token: top-p's boundaries
    inside = [m for m in before if 0.05 < m < 0.95][:3]
    assert len(inside) == 3, before[:8]
    knobs = KNOBS + [(1.0, 0, round(m + d, 4)) for m in inside for d in (-2e-3, 2e-3)]  # a token just in, just out
    svgs = drawn_in_js([{"data": data, "knob": {"temperature": t, "top_k": k or None, "top_p": p if p < 1 else None}}
                        for t, k, p in knobs])
    cut_somewhere = 0
    for (t, k, p), svg in zip(knobs, svgs):
        view = next_token_view(model, tok, prompt, t, k, p, top_n=tok.vocab_size)  # the server's numbers
        bars = svg.findall(f".//{SVG}g[@class='nt-bar']")
        assert [int(b.get("data-id")) for b in bars] == [r["id"] for r in view.rows]
        by_id = {int(b.get("data-id")): b for b in bars}
        for r in view.rows:
            bar = by_id[r["id"]]
            assert float(bar.get("data-prob")) == pytest.approx(r["prob"], abs=1e-6), (t, k, p, r)
            assert float(bar.get("data-raw")) == pytest.approx(r["raw"], abs=1e-6)
            if r["tempered"] > 1e-30:  # what a bar shows; below, float32 (the server) rounds to 0, float64 not
                assert bar.get("data-series").startswith("cut") == r["cut"], (t, k, p, r)
            assert float(bar.get("data-p")) == pytest.approx(r["tempered"] if r["cut"] else r["prob"], abs=1e-6)
        cut_somewhere += sum(r["cut"] for r in view.rows)
        if t > 0:
            assert [r["prob"] for r in view.rows] == pytest.approx(
                filtered_probs(logits, t, k or None, p if p < 1 else None)[[r["id"] for r in view.rows]].tolist(),
                abs=1e-7)
        assert svg.get("aria-label") == plots.next_token_figure(view).axes[0].get_title()
        heights = [float(b.findall(f"{SVG}rect")[0].get("height")) for b in bars]  # to scale: likelier is taller
        drawn = [float(b.get("data-p")) for b in bars]
        assert all((h1 - h2) * (p1 - p2) >= -1e-3 for h1, p1 in zip(heights, drawn) for h2, p2 in zip(heights, drawn))
    assert cut_somewhere > 20  # the filters really cut tokens in these settings


def test_tokens_that_are_markup_are_shown_as_letters():
    """`<`, `&` and quotes are tokens like any other: the chart shows them as text, never as markup."""
    model, tok = model_and_tokenizer("<script>&\"' x")
    data = plots.next_token_chart(next_token_view(model, tok, "<", top_n=tok.vocab_size))
    (svg,) = drawn_in_js([{"data": data, "knob": {"temperature": 1.0, "top_k": None, "top_p": None}}])
    assert {b.get("data-token") for b in svg.iter(f"{SVG}g")} >= {"<", ">", "&", '"', "'", "␣"}
    assert not list(svg.iter("script")) and not list(svg.iter(f"{SVG}script"))
