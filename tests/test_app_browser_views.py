"""The 'See inside the model' tab in a real browser: open each view, use it, keep a screenshot.

A shipped run (trained with the CLI, like the one the app ships) is looked
inside: attention, the next-token distribution (knobs moved, a token
appended, one sampled), tokenizers, anatomy. The 'why the mask' experiment
then trains its two runs through the job manager while the 'Watch it learn'
view follows the first one live; finally the runs are compared.

Playwright drives Debian's Chromium (/usr/bin/chromium; never `playwright
install`). Elements are found by elem_id; the page is never waited on for
'network idle' (timers keep the network busy). Screenshots land in
artifacts/screenshots/ (git-ignored) and the final ones are copied to
docs/screenshots/ for the README, each kept under 300 KB.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import shakespeare_available
from helpers_app import ROOT, launch_app
from helpers_browser import ARGS, CHROMIUM, SHOTS, sync_api, text, wait_text

DOCS = ROOT / "docs" / "screenshots"
MAX_PNG_BYTES = 300_000
MASK_STEPS = 150  # enough for the unmasked loss to collapse; the app's default is 300
pytestmark = [pytest.mark.timeout(240), pytest.mark.browser]


def make_shipped_run(root: Path, name: str = "shakespeare-char", max_iters: int = 200) -> None:
    """What helpers_app.make_shipped_run makes (a run with no owner, as the CLI writes it), trained in
    this process: no second Python and torch to start. Tiny Shakespeare when at hand, else addition."""
    from gpt.train import Trainer
    from gpt.train import configs_from
    from gpt import corpus as corpora

    source = "shakespeare" if shakespeare_available() else "addition"
    ds = corpora.dataset(corpora.load(source), "char")
    model_cfg, train_cfg = configs_from("tiny", ds.tokenizer.vocab_size, {}, {
        "max_iters": max_iters, "eval_interval": max_iters, "eval_iters": 2, "sample_tokens": 0, "device": "cpu"})
    trainer = Trainer(model_cfg, train_cfg, ds, root / name, meta={"corpus": ds.name, "data_source": source})
    assert trainer.run() == "finished", trainer.error


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_shipped_run(root)
    old = os.environ.get("GPT_MASK_STEPS")
    os.environ["GPT_MASK_STEPS"] = str(MASK_STEPS)
    try:
        demo, url = launch_app(root)
    finally:
        os.environ.pop("GPT_MASK_STEPS") if old is None else os.environ.__setitem__("GPT_MASK_STEPS", old)
    yield url
    demo.manager.shutdown()
    demo.close()


@pytest.fixture(scope="module")
def page(url):
    SHOTS.mkdir(parents=True, exist_ok=True)
    DOCS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(60_000)
        yield page
        browser.close()


# --- helpers ----------------------------------------------------------------------------------------


SHOWN = ("(id) => { const v = document.querySelector(`#${id} svg`);"  # the bars the browser drew (an SVG)
         " if (v && v.getBoundingClientRect().width > 100) return v.outerHTML;"
         " const s = document.querySelector(`#${id} img`)?.getAttribute('src') || '';"  # or a PNG from the server
         " return s.startsWith('data:image/png') ? s : ''; }")


def plot_src(page, elem_id: str) -> str:
    """What a figure shows: a gr.Plot's PNG data URL, or the SVG of the next-token bars (a gr.HTML)."""
    return page.evaluate(SHOWN, elem_id)


def wait_plot(page, elem_id: str, other_than: str = "") -> str:
    """Wait until the gr.Plot shows a figure (a new one, if `other_than` is given); returns `plot_src`."""
    page.wait_for_function(f"([id, old]) => {{ const s = ({SHOWN})(id); return s && s !== old; }}",
                           arg=[elem_id, other_than])
    return plot_src(page, elem_id)


