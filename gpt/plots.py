"""Figures for the teaching views, readable from the back of a classroom.

Each function takes what `gpt.insight` computes and returns a matplotlib
`Figure`, which gr.Plot shows as is. Figures are made with `Figure()`, not
`pyplot`: no global state is shared between a web server's threads, and
nothing is ever opened in a window. Fonts are large because a projector
shrinks everything. `figure_png` and `save_figure` export any of them.
"""

from __future__ import annotations

import base64
import functools
import io
import os
import tempfile
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure as _MatplotlibFigure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from .insight import AttentionMaps, MaskExperiment, NextTokenView, RunSummary, parameter_rows, show_piece  # noqa: E402
from .model import GPTConfig  # noqa: E402

PROJECTOR = {
    "font.size": 15, "axes.titlesize": 19, "axes.labelsize": 16, "xtick.labelsize": 14, "ytick.labelsize": 14,
    "legend.fontsize": 14, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": False,
    "lines.linewidth": 2.5, "lines.markersize": 7,
}
BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#c8c8c8"
MASKED = "#d9d9d9"  # cells the causal mask removes
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# rc_context sets matplotlib's global rcParams: one styled build or render at a time across threads
_STYLE_LOCK = threading.RLock()


class Figure(_MatplotlibFigure):
    """A matplotlib Figure that draws under the projector style, whoever renders it
    (`figure_png`, or gr.Plot given the figure itself).

    Artists matplotlib makes lazily at draw time (ticks, colorbar labels, the
    constrained layout) get the large fonts too, and the figure is drawn once,
    when it is rendered: drawing it at build time as well doubled the cost of
    every view (~40% of a figure's time).
    """

    def draw(self, renderer):
        with _STYLE_LOCK, matplotlib.rc_context(PROJECTOR):
            return super().draw(renderer)


Figure.__module__ = _MatplotlibFigure.__module__  # gr.Plot knows a matplotlib figure by its module


