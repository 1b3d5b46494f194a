"""The app's responsiveness, measured in a real browser: start-up, first loss point, clicks while training.

    python bench/bench_app.py                  # 3 rounds; prints markdown rows
    python bench/bench_app.py --rounds 1 --clicks 20

Each round launches `python app.py` (127.0.0.1, a free port, a temporary
checkpoints folder holding a copy of the shipped model) and measures:

- **start-up**: from launching the process to the first HTTP 200;
- **first loss point**: from the click on Start (defaults: Tiny Shakespeare,
  character tokenizer, the default preset) to the progress line showing the
  step-0 validation loss, which arrives in the same update as the first
  point of the loss plot;
- **clicks while training**: with that run training, alternate clicks on
  controls that go to the server and back (the Model radio, Bigram then GPT,
  and the Architecture radio, each redrawing the parameter estimate; the
  token preview, redrawn for a new sentence) and time each from the click to the
  changed text on the page;
- **first streamed text**: on the Generate tab, from the click on Generate
  (the shipped model, 200 tokens) to the first characters in the output box;
- **the teaching views while training** (tab 4, the shipped model): the
  attention view, from the click on "Show attention" for a new prompt to both
  its heatmap and its all-heads grid showing the new maps; a head change, to
  the new heatmap; and the next-token view, from a new temperature typed into
  its slider to the frame that shows the redrawn bars (timed in the page).

Chromium from Debian (/usr/bin/chromium) through Playwright, never a
downloaded browser; nothing but 127.0.0.1 is contacted. Figures are medians
over rounds (p95 over all clicks), with the load average beside them: this is
a shared 2-core machine, and the app trains on one core while the page is
served from the other.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from load_test import free_port, percentile, start_app, stop_app, wait_http  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def inner_text(page, elem_id: str) -> str:
    return page.evaluate("(id) => document.getElementById(id)?.innerText || ''", elem_id)


def timed_change(page, elem_id: str, action, what: str, timeout_s: float = 30.0) -> float:
    """Seconds from `action()` to a change in the element's text."""
    before = inner_text(page, elem_id)
    t0 = time.perf_counter()
    action()
    try:
        page.wait_for_function("([id, before]) => (document.getElementById(id)?.innerText || '') !== before",
                               arg=[elem_id, before], timeout=timeout_s * 1000, polling="raf")
    except Exception as err:  # noqa: BLE001 - say which click got no answer
        raise RuntimeError(f"{what}: #{elem_id} did not change within {timeout_s:.0f} s; it shows {before[:200]!r}") from err
    return time.perf_counter() - t0


SHOWN = ("(id) => { const v = document.querySelector(`#${id} svg`);"  # the bars the browser drew (an SVG)
         " if (v && v.getBoundingClientRect().width > 100) return v.outerHTML;"
         " const c = document.querySelector(`#${id} .vega-embed canvas`);"  # (the Vega chart before 2026-12-03)
         " if (c && c.width > 100) return c.toDataURL();"
         " const s = document.querySelector(`#${id} img`)?.getAttribute('src') || '';"  # or a PNG from the server
         " return s.startsWith('data:image/png') ? s : ''; }")


def timed_images(page, elem_ids: list[str], action, what: str, timeout_s: float = 60.0) -> float:
    """Seconds from `action()` to every one of these gr.Plot elements showing a new figure (a PNG from the
    server), timed from Python."""
    before = [page.evaluate(SHOWN, e) for e in elem_ids]
    t0 = time.perf_counter()
    action()
    try:
        page.wait_for_function(f"([ids, old]) => ids.every((id, i) => {{ const s = ({SHOWN})(id); "
                               "return s && s !== old[i]; })",
                               arg=[elem_ids, before], timeout=timeout_s * 1000, polling="raf")
    except Exception as err:  # noqa: BLE001 - say which view got no answer
        raise RuntimeError(f"{what}: {', '.join(elem_ids)} showed no new image within {timeout_s:.0f} s") from err
    return time.perf_counter() - t0


