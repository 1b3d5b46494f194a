"""The Checkpoints tab's exchange panel: a run out to transformers or nanoGPT, a model in, GPT-2 to start from.

Plain handlers first (each testable without a browser), then one layout
function, `build_exchange_panel(page, run)`, that `gpt.ui.checkpoints_tab`
calls inside the tab's `with gr.Tab(...)` block, sharing its run picker. The conversions themselves are
`gpt.convert`; here is only who may do what and where the files go:
- choosing a run says at once, from its settings alone, where it can go
  (`gpt.convert.verdicts`): a line above the buttons names what each format
  cannot express, and a button for a format that cannot carry the run stays
  disabled, so no click ever ends in an error;
- a download is prepared for a run the asker may see, once per saved step;
- an upload (a transformers folder as .zip, nanoGPT's ckpt.pt with its
  meta.pkl, or both zipped) is size-checked, unzipped without trusting its
  names, converted, and becomes a run of the uploader's own;
- "Start from GPT-2" checks the server's parameter limit before it
  downloads 500 MB, and says plainly when the hub cannot be reached.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .. import checkpoint as ckpt
from .. import convert
from ..checkpoint_check import check_checkpoint
from ..errors import ConvertError
from ..jobs import JobManager
from ..jobs import folder as folders
from ..jobs.folder import write_app_info
from .pickers import run_label
from .messages import problem, say
from .page import PRIVATE, Page
from .uploads import still_cached

FORMATS = {"hf": ("transformers", convert.run_to_hf), "nanogpt": ("nanoGPT", convert.run_to_nanogpt)}
BUTTONS = {"hf": "⬇ transformers (.zip)", "nanogpt": "⬇ nanoGPT (.zip)"}
IMPORT_TYPES = [".zip", ".pt", ".pkl"]


def _exports_dir() -> Path:
    return Path(tempfile.gettempdir()) / "gpt-exports"


def _saved_run(manager: JobManager, owner: str, name: str) -> Path:
    """The folder of a run `owner` may see that has weights, or a sentence why not."""
    if not owner:
        raise ConvertError("The page has not finished loading; try again in a second.")
    if not name or not manager.runs.visible(owner, name):
        raise ConvertError(f"There is no run named {name!r}." if name else "Choose a run first.")
    run = manager.runs.run_path(name)
    if not (run / ckpt.WEIGHTS).exists():
        raise ConvertError(f"Run {name!r} has no checkpoint yet; it is saved at its first evaluation.")
    return run


def crossings(manager: JobManager, owner: str, name: str) -> dict[str, convert.Verdict]:
    """Where the run `name` can go ({'hf': ..., 'nanogpt': ...}), read from its weights' header alone."""
    checked = check_checkpoint(_saved_run(manager, owner, name) / ckpt.WEIGHTS, manager.limits)
    return convert.verdicts(checked.model_config, checked.tokenizer)