def _projector(fn):
    """Build the figure under the projector style (the artists made now); `Figure.draw` styles the rest."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> Figure:
        with _STYLE_LOCK, matplotlib.rc_context(PROJECTOR):
            return fn(*args, **kwargs)

    return wrapper


def _message(text: str, size=(8, 3)) -> Figure:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=16, wrap=True)
    return fig


# --- attention -----------------------------------------------------------------------------


def _attention_image(ax, weights: np.ndarray, causal: bool):
    T = weights.shape[0]
    future = np.triu(np.ones((T, T), dtype=bool), 1) if causal else np.zeros((T, T), dtype=bool)
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad=MASKED)  # masked cells: plain grey, not "a small weight"
    return ax.imshow(np.ma.masked_array(weights, future), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")


def _token_ticks(ax, pieces: list[str], fontsize: float) -> None:
    labels = [show_piece(p) for p in pieces]
    T = len(labels)
    every = max(1, T // 40)  # past ~40 tokens, label every n-th so the labels stay legible
    ticks = list(range(0, T, every))
    rotation = 90 if any(len(labels[i]) > 2 for i in ticks) else 0
    ax.set_xticks(ticks, [labels[i] for i in ticks], fontsize=fontsize, rotation=rotation)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=fontsize)
    ax.tick_params(length=0)


@_projector
def attention_figure(maps: AttentionMaps, layer: int = 0, head: int = 0) -> Figure:
    """One head's (T, T) attention as a heatmap; tokens on both axes, the masked future in grey."""
    w = maps.head(layer, head).numpy()
    T = w.shape[0]
    side = min(12.0, 4.0 + 0.42 * T)
    fig = Figure(figsize=(side + 1.8, side), layout="constrained")
    ax = fig.add_subplot()
    im = _attention_image(ax, w, maps.causal)
    _token_ticks(ax, maps.pieces, fontsize=18 if T <= 16 else max(8, 18 - (T - 16) // 3))
    if T <= 12:  # few enough cells to print each weight
        for i in range(T):
            for j in range(T if not maps.causal else i + 1):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=12,
                        color="white" if w[i, j] > 0.55 else "black")
    if maps.causal and T >= 4:
        ax.text(0.72 * (T - 1), 0.22 * (T - 1), "masked:\nthe future", ha="center", va="center",
                fontsize=16, color="#666666", style="italic")
    ax.set_xlabel("key: the token being looked at")
    ax.set_ylabel("query: the token that looks")
    ax.set_title(f"Layer {layer}, head {head}" + ("" if maps.causal else " (no causal mask)"))
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight (each row sums to 1)")
    return fig


def attention_mosaic(maps: AttentionMaps, gap: int = 1) -> np.ndarray:
    """Every head's (T, T) map tiled in one array: layers down, heads across, `gap` NaN cells
    between tiles, the masked future NaN too. (n_layer * (T + gap) - gap, n_head * (T + gap) - gap)."""
    n_layer, n_head, T, _ = maps.weights.shape
    step = T + gap
    mosaic = np.full((n_layer * step - gap, n_head * step - gap), np.nan)
    future = np.triu(np.ones((T, T), dtype=bool), 1) if maps.causal else np.zeros((T, T), dtype=bool)
    weights = maps.weights.numpy()
    for layer in range(n_layer):
        for head in range(n_head):
            mosaic[layer * step : layer * step + T, head * step : head * step + T] = np.where(
                future, np.nan, weights[layer, head])
    return mosaic


@_projector
def attention_grid_figure(maps: AttentionMaps) -> Figure:
    """Every layer (rows) and head (columns) at once: spot the heads that do something distinct.

    One image of all the tiles (`attention_mosaic`), not a subplot per head:
    16 small axes with their ticks took ~2 s to lay out and draw on a busy
    2-core machine; one axes takes a tenth of that. Token labels live in the
    single-head heatmap; here the axes name the layers and heads.
    """
    n_layer, n_head, T, _ = maps.weights.shape
    mosaic = attention_mosaic(maps)
    rgba = matplotlib.colormaps["Blues"](np.nan_to_num(mosaic, nan=0.0))  # (rows, cols, 4)
    future = np.isnan(mosaic)
    gaps = np.zeros_like(future)
    gaps[T :: T + 1, :] = True
    gaps[:, T :: T + 1] = True
    rgba[future] = matplotlib.colors.to_rgba(MASKED)
    rgba[gaps] = (1.0, 1.0, 1.0, 1.0)
    cell = 3.2 if n_head <= 4 else 2.6
    fig = Figure(figsize=(cell * n_head + 2.2, cell * n_layer + 1.0), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(rgba, interpolation="nearest")
    centres = [(T - 1) / 2 + i * (T + 1) for i in range(max(n_layer, n_head))]
    ax.set_xticks(centres[:n_head], [f"head {h}" for h in range(n_head)])
    ax.set_yticks(centres[:n_layer], [f"layer {layer}" for layer in range(n_layer)])
    ax.tick_params(length=0)
    ax.xaxis.set_ticks_position("top")
    for side in ax.spines.values():
        side.set_visible(False)
    colours = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0.0, 1.0), matplotlib.colormaps["Blues"])
    fig.colorbar(colours, ax=ax, shrink=0.6, label="attention weight")
    fig.suptitle("In each tile, rows: the token that looks; columns: the token looked at."
                 + ("" if maps.causal else " (no mask)"), fontsize=16)
    return fig


# --- the next-token distribution -----------------------------------------------------------


def _knobs(view: NextTokenView) -> str:
    t = "T = 0 (greedy)" if view.temperature == 0 else f"T = {view.temperature:g}"
    k = f"top-k {view.top_k}" if view.top_k else "top-k off"
    p = f"top-p {view.top_p:g}" if view.top_p else "top-p off"
    return f"{t} · {k} · {p}"


NEXT_TOKEN_SERIES = ("sampled from (after T and filters)", "cut by top-k / top-p", "model's own (T = 1, no filter)")


def _next_token_top(rows: list[dict]) -> float:
    """The top of the probability axis: every bar and outline fits, with room for the labels above them."""
    top = max([*(r["prob"] for r in rows), *(r["raw"] for r in rows), *(r["tempered"] for r in rows if r["cut"]), 0.05])
    return min(1.08, top * 1.18)


def _token_labels_upright(labels: list[str]) -> bool:
    """Short token labels (characters) stand upright and large; longer ones (BPE pieces) are tilted and smaller."""
    return all(len(s) <= 3 for s in labels)