def set_number(page, elem_id: str, value) -> None:
    """Type into a slider's number box and leave it, as a person does."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")
    page.wait_for_function("([id, v]) => document.querySelector(`#${id} input[type=range]`).value === v",
                           arg=[elem_id, str(value)])


def choose(page, elem_id: str, option: str) -> None:
    page.click(f"#{elem_id} input")
    page.get_by_role("option", name=option, exact=False).first.click()


def open_view(page, name: str) -> None:
    page.locator("#views-tabs").get_by_role("tab", name=name).click()


def downloaded(page, elem_id: str, suffix: str) -> bytes:
    """Click a download button and return the file it gives."""
    page.wait_for_function("(id) => { const b = document.querySelector(`#${id}`);"
                           " return b && !b.disabled && !b.querySelector('button[disabled]'); }", arg=elem_id)
    with page.expect_download() as info:
        page.click(f"#{elem_id}")
    download = info.value
    assert download.suggested_filename.endswith(suffix), download.suggested_filename
    return Path(download.path()).read_bytes()


def shoot(page, name: str, elem_id: str) -> None:
    """A screenshot of one view into artifacts/, and a copy under 300 KB into docs/screenshots/."""
    page.wait_for_timeout(150)  # let the last image paint
    path = SHOTS / f"{name}.png"
    page.locator(f"#{elem_id}").screenshot(path=path)
    if path.stat().st_size > MAX_PNG_BYTES:  # fewer colours, same pixels: screenshots are mostly flat colour
        from PIL import Image

        with Image.open(path) as img:
            img.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    assert path.stat().st_size < MAX_PNG_BYTES, f"{name}.png is {path.stat().st_size:,} bytes"
    shutil.copyfile(path, DOCS / f"{name}.png")


# --- the tests -----------------------------------------------------------------------------------------


def test_the_attention_map_follows_every_move_of_its_pickers(page, url):
    """Issue 24, 8: the map ignored the Layer and Head pickers moved by the arrow keys (only a mouse release
    redrew it) until Show attention was pressed again."""
    page.goto(url)
    wait_text(page, "corpus-stats", "characters")
    page.get_by_role("tab", name="5 · See inside the model").click()
    open_view(page, "Attention")
    wait_text(page, "att-status", "layer 0 of 0..1, head 0")
    before = wait_plot(page, "att-heatmap")
    page.focus("#att-layer input[type=range]")
    page.keyboard.press("ArrowRight")  # no mouse, no release: the map follows
    wait_text(page, "att-status", "layer 1 of 0..1, head 0")
    before = wait_plot(page, "att-heatmap", other_than=before)
    page.focus("#att-head input[type=range]")
    page.keyboard.press("ArrowRight")
    wait_text(page, "att-status", "layer 1 of 0..1, head 1")
    wait_plot(page, "att-heatmap", other_than=before)


def test_see_inside_the_model(page, url):
    t0 = time.monotonic()
    page.goto(url)
    wait_text(page, "corpus-stats", "characters")
    page.get_by_role("tab", name="5 · See inside the model").click()

    # 1. why the mask: two normal runs, one after the other, through the job manager (they train meanwhile)
    open_view(page, "Why the mask")
    page.click("#mask-btn")
    wait_text(page, "mask-status", "why-mask-1-masked")

    # 2. 'Watch it learn' follows the experiment's run (the second, where a fast machine has trained the first
    # before the view opens)
    open_view(page, "Watch it learn")
    wait_text(page, "watch-status", ("why-mask-1-masked", "why-mask-1-unmasked"))
    wait_text(page, "watch-timeline", "step 0")
    wait_text(page, "watch-timeline", "step 30")  # a later evaluation arrives without a click
    print(f"\nlive timeline at {time.monotonic() - t0:.1f} s")

    # 3. attention of the shipped run: a heatmap, every head, pickers sized to the model (2 layers, 2 heads)
    open_view(page, "Attention")
    wait_text(page, "att-status", "tokens")
    run_box = page.locator("#att-run input")
    if "shakespeare-char" not in run_box.input_value():  # the default is the asker's own run once it has weights
        assert "why-mask-1" in run_box.input_value()
        run_box.click()
        page.locator("[role=option]", has_text="shakespeare-char").first.click()
        wait_text(page, "att-status", "shakespeare-char")
    wait_plot(page, "att-heatmap")
    wait_plot(page, "att-grid")
    assert "shakespeare-char" in run_box.input_value()
    assert page.locator("#att-head input[type=range]").get_attribute("max") == "1"
    before = plot_src(page, "att-heatmap")
    set_number(page, "att-head", 1)
    wait_text(page, "att-status", "head 1 of 0..1")
    wait_plot(page, "att-heatmap", other_than=before)
    assert downloaded(page, "att-heatmap-png", "head1.png").startswith(b"\x89PNG")
    shoot(page, "attention", "v-attention")
    print(f"attention at {time.monotonic() - t0:.1f} s")

    # 4. the next token: the knobs redraw the bars; append the chosen token, then sample one
    open_view(page, "Next token")
    wait_plot(page, "nt-plot")
    wait_text(page, "nt-status", "can be drawn")
    before = plot_src(page, "nt-plot")
    set_number(page, "nt-top-k", 5)
    wait_text(page, "nt-status", "5 of its")
    wait_plot(page, "nt-plot", other_than=before)
    kept = "() => [...document.querySelectorAll('#nt-plot g.nt-bar')].filter(g => +g.dataset.prob > 0).length"
    assert page.evaluate(kept) == 5  # the bars, drawn by the browser: five tokens left to draw from
    # the browser redraws the bars from the logits it has, without the server: its events are held meanwhile
    held = []
    page.route("**/queue/join**", lambda route: held.append(route))
    page.locator("#nt-temperature input[type=number]").fill("0")
    page.wait_for_function("() => document.querySelector('#nt-plot svg')?.getAttribute('aria-label')"
                           ".includes('T = 0 (greedy)')")
    assert page.evaluate(kept) == 1 and "5 of its" in text(page, "nt-status")
    for route in held:  # the server's answer follows
        route.continue_()
    page.unroute("**/queue/join**")
    page.locator("#nt-temperature input[type=number]").press("Tab")
    wait_text(page, "nt-status", "1 of its")
    set_number(page, "nt-temperature", 1)  # back to T = 1: five drawn from, the others cut (the screenshot)
    wait_text(page, "nt-status", "5 of its")
    assert downloaded(page, "nt-png", ".png").startswith(b"\x89PNG")  # the PNG follows the chart
    prompt = page.locator("#nt-prompt textarea").input_value()
    page.click("#nt-append")
    wait_text(page, "nt-status", "Appended")
    page.click("#nt-sample")
    wait_text(page, "nt-status", "Sampled")
    assert len(page.locator("#nt-prompt textarea").input_value()) == len(prompt) + 2
    shoot(page, "next-token", "v-next")
    print(f"next token at {time.monotonic() - t0:.1f} s")

    # 5. tokenizers side by side, built on the Train tab's corpus
    open_view(page, "Tokenizers")
    page.wait_for_function("() => document.querySelectorAll('#tok-table tr').length === 4")
    wait_plot(page, "tok-plot")
    assert "char" in text(page, "tok-table") and "bpe 512" in text(page, "tok-table")  # the Train tab's BPE size
    shoot(page, "tokenizers", "v-tokens")

    # 6. anatomy of the Train tab's settings (the default preset)
    open_view(page, "Anatomy")
    wait_text(page, "anat-params", "total")
    wait_text(page, "anat-shapes", "(B, nh, T, T)")
    wait_plot(page, "anat-plot")
    shoot(page, "anatomy", "v-anatomy")
    print(f"tokenizers and anatomy at {time.monotonic() - t0:.1f} s")

    # 7. back to the experiment: both curves, both samples, the explanation
    open_view(page, "Why the mask")
    wait_text(page, "mask-status", "Final training loss", timeout=150_000)
    wait_plot(page, "mask-plot")
    assert page.locator("#mask-sample-unmasked textarea").input_value()
    shoot(page, "why-the-mask", "v-mask")
    print(f"why the mask at {time.monotonic() - t0:.1f} s")

    # 8. the masked run's timeline and its metrics as CSV
    open_view(page, "Watch it learn")
    choose(page, "watch-run", "why-mask-1-masked")
    wait_text(page, "watch-status", f"step {MASK_STEPS}")
    wait_text(page, "watch-timeline", f"step {MASK_STEPS}")
    assert downloaded(page, "watch-csv", "metrics.csv").startswith(b"step,")
    shoot(page, "watch-it-learn", "v-watch")

    # 9. compare the three runs against wall time, with the table
    open_view(page, "Compare runs")
    wait_plot(page, "cmp-plot")
    choose(page, "cmp-runs", "why-mask-1-masked")
    page.keyboard.press("Escape")
    wait_text(page, "cmp-status", "3 run(s)")
    for run in ("why-mask-1-masked", "why-mask-1-unmasked", "shakespeare-char"):
        assert run in text(page, "cmp-table")
    before = plot_src(page, "cmp-plot")
    page.locator("#cmp-x").get_by_text("Wall time (s)").click()
    wait_plot(page, "cmp-plot", other_than=before)
    assert downloaded(page, "cmp-png", "by-elapsed_s.png").startswith(b"\x89PNG")
    shoot(page, "compare-runs", "v-compare")
    print(f"all views in {time.monotonic() - t0:.1f} s")