def export_zip(manager: JobManager, owner: str, name: str, fmt: str) -> str:
    """The run `name` as a .zip in format `fmt` ('hf' or 'nanogpt'); made once per saved step."""
    run = _saved_run(manager, owner, name)
    label, export = FORMATS[fmt]
    saved = int((run / ckpt.WEIGHTS).stat().st_mtime_ns)
    folder = _exports_dir() / f"{name}@{saved}"  # '@' is never in a run name: one folder per saved step
    out = folder / f"{name}-{label}.zip"
    if not out.exists():
        for old in _exports_dir().glob(f"{name}@*"):  # an earlier step's downloads
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=_mkdir(_exports_dir())))
        try:
            export(run, work / f"{name}-{label}")
            convert.zip_folder(work / f"{name}-{label}", _mkdir(folder) / out.name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return str(out)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _new_run(manager: JobManager, owner: str, base: str, make, info: dict) -> str:
    """A fresh folder that `make(path)` fills; kept, owned by `owner`, only if it loads."""
    path = folders.new_folder(manager.root, base)
    try:
        make(path)
        loaded = ckpt.load_checkpoint(path)  # the imported run samples: the check every upload passes
        manager.limits.check_params(int(loaded.meta.get("n_params") or 0))
        write_app_info(path, {"owner": owner, "shared": False, "created": time.time(), "source": "shakespeare",
                              "corpus": loaded.meta.get("corpus", "imported"), **info})
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path.name


def import_upload(manager: JobManager, owner: str, paths: list[str]) -> str:
    """Uploaded files as a run of `owner`: a .zip (transformers folder or nanoGPT), or ckpt.pt (+ meta.pkl)."""
    if not owner:
        raise ConvertError("The page has not finished loading; try again in a second.")
    files = [Path(p) for p in paths or []]
    if not files:
        raise ConvertError("Choose a file first: a transformers folder as .zip, or nanoGPT's ckpt.pt (+ meta.pkl).")
    for f in files:
        manager.limits.check_upload(still_cached(f).stat().st_size, f.name)
        if f.suffix.lower() not in IMPORT_TYPES:
            raise ConvertError(f"{f.name} is not a .zip, .pt or .pkl; upload a transformers folder as .zip, or "
                               "nanoGPT's ckpt.pt (and its meta.pkl).")
    shown = ", ".join(f.name for f in files)
    staging = Path(tempfile.mkdtemp(prefix="gpt-import-"))
    try:
        zips = [f for f in files if f.suffix.lower() == ".zip"]
        if zips:
            if len(files) > 1:
                raise ConvertError("Upload one .zip alone (it holds the whole model folder).")
            src = convert.unzip_safely(zips[0], staging / "model", 2 * manager.limits.max_upload_bytes, zips[0].name)
        else:
            kinds = sorted(f.suffix.lower() for f in files)
            if kinds not in ([".pt"], [".pkl", ".pt"]):
                raise ConvertError("Upload nanoGPT's ckpt.pt, with at most one meta.pkl beside it.")
            src = staging
            for f in files:
                shutil.copyfile(f, src / ("meta.pkl" if f.suffix.lower() == ".pkl" else "ckpt.pt"))
        base = (zips[0].stem if zips else "nanogpt")[:40]
        if (src / "config.json").exists():
            return _new_run(manager, owner, base, lambda p: convert.hf_to_run(src, p), {"uploaded_from": shown})
        if (src / "ckpt.pt").exists():
            return _new_run(manager, owner, base, lambda p: convert.nanogpt_to_run(src, p), {"uploaded_from": shown})
        raise ConvertError(f"{shown} holds neither a transformers config.json nor nanoGPT's ckpt.pt.")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def start_from_gpt2(manager: JobManager, owner: str, progress=None) -> str:
    """GPT-2 124M, downloaded, as a run of `owner` (refused first when over the server's parameter limit)."""
    if not owner:
        raise ConvertError("The page has not finished loading; try again in a second.")
    limit = manager.limits.max_params
    if convert.hub.GPT2_PARAMS > limit:
        raise ConvertError(f"GPT-2 has {convert.hub.GPT2_PARAMS / 1e6:.0f}M parameters, over this server's limit of "
                           f"{limit / 1e6:.0f}M (GPT_MAX_PARAMS); whoever runs the server can raise it "
                           "(GPT_MAX_PARAMS=130000000). On a CPU it samples a few tokens a second.")
    src = convert.download_gpt2(progress=progress)
    return _new_run(manager, owner, "gpt2", lambda p: convert.hf_to_run(src, p, corpus="GPT-2 (WebText)"),
                    {"downloaded": convert.hub.REPO})


# --- the handlers the events call: components in, components out -------------------------------


class ExchangeHandlers:
    def __init__(self, manager: JobManager):
        self.m = manager

    def run_choices(self, owner, current=None):
        runs = [r for r in self.m.runs.list_runs(owner) if r.has_weights]
        names = [r.name for r in runs]
        choices = [(run_label(r), r.name) for r in runs]
        if current in names:  # leave the value alone: the person may be choosing another run right now
            return gr.update(choices=choices)
        return gr.update(choices=choices, value=names[0] if names else None)

    def prepare(self, owner, name):
        """(transformers button, nanoGPT button, the line saying where the run can go, a failure note).

        The line comes from the run's settings, before any file is made; only the formats that can carry
        the run are exported, and their buttons enabled."""
        closed = {fmt: gr.update(value=None, interactive=False, label=BUTTONS[fmt]) for fmt in FORMATS}
        if not name:
            return closed["hf"], closed["nanogpt"], "", ""
        try:
            found = crossings(self.m, owner, name)
        except Exception as err:  # noqa: BLE001 - no weights yet, a damaged header: one sentence
            return closed["hf"], closed["nanogpt"], _failure(err, "The run's settings could not be read"), ""
        buttons, notes = dict(closed), []
        for fmt, verdict in found.items():
            if not verdict.carrier:
                buttons[fmt] = gr.update(value=None, interactive=False, label=f"{verdict.label} cannot hold this run")
                continue
            try:
                buttons[fmt] = gr.update(value=export_zip(self.m, owner, name, fmt), interactive=True, label=BUTTONS[fmt])
            except Exception as err:  # noqa: BLE001 - a full disk: one sentence, the other format may still work
                notes.append(f"{verdict.label}: {_failure(err, 'The export failed')}")
        return buttons["hf"], buttons["nanogpt"], convert.summary(found), "\n\n".join(notes)

    def upload(self, owner, files):
        if not files:
            return gr.skip()
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files]
        try:
            name = import_upload(self.m, owner, paths)
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(f"Imported as **{name}**: it is in the Generate tab now, and resumes like your own runs.")

    def gpt2(self, owner, progress=gr.Progress()):
        try:
            name = start_from_gpt2(self.m, owner, progress=lambda f, m: progress(f, desc=m))
        except Exception as err:  # noqa: BLE001
            return problem(err)
        return say(f"GPT-2 is your run **{name}**: sample it in the Generate tab, or resume it to fine-tune "
                   "on Tiny Shakespeare.")