def timed_in_page(page, elem_id: str, action, what: str, timeout_s: float = 60.0) -> float:
    """Seconds from the first input event `action()` causes (a value typed into a slider's box) to the frame in
    which `elem_id` shows a new figure, timed by the page itself (requestAnimationFrame): what a person sees,
    without Playwright's own latency of typing and asking, which on a loaded machine is 50-500 ms a call."""
    page.evaluate("""([id, shown]) => {
        const show = eval(shown), before = show(id);
        window.__redrawn = null;
        document.addEventListener("input", () => {
            const t0 = performance.now();
            const poll = () => { const s = show(id);
                                 if (s && s !== before) window.__redrawn = (performance.now() - t0) / 1000;
                                 else requestAnimationFrame(poll); };
            requestAnimationFrame(poll);
        }, { capture: true, once: true });
    }""", [elem_id, SHOWN])
    action()
    try:
        page.wait_for_function("() => window.__redrawn !== null", timeout=timeout_s * 1000)
    except Exception as err:  # noqa: BLE001 - say which view got no answer
        raise RuntimeError(f"{what}: {elem_id} showed no new figure within {timeout_s:.0f} s") from err
    return page.evaluate("() => window.__redrawn")


def set_slider(page, elem_id: str, value) -> None:
    """Type a value into a slider's number box and leave it, as a person does."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def views_while_training(page, repeats: int) -> dict:
    """Tab 4 on the shipped model: the attention view, a head change, the next-token bars."""
    page.get_by_role("tab", name="5 · See inside the model").click()
    page.locator("#views-tabs").get_by_role("tab", name="Attention").click()
    page.wait_for_function("() => (document.getElementById('att-status')?.innerText || '').includes('tokens')",
                           timeout=120_000)
    attention, head = [], []
    prompt = page.locator("#att-prompt textarea, #att-prompt input").first
    for i in range(repeats):
        def show(i=i):
            prompt.fill(f"ROMEO:\nBut soft, what light through yonder window breaks {i}?")
            page.locator("#att-btn").click()
        attention.append(timed_images(page, ["att-heatmap", "att-grid"], show, f"attention view {i}"))
        head.append(timed_images(page, ["att-heatmap"], lambda i=i: set_slider(page, "att-head", (i + 1) % 2),
                                 f"attention head change {i}"))
    page.locator("#views-tabs").get_by_role("tab", name="Next token").click()
    page.wait_for_function("() => (document.getElementById('nt-status')?.innerText || '').includes('can be drawn')",
                           timeout=120_000)
    bars = []
    for i in range(repeats * 2):
        bars.append(timed_in_page(page, "nt-plot", lambda i=i: set_slider(page, "nt-temperature", [0.7, 1.3][i % 2]),
                                  f"next-token redraw {i}"))
        page.wait_for_timeout(300)  # a person moving the slider again
    return {"attention_s": attention, "head_s": head, "next_token_s": bars}


def one_round(clicks: int, views: int) -> dict:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="gpt-bench-app-"))
    shipped = ROOT / "checkpoints" / "shakespeare-char"
    if (shipped / "model.safetensors").exists():
        shutil.copytree(shipped, tmp / "shakespeare-char")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    out: dict = {"load_before": os.getloadavg()[0]}
    t_launch = time.perf_counter()
    proc = start_app(tmp, port)
    try:
        wait_http(url, 120)
        out["startup_s"] = time.perf_counter() - t_launch
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.wait_for_selector("#start-btn")
            page.wait_for_function("() => (document.getElementById('estimate')?.innerText || '').includes('parameters')")
            out["page_ready_s"] = time.perf_counter() - t_launch

            t0 = time.perf_counter()
            page.locator("#start-btn").click()
            page.wait_for_function("() => (document.getElementById('progress')?.innerText || '').includes('val loss')",
                                   timeout=60_000, polling="raf")
            out["first_point_s"] = time.perf_counter() - t0

            lat: list[float] = []
            for i in range(clicks):
                which = i % 4  # Bigram, GPT, the other architecture, a new preview sentence: each changes the page
                if which in (0, 1):
                    label = "Bigram baseline" if which == 0 else "GPT"
                    lat.append(timed_change(page, "estimate", lambda: page.locator("#model-type").get_by_text(label).click(),
                                            f"click {i}, Model: {label}"))
                elif which == 2:
                    label = "Classic (the lecture's)" if (i // 4) % 2 == 0 else "Modern (rotary, QK-norm, ReLU²)"
                    lat.append(timed_change(page, "estimate", lambda: page.locator("#architecture").get_by_text(label).click(),
                                            f"click {i}, Architecture: {label}"))
                else:
                    box = page.locator("#preview-text textarea, #preview-text input").first

                    def retype(box=box, i=i):
                        box.fill(f"To be, or not to be {i}")
                        box.press("Enter")

                    lat.append(timed_change(page, "token-preview", retype, f"click {i}, preview sentence"))
            out["click_s"] = lat
            out["steps_meanwhile"] = inner_text(page, "progress")

            page.locator("button[role=tab]", has_text="Generate").click()
            page.wait_for_function("() => (document.querySelector('#gen-run input')?.value || '').length > 0")
            page.locator("#gen-max-new input[type=number]").fill("200")
            page.locator("#gen-max-new input[type=number]").press("Enter")
            t0 = time.perf_counter()
            page.locator("#gen-btn").click()
            page.wait_for_function("() => (document.querySelector('#gen-output textarea')?.value || '').length > 0",
                                   polling="raf")
            out["first_text_s"] = time.perf_counter() - t0
            out.update(views_while_training(page, views))
            out["training_after_views"] = inner_text(page, "progress")
            browser.close()
    finally:
        stop_app(proc, tmp)
    out["load_after"] = os.getloadavg()[0]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clicks", type=int, default=30, help="clicks per round while the run trains")
    ap.add_argument("--views", type=int, default=3, help="attention views per round (and twice as many next-token redraws)")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    rounds = []
    for r in range(args.rounds):
        res = one_round(args.clicks, args.views)
        rounds.append(res)
        print(f"  round {r + 1}: start-up {res['startup_s']:.2f} s, page ready {res['page_ready_s']:.2f} s, "
              f"first loss point {res['first_point_s']:.2f} s, clicks p50 {1000 * percentile(res['click_s'], 50):.0f} ms "
              f"p95 {1000 * percentile(res['click_s'], 95):.0f} ms, first text {res['first_text_s']:.2f} s, "
              f"attention {max(res['attention_s']):.2f} s (worst), next token {1000 * max(res['next_token_s']):.0f} ms (worst), "
              f"load {res['load_before']:.2f}->{res['load_after']:.2f}; progress after the views: "
              f"{res['training_after_views'][:120]!r}", file=sys.stderr)
    med = lambda key: statistics.median(r[key] for r in rounds)  # noqa: E731
    clicks = [c for r in rounds for c in r["click_s"]]
    loads = [x for r in rounds for x in (r["load_before"], r["load_after"])]
    cmd = " ".join(["python bench/bench_app.py"] + sys.argv[1:])
    print("| figure | target | median | all rounds | load (1-min) |")
    print("|---|---|---|---|---|")
    rows = [
        ("`python app.py` answers HTTP", "< 8 s", "startup_s", "{:.2f} s"),
        ("page loaded, estimate shown", "-", "page_ready_s", "{:.2f} s"),
        ("click on Start -> first loss point", "< 2 s", "first_point_s", "{:.2f} s"),
        ("click on Generate -> first text (while training)", "-", "first_text_s", "{:.2f} s"),
    ]
    span = f"{min(loads):.1f}-{max(loads):.1f}"
    for name, target, key, fmt in rows:
        print(f"| {name} | {target} | {fmt.format(med(key))} | {', '.join(fmt.format(r[key]) for r in rounds)} | {span} |")
    per_round = ", ".join(f"{1000 * percentile(r['click_s'], 95):.0f}" for r in rounds)
    print(f"| click while training -> page updated, p50 / p95 / max ({len(clicks)} clicks) | p95 < 300 ms | "
          f"{1000 * percentile(clicks, 50):.0f} / {1000 * percentile(clicks, 95):.0f} / {1000 * max(clicks):.0f} ms | "
          f"p95 per round: {per_round} ms | {span} |")
    for name, target, key in [("attention view for a new prompt (heatmap + all heads), while training", "<= 1.5 s", "attention_s"),
                              ("attention head change, while training", "-", "head_s"),
                              ("next-token bars redrawn for a new temperature, while training", "<= 300 ms", "next_token_s")]:
        every = [v for r in rounds for v in r[key]]
        print(f"| {name} ({len(every)} times) | {target} | p50 {1000 * percentile(every, 50):.0f} / p95 "
              f"{1000 * percentile(every, 95):.0f} / max {1000 * max(every):.0f} ms | "
              f"p95 per round: {', '.join(f'{1000 * percentile(r[key], 95):.0f}' for r in rounds)} ms | {span} |")
    print(f"\ncommand: `{cmd}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