@_projector
def next_token_figure(view: NextTokenView) -> Figure:
    """Bars: what the sampler draws from (blue), tokens the filters cut (grey, hatched, at the
    probability they had before the cut), and the untouched T = 1 distribution (black outline)."""
    rows = view.rows
    x = np.arange(len(rows))
    labels = [show_piece(r["piece"]) for r in rows]
    fig = Figure(figsize=(max(9.0, 0.62 * len(rows) + 3), 6), layout="constrained")
    ax = fig.add_subplot()
    probs = [r["prob"] for r in rows]
    sampled, cut, own = NEXT_TOKEN_SERIES
    bars = ax.bar(x, probs, width=0.7, color=BLUE, label=sampled)
    ax.bar(x, [r["tempered"] if r["cut"] else 0.0 for r in rows], width=0.7, color=GREY, hatch="//",
           edgecolor="#808080", label=cut)
    ax.bar(x, [r["raw"] for r in rows], width=0.7, fill=False, edgecolor="black", linewidth=1.6, label=own)
    for bar, p, r in zip(bars, probs, rows):
        if p >= 0.01:  # the label sits above both the blue bar and the outline
            ax.text(bar.get_x() + bar.get_width() / 2, max(p, r["raw"]), f"{100 * p:.0f}%", ha="center", va="bottom",
                    fontsize=13)
    upright = _token_labels_upright(labels)
    ax.set_xticks(x, labels, fontsize=18 if upright else 13, rotation=0 if upright else 60)
    ax.set_ylim(0, _next_token_top(rows))
    ax.set_ylabel("probability")
    ax.set_title(f"What comes next? {_knobs(view)}")
    ax.legend(loc="upper right")
    return fig


def next_token_chart(view: NextTokenView) -> dict:
    """What the page needs to draw `next_token_figure` in the browser, for any temperature, top-k and top-p.

    The Next token view redraws on every move of a slider, while a run may be training on the same
    cores: a matplotlib PNG takes ~150 ms of the server's CPU, and any answer from the server waits
    its turn behind the page's other events. So the page gets every logit once per prompt (float32,
    base64: 260 bytes for characters, 200 KB for GPT-2's 50,257 tokens) and the bars it shows (the
    top tokens at T = 1, whose order no knob changes), and redraws the bars itself as the sliders
    move (`gpt/ui/views/next_token_chart.js`, which applies the sampler's filters step for step).
    """
    sampled, cut, own = NEXT_TOKEN_SERIES
    logits = view.logits.detach().float().cpu().numpy().astype("<f4")
    return {"logits": base64.b64encode(logits.tobytes()).decode("ascii"),
            "bars": [{"id": r["id"], "label": show_piece(r["piece"])} for r in view.rows],
            "series": [sampled, cut, own], "colors": {"sampled": BLUE, "cut": GREY},
            "knobs": {"temperature": view.temperature, "top_k": view.top_k or 0, "top_p": view.top_p or 1.0}}


# --- tokenizers ------------------------------------------------------------------------------