def _failure(err: BaseException, what: str) -> str:
    """`err` as a red line; a bug reads "`what` on the server", never "Something went wrong" (a format that
    cannot carry a run is refused before any export, so only a full disk or a bug gets here)."""
    return problem(err, toast=False, unexpected=f"{what} on the server; it was logged, and the other format may "
                                                "still work.")


# --- the layout --------------------------------------------------------------------------------


@dataclass
class ExchangePanel:
    run: gr.Component
    plan: gr.Markdown  # where the chosen run can go, before any click
    hf: gr.DownloadButton
    nanogpt: gr.DownloadButton
    upload: gr.File
    gpt2: gr.Button
    message: gr.Markdown
    imported: list  # the upload and GPT-2 events: chain `.then(...)` to refresh the tab's runs table


def build_exchange_panel(page: Page, run: gr.Component | None = None) -> ExchangePanel:
    """The panel, inside the current Blocks context. `run`: the tab's run dropdown, if it has one to share."""
    h = ExchangeHandlers(page.manager)
    with gr.Accordion("Models in and out: transformers, nanoGPT, GPT-2", open=True, elem_id="exchange"):
        gr.Markdown("A classic GPT is GPT-2 weight for weight, a modern one (the default) is transformers' Qwen3 "
                    "and one with nanochat's block its NanoChat: download it for Hugging Face `transformers` (a "
                    "folder as .zip) or, classic only, for nanoGPT (`ckpt.pt`, and `meta.pkl` for characters), or "
                    "bring one in.")
        if run is None:
            run = gr.Dropdown(label="Run to export", elem_id="exchange-run")
            run.focus(h.run_choices, [page.who, run], run, **PRIVATE)
        plan = gr.Markdown(elem_id="export-plan")
        with gr.Row():
            hf = gr.DownloadButton(BUTTONS["hf"], interactive=False, elem_id="export-hf")
            nano = gr.DownloadButton(BUTTONS["nanogpt"], interactive=False, elem_id="export-nanogpt")
            gpt2 = gr.Button("Start from GPT-2 (124M, downloads 550 MB)", elem_id="start-gpt2")
        upload = gr.File(label="Import: a transformers folder as .zip, or nanoGPT's ckpt.pt (+ meta.pkl). "
                               "Pickles are read as weights only; anything else in them is refused.",
                         file_types=IMPORT_TYPES, file_count="multiple", type="filepath", elem_id="import-upload")
        message = gr.Markdown(elem_id="exchange-msg")
    run.change(h.prepare, [page.who, run], [hf, nano, plan, message], **PRIVATE)
    imported = [upload.upload(h.upload, [page.who, upload], message, **PRIVATE),
                gpt2.click(h.gpt2, [page.who], message, **PRIVATE)]
    return ExchangePanel(run, plan, hf, nano, upload, gpt2, message, imported)
