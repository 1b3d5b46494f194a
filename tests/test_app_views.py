"""The 'See inside the model' tab without a browser: `gpt.ui.views.Views` called as plain functions.

Attention, the next-token distribution, tokenizers side by side, anatomy,
samples over training, compare runs and why the mask, each for runs the
asker may see only, with sentences (not tracebacks) for what cannot be
shown, and every figure exported as a real PNG file.
"""

from __future__ import annotations

import base64
import csv
import json
from html.parser import HTMLParser

import pandas as pd
import pytest

from gpt import checkpoint as ckpt
from gpt.model import GPTConfig, count_parameters
from gpt.plots import PNG_SIGNATURE
from gpt.jobs import JobManager
from gpt.ui import figure_downloads as views_mod
from gpt.ui.views.attention_view import LINK_HEADERS
from gpt.limits import Limits
from gpt.ui.views import Views

from helpers_app import SLIDERS, addition, tiny_request, wait_until

pytestmark = pytest.mark.timeout(120)
LIMITS = Limits(max_concurrent_jobs=1, max_params=5_000_000, max_iters=1_000_000, max_upload_mb=5, max_new_tokens=500)


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", LIMITS, device="cpu")
    yield m
    m.shutdown()


@pytest.fixture
def views(manager, tmp_path, monkeypatch):
    monkeypatch.setattr(views_mod, "EXPORT_DIR", tmp_path / "exports")
    return Views.of(manager)


def finished(m: JobManager, owner: str, max_iters: int = 20, **kw) -> str:
    job = m.start(owner, addition(), tiny_request(max_iters, **kw))
    m.wait(job.name, 60)
    assert job.state == "finished", job.error
    return job.name


def shown_png(plot) -> bytes:
    """The bytes a gr.Plot shows."""
    assert plot.type == "matplotlib" and plot.plot.startswith("data:image/png;base64,")
    return base64.b64decode(plot.plot.split(",", 1)[1])


def png_file(update: dict) -> bytes:
    assert update["interactive"] is True
    data = open(update["value"], "rb").read()
    assert data.startswith(PNG_SIGNATURE)
    return data


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def table_cells(html: str) -> list[dict]:
    """The rows of an HTML table as {header: text}."""
    parser = _Cells()
    parser.feed(html)
    head, *rows = parser.rows
    return [dict(zip(head, r)) for r in rows]


def is_sentence(text: str, needle: str) -> bool:
    return 'class="msg-error"' in text and needle in text and "Traceback" not in text


# --- export -------------------------------------------------------------------------------------------


def test_a_figure_is_rendered_once_shown_and_downloadable(views, monkeypatch):
    from matplotlib.figure import Figure

    plot, path = views_mod.export("odd name/with spaces", Figure, (1, 1))
    assert path.endswith("odd-name-with-spaces.png")
    assert shown_png(plot) == open(path, "rb").read()  # the same render on the page and in the file
    monkeypatch.setattr(views_mod, "KEEP_EXPORTS", 3)
    for k in range(6):
        views_mod.export(f"f{k}", Figure, (1, 1))
    assert len(list(views_mod.EXPORT_DIR.iterdir())) == 4  # old exports are pruned



def test_an_export_folder_pruned_by_another_request_meanwhile_is_not_an_error(views, monkeypatch):
    """Two views exporting at once: one lists the folders, the other has just removed one of them.
    (Seen in CI: the tokenizers view answered nothing because stat() met a folder already gone.)"""
    from matplotlib.figure import Figure

    views_mod.EXPORT_DIR.mkdir(parents=True, exist_ok=True)
    (views_mod.EXPORT_DIR / "gone-meanwhile").symlink_to(views_mod.EXPORT_DIR / "no-such-folder")  # listed, not stat-able
    monkeypatch.setattr(views_mod, "KEEP_EXPORTS", 2)
    for k in range(4):
        plot, path = views_mod.export(f"f{k}", Figure, (1, 1))
        assert open(path, "rb").read().startswith(PNG_SIGNATURE)
    assert len([p for p in views_mod.EXPORT_DIR.iterdir() if p.exists()]) == 3  # pruning still works (2 kept + the newest)

# --- 1. attention --------------------------------------------------------------------------------------


def test_attention_heatmap_grid_and_pickers_sized_to_the_model(views, manager):
    run = finished(manager, "alice", n_layer=2, n_head=2)
    assert views.attention.model_runs("alice")["value"] == run
    heat, grid, layer, head, links, status, heat_png, grid_png = views.attention.show("alice", run, "12+34=46", 1, 5)
    assert shown_png(heat) == png_file(heat_png) and shown_png(grid) == png_file(grid_png)
    assert heat_png["value"].endswith(f"attention-{run}-layer1-head1.png")  # head 5 clamped to the last head
    assert (layer["maximum"], layer["value"], head["maximum"], head["value"]) == (1, 1, 1, 1)
    assert layer["label"] == "Layer (0..1)" and layer["interactive"] is True
    one = finished(manager, "bob", n_layer=1, n_head=2)  # a slider needs two ends: locked, and its label says so
    _, _, layer1, head1, *_ = views.attention.show("bob", one, "12+34=46", 0, 0)
    assert layer1["label"] == "Layer (this model has one: 0)" and layer1["interactive"] is False
    assert head1["label"] == "Head (0..1)"
    assert isinstance(links, pd.DataFrame) and len(links) == 8 and list(links.columns) == LINK_HEADERS
    assert links["weight"].between(0, 1).all() and links.iloc[0]["looks most at"] == "1 (pos 0)"  # token 0 sees itself
    assert "8 tokens" in status and "layer 1" in status and "mask" in status
    heat2, links2, status2, png2 = views.attention.head("alice", run, "12+34=46", 0, 1)
    assert "layer 0 of 0..1, head 1" in status2 and png2["value"].endswith("layer0-head1.png")
    *_, status3, _ = views.attention.head("alice", run, "12+34=46", 0, 7)
    assert is_sentence(status3, "head in 0..1")


def test_attention_sentences_for_bigram_unseen_characters_and_other_peoples_runs(views, manager):
    bigram = finished(manager, "alice", model_type="bigram")
    out = views.attention.show("alice", bigram, "1+1=2", 0, 0)
    assert out[0] is None and out[6]["interactive"] is False
    assert is_sentence(out[5], "A bigram model has no attention")
    gpt = finished(manager, "bob")
    assert is_sentence(views.attention.show("alice", gpt, "1+1", 0, 0)[5], "no run named")  # bob's run is private
    assert is_sentence(views.attention.show("bob", gpt, "hello", 0, 0)[5], "never saw")
    assert is_sentence(views.attention.show("bob", None, "1+1", 0, 0)[5], "Choose a run")


def test_attention_of_a_run_still_training_uses_its_snapshot(views, manager):
    job = manager.start("alice", addition(), tiny_request(1_000_000))
    wait_until(lambda: manager.runs.live_trainer(job.name) is not None and manager.runs.live_trainer(job.name).step > 2,
               what="steps")
    assert job.name in [c[1] for c in views.attention.model_runs("alice")["choices"]]
    out = views.attention.show("alice", job.name, "7+8=15", 0, 0)
    assert out[0] is not None and "training when drawn: its weights at step" in out[5]
    manager.stop("alice", job.name)
    manager.wait(job.name, 30)


# --- 2. next token -------------------------------------------------------------------------------------


def test_next_token_filters_stepping_and_sampling(views, manager):
    run = finished(manager, "alice")
    chart, tokens, status, png = views.next_token.show("alice", run, "12+3", 1.0, 3, 1.0)
    data = json.loads(chart)  # every logit and the bars' tokens: the browser draws them (next_token_chart.js)
    assert data["knobs"] == {"temperature": 1.0, "top_k": 3, "top_p": 1.0} and len(data["bars"]) == 13
    assert len(base64.b64decode(data["logits"])) == 4 * 13  # float32, the whole vocabulary
    unchanged, _, again, _ = views.next_token.retune("alice", run, "12+3", 1.0, 3, 1.0)  # a slider moved
    assert unchanged == {"__type__": "update"} and again == status  # the browser redrew the bars; no logits again
    assert png["interactive"] is False
    assert png_file(views.next_token.png("alice", run, "12+3", 1.0, 3, 1.0))
    assert views.next_token.png("alice", run, "hello")["interactive"] is False  # nothing to draw: no file
    assert "3 of its 13 tokens can be drawn; 10 are cut" in status
    labels = [label for label, _ in tokens["choices"]]
    assert len(labels) == 13 and sum("(cut)" in label for label in labels) == 10
    assert tokens["value"] == tokens["choices"][0][1]
    _, _, status, _ = views.next_token.show("alice", run, "12+3", 0.0, 0, 1.0)
    assert "1 of its 13 tokens can be drawn" in status  # temperature 0: greedy
    _, _, status, _ = views.next_token.show("alice", run, "12+3", 1.0, 0, 1.0)
    assert "13 of its 13 tokens can be drawn; 0 are cut" in status
    # append the chosen token, then draw one: the prompt grows one character at a time
    chosen = tokens["choices"][1][1]
    prompt, fig, tokens2, status, _ = views.next_token.append("alice", run, "12+3", chosen, 1.0, 3, 1.0)
    assert len(prompt) == 5 and prompt.startswith("12+3") and status.startswith("Appended '")
    a = views.next_token.sample("alice", run, prompt, 0.8, 0, 0.9, 7)
    b = views.next_token.sample("alice", run, prompt, 0.8, 0, 0.9, 7)
    assert a[0] == b[0] and len(a[0]) == 6 and a[0].startswith(prompt) and "Sampled '" in a[3]  # a seed repeats
    assert "(it had 100.0%)" in views.next_token.sample("alice", run, prompt, 0.0, 0, 1.0)[3]  # greedy: the argmax
    assert is_sentence(views.next_token.append("alice", run, prompt, None)[3], "Choose a token")
    assert is_sentence(views.next_token.show("alice", run, "hello")[2], "never saw")


# --- 3. tokenizers -------------------------------------------------------------------------------------


def test_every_tokenizer_side_by_side_with_the_offline_one_explained(views, tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_GPT2_RANKS", str(tmp_path / "missing.tiktoken"))  # offline: no GPT-2 vocabulary
    text = "to be or not to be, that is the question. " * 60
    table, fig, status, png = views.tokenizers.show("to be, or not.", "paste", None, text, 300, 32)
    assert shown_png(fig) == png_file(png)
    rows = table_cells(table)
    assert [r["tokenizer"] for r in rows] == ["char", "gpt2 (compact)", "bpe 300 (trained here)"]
    char, gpt2, bpe = rows
    assert (char["tokens"], char["chars/token"]) == ("14", "1.00")
    assert int(char["vocab"]) == len(set(text)) and int(char["embedding params"]) == 32 * len(set(text))
    assert "GPT_GPT2_RANKS" in list(gpt2.values())[1] and gpt2["tokens"] == "-"  # its row says why
    assert int(bpe["tokens"]) < 14 and 256 < int(bpe["vocab"]) <= 300  # a short text runs out of merges
    assert "pasted" in status and "width 32" in status
    assert "title=\"token id " in table and "tok-id" in table  # coloured pieces with their ids
    char, _, bpe = table_cells(views.tokenizers.show("why?", "paste", None, text, 300, 32)[0])
    assert char["tokens"] == "-" and "?" in list(char.values())[1] and bpe["tokens"] != "-"  # '?' is not in the text
    table, *_ = views.tokenizers.show("", "addition", None, None, 300, 32)  # empty: the corpus's first lines
    assert "=" in table and "msg-error" in table  # the char tokenizer of addition; GPT-2 still offline
    *_, status, png = views.tokenizers.show("x", "upload", None, None, 300, 32)
    assert is_sentence(status, "Choose a .txt file") and png["interactive"] is False


# --- 4. anatomy ----------------------------------------------------------------------------------------


def test_anatomy_of_the_train_settings_and_of_a_run(views, manager):
    params, fig, shapes, status, png = views.anatomy.show("alice", "train", None, 13, "tiny", "gpt", "classic", *SLIDERS)
    assert shown_png(fig) == png_file(png)
    config = GPTConfig(vocab_size=13, n_layer=1, n_head=2, n_embd=16, block_size=16, pos_emb="learned",
                       activation="gelu", qk_norm=False, tie_weights=True, bias=True)
    assert params.iloc[-1].tolist() == ["total", f"{count_parameters(config)['total']:,}", "100%"]
    assert shapes.iloc[0]["where"] == "idx" and shapes.iloc[0]["as symbols"] == "(B, T)"
    assert shapes.iloc[-1]["where"] == "lm_head" and shapes.iloc[-1]["shape"].endswith(", 13)")
    assert "(B, nh, T, T)" in shapes["as symbols"].tolist()
    assert "1 layers × 2 heads × 16 wide" in status and "vocabulary 13" in status
    bigger = views.anatomy.show("alice", "train", None, 13, "tiny", "gpt", "classic", 3, 2, 16, 16, 0.0, 8, 3e-3, 20, 0)
    assert bigger[2].iloc[-3].tolist()[::3] == ["h[1..2]", "2 more blocks, same shapes"]
    assert is_sentence(views.anatomy.show("alice", "train", None, 13, "tiny", "gpt", "classic", 1, 3, 16, 16, 0.0, 8,
                                     3e-3, 20, 0)[3], "divisible")
    run = finished(manager, "alice", model_type="bigram")
    params, _, shapes, status, _ = views.anatomy.show("alice", "run", run, 999, "fast", "gpt", "modern", *SLIDERS)
    assert f"Run **{run}**" in status and "bigram table" in status
    assert params.iloc[0]["component"].startswith("bigram table") and params.iloc[0]["parameters"] == f"{13 * 13:,}"
    assert is_sentence(views.anatomy.show("bob", "run", run, 13, "tiny", "gpt", "classic", *SLIDERS)[3], "no run named")


# --- 5. samples over training -------------------------------------------------------------------------


def test_watch_shows_the_loss_and_each_evaluations_sample_newest_first(views, manager):
    run = finished(manager, "alice", max_iters=20)  # evaluations at steps 0, 10 and 20
    assert views.watch.metric_runs("alice")["value"] == run
    curve, timeline, status, csv_file, sig = views.watch.show("alice", run)
    assert isinstance(curve, pd.DataFrame) and {"val (eval)", "train (eval)"} <= set(curve["series"])
    assert timeline.index("step 20") < timeline.index("step 10") < timeline.index("step 0")
    assert "3 samples" in status and "finished" in status
    rows = list(csv.DictReader(open(csv_file["value"], encoding="utf-8")))
    assert [int(r["step"]) for r in rows] == [0, 10, 20] and all(r["sample"] for r in rows)
    assert views.watch.show("alice", run, sig) == (views_mod.gr.skip(),) * 4 + (sig,)  # nothing new: nothing sent
    assert views.watch.show("bob", run)[2] == "Choose a run."  # not bob's to see


def test_watch_updates_while_a_run_trains(views, manager):
    job = manager.start("alice", addition(), tiny_request(1_000_000))
    wait_until(lambda: len(manager.runs.metrics(job.name)) >= 1, what="an evaluation")
    curve, timeline, status, _, sig = views.watch.show("alice", job.name)
    assert "running" in status and "step 0" in timeline
    wait_until(lambda: len(manager.runs.step_losses(job.name)) > sig[3], what="more steps")
    curve2, *_, sig2 = views.watch.show("alice", job.name, sig)
    assert sig2 != sig and len(curve2) >= len(curve)
    manager.stop("alice", job.name)
    manager.wait(job.name, 30)


# --- 6. compare runs ---------------------------------------------------------------------------------------


def test_compare_runs_by_step_or_time_with_a_table_of_only_visible_runs(views, manager):
    a = finished(manager, "alice", max_iters=20)
    b = finished(manager, "alice", max_iters=10, n_embd=32)
    private = finished(manager, "bob")
    choices = [n for _, n in views.compare.choices("alice")["choices"]]
    assert set(choices) == {a, b}
    fig, table, status, png = views.compare.show("alice", [a, b, private], "elapsed_s", "val_bpc")
    assert shown_png(fig) == png_file(png) and png["value"].endswith("compare-val_bpc-by-elapsed_s.png")
    assert list(table["run"]) == [a, b] and table["step"].tolist() == [20, 10]
    assert (table["wall time (s)"] >= 0).all() and (table["tokens/s"] > 0).all()  # 10 steps can take < 0.05 s
    assert table["parameters"].str.endswith("k").all() and table["status"].tolist() == ["finished", "finished"]
    assert "fairly" in status
    assert "same tokenizer" in views.compare.show("alice", [a], "step", "val_loss")[2]
    assert views.compare.show("alice", [private])[2].startswith("Choose")


# --- 7. why the mask ----------------------------------------------------------------------------------------


def test_why_the_mask_trains_two_normal_runs_one_after_the_other(views, manager):
    views.mask.corpus, views.mask.steps = "addition", 30
    assert views.mask.show("alice")[3] == "Press the button to train both models."
    status, timer = views.mask.start("alice")
    assert "why-mask-1-masked" in status and timer.active
    masked, unmasked = "why-mask-1-masked", "why-mask-1-unmasked"
    status, _ = views.mask.start("alice")
    assert is_sentence(status, "already have a run")  # one run per person: the experiment is no exception
    out = views.mask.show("alice")
    assert "starts when the masked run finishes" in out[3] and out[5].active
    assert unmasked not in manager.runs.run_names()  # never two runs of one person at once
    manager.wait(masked, 60)
    wait_until(lambda: manager.job(unmasked) is not None, what="the unmasked run")
    manager.wait(unmasked, 60)
    fig, sample_masked, sample_unmasked, status, png, timer, sig = views.mask.show("alice")
    assert shown_png(fig) == png_file(png) and sample_masked and sample_unmasked
    assert "Final training loss" in status and not timer.active
    meta = ckpt.read_meta(manager.runs.run_path(unmasked) / ckpt.WEIGHTS)
    assert meta["model"]["causal"] is False and meta["model"]["pos_emb"] == "rope"
    assert ckpt.read_meta(manager.runs.run_path(masked) / ckpt.WEIGHTS)["model"]["causal"] is True
    assert json.loads((manager.runs.run_path(unmasked) / "app.json").read_text())["request"]["causal"] is False
    assert {masked, unmasked} <= {n for _, n in views.compare.choices("alice")["choices"]}  # normal runs to compare
    assert views.mask.show("bob")[0] is None  # alice's experiment is not bob's
    # the unmasked model attends to the future: its attention map has no masked triangle
    assert "no causal mask" in views.attention.show("alice", unmasked, "1+2=3", 0, 0)[5]


def test_a_stopped_first_run_starts_no_follow_up(manager):
    job = manager.start("alice", addition(), tiny_request(1_000_000), name="first",
                        then=[(addition(), tiny_request(10), "second")])
    wait_until(lambda: manager.runs.live_trainer("first") is not None, what="training")
    manager.stop("alice", "first")
    manager.wait("first", 30)
    assert job.state == "stopped" and "second" not in manager.runs.run_names()


# --- the tab is part of the page ----------------------------------------------------------------------------


def test_the_page_has_every_view(tmp_path):
    import app

    demo = app.build_demo(JobManager(tmp_path / "runs", LIMITS, device="cpu"))
    ids = {c.get("props", {}).get("elem_id") for c in demo.config["components"]}
    for elem_id in ("views-tab", "att-heatmap", "att-grid", "att-layer", "att-head", "nt-plot", "nt-token",
                    "nt-sample", "nt-append", "tok-table", "tok-plot", "anat-params", "anat-plot", "anat-shapes",
                    "watch-loss", "watch-timeline", "watch-csv", "cmp-plot", "cmp-table", "cmp-x", "mask-btn",
                    "mask-plot", "mask-sample-masked", "mask-sample-unmasked", "att-heatmap-png", "cmp-png"):
        assert elem_id in ids, elem_id
    demo.manager.shutdown()


def test_a_run_training_in_gpu_slices_says_its_weights_are_the_last_slice_s():
    """Issue 24, 6: during a GPU slice the live weights are in the GPU's process; the view shows the saved ones
    (step 0 until the first slice ends) and says so, instead of an unexplained 'at step 0'."""
    from types import SimpleNamespace

    from gpt.ui.views.base import View

    jobs = {"r": SimpleNamespace(slice_number=1, state="running"), "done": SimpleNamespace(slice_number=3,
                                                                                          state="finished")}
    view = View(SimpleNamespace(job=jobs.get), models=object())
    saved = SimpleNamespace(live=False, step=0)
    assert "training in GPU slices: its weights as the last slice saved them, at step 0" in view._at("r", saved)
    assert view._at("done", saved) == "**done** at step 0" and view._at("other", saved) == "**other** at step 0"
    assert "training when drawn: its weights at step 7; draw again for its latest" in view._at("r", SimpleNamespace(
        live=True, step=7))