@_projector
def tokenizer_figure(rows: list[dict]) -> Figure:
    """The trade-off: fewer tokens for the same text (left) against a bigger vocabulary (right)."""
    ok = [r for r in rows if r.get("error") is None]
    if not ok:
        return _message("None of the tokenizers can encode this text.")
    names = [r["name"] for r in ok]
    y = np.arange(len(ok))
    fig = Figure(figsize=(14, 1.2 * len(ok) + 2.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.barh(y, [r["n_tokens"] for r in ok], color=BLUE)
    for i, r in enumerate(ok):
        left.text(r["n_tokens"], i, f" {r['n_tokens']:,} ({r['chars_per_token']:.2f} chars/token)", va="center",
                  fontsize=13)
    left.set_yticks(y, names)
    left.invert_yaxis()
    left.set_xlim(0, max(r["n_tokens"] for r in ok) * 1.7)
    left.set_xlabel("tokens for this text\n(fewer = longer context)")
    right.barh(y, [r["vocab_size"] for r in ok], color=ORANGE)
    right.set_xscale("log")
    for i, r in enumerate(ok):
        right.text(r["vocab_size"], i, f" {r['vocab_size']:,} → {r['embedding_params']:,} params", va="center",
                   fontsize=13)
    right.set_yticks(y, [])
    right.invert_yaxis()
    right.set_xlim(1, max(r["vocab_size"] for r in ok) * 300)
    width = ok[0]["embedding_params"] // max(1, ok[0]["vocab_size"])
    right.set_xlabel(f"vocabulary size (log)\n→ embedding parameters at width {width}")
    return fig


# --- model anatomy -------------------------------------------------------------------------


@_projector
def parameters_figure(config: GPTConfig) -> Figure:
    """Parameters per component, horizontal bars with counts and shares."""
    rows = parameter_rows(config)
    *parts, (_, total, _) = rows
    fig = Figure(figsize=(12, 0.8 * len(parts) + 2), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(parts))
    ax.barh(y, [n for _, n, _ in parts], color=BLUE)
    for i, (_, n, share) in enumerate(parts):
        ax.text(n, i, f" {n:,} ({share:g}%)", va="center", fontsize=14)
    ax.set_yticks(y, [name for name, _, _ in parts])
    ax.invert_yaxis()
    ax.set_xlim(0, max(max(n for _, n, _ in parts), 1) * 1.45)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("parameters")
    ax.set_title(f"{total:,} parameters in all")
    return fig


# --- runs ----------------------------------------------------------------------------------

AXIS_NAMES = {"step": "training step", "elapsed_s": "wall time (s)", "val_bpc": "validation bits per character",
              "val_loss": "validation loss (nats per token)", "train_loss": "training loss (nats per token)"}


@_projector
def runs_figure(runs: list[RunSummary], x: str = "step", y: str = "val_bpc") -> Figure:
    """One line per run on a common axis. Bits per character compares runs with different
    tokenizers fairly; loss per token does not (a token is a different amount of text)."""
    fig = Figure(figsize=(12, 7), layout="constrained")
    ax = fig.add_subplot()
    drawn = 0
    for run in runs:
        pts = [(r[x], r[y]) for r in run.metrics if r.get(x) is not None and r.get(y) is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", label=f"{run.name} ({ys[-1]:.3f})")
            drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "No metrics yet in the chosen runs.", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend()
    ax.set_xlabel(AXIS_NAMES.get(x, x))
    ax.set_ylabel(AXIS_NAMES.get(y, y) + " ↓")
    ax.grid(alpha=0.3)
    return fig


@_projector
def mask_figure(experiment: MaskExperiment) -> Figure:
    """Training (solid) and validation (dashed) loss, with and without the causal mask."""
    fig = Figure(figsize=(12, 7), layout="constrained")
    ax = fig.add_subplot()
    for (label, rows), color in zip(experiment.curves.items(), (BLUE, ORANGE)):
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["train_loss"] for r in rows], color=color, label=f"{label}: train")
        ax.plot(steps, [r["val_loss"] for r in rows], color=color, linestyle="--", label=f"{label}: val")
        ax.annotate(f"{rows[-1]['train_loss']:.2f}", (steps[-1], rows[-1]["train_loss"]), textcoords="offset points",
                    xytext=(8, 0), va="center", color=color, fontsize=15)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats per character)")
    ax.set_ylim(bottom=0)
    ax.set_title("Without the mask the model copies the answer")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


# --- export --------------------------------------------------------------------------------


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes.

    zlib level 1: these flat-coloured figures compress ~25% less than at the
    default level 6 but ~3x faster (a 1,300 x 1,100 heatmap: 0.2 s against 0.55 s).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike | None = None, dpi: int = 110) -> Path:
    """Write the figure as a PNG (to a new temporary file when no path is given) and return its path,
    ready for gr.File or gr.DownloadButton."""
    if path is None:
        fd, name = tempfile.mkstemp(prefix="gpt-figure-", suffix=".png")
        os.close(fd)
        path = name
    path = Path(path)
    path.write_bytes(figure_png(fig, dpi))
    return path


# --- the lesson ----------------------------------------------------------------------------


@_projector
def weights_figure(weights, title: str = "wei: how much each position takes from each earlier one") -> Figure:
    """A (T, T) weight matrix of the lesson (the averaging trick, one head); the future greyed out."""
    w = np.asarray(weights, dtype=float)
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.add_subplot()
    image = _attention_image(ax, w, causal=True)
    for i in range(w.shape[0]):
        for j in range(i + 1):
            ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=10,
                    color="white" if w[i, j] > 0.6 else "black")
    ax.set_xlabel("earlier position (key)")
    ax.set_ylabel("position (query)")
    ax.set_title(title, fontsize=15)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig
