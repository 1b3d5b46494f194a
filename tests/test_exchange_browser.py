"""The exchange panel in a real browser: download a run for transformers and nanoGPT, upload nanoGPT files,
read where a run can go before any click (a lecture-ladder rung, a modern run, a nanochat-block run).

Twice: in a small gr.Blocks page that mounts the panel alone (with its own run
picker), and in the app itself, where the Checkpoints tab shares its run picker.
Playwright drives Debian's Chromium (never `playwright install`); elements
are found by elem_id and the page is never waited on for 'network idle'.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from helpers_app import free_port
from helpers_browser import ARGS, CHROMIUM, SHOTS, sync_api, text, wait_text
from helpers_convert import random_run, switches_of

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import gradio as gr

    from gpt.jobs import JobManager
    from gpt.jobs import folder as folders
    from gpt.limits import Limits
    from gpt.ui.exchange import build_exchange_panel
    from gpt.jobs.sampling import ModelCache
    from gpt.ui.page import Page

    root = tmp_path_factory.mktemp("runs")
    manager = JobManager(root, Limits(), device="cpu")
    random_run(root / "mine")
    folders.write_app_info(root / "mine", {"owner": "alice", "shared": False})
    random_run(root / "modern", pos_emb="rope", qk_norm=True, activation="relu2", tie_weights=False, bias=False)
    from gpt.ladder import RUNGS

    for number in (5, 6):  # as the Lesson tab's "Train the ladder" names its runs
        random_run(root / f"ladder-rung{number}", **switches_of(RUNGS[number].model))
    random_run(root / "nanochat", pos_emb="rope", qk_norm=True, activation="relu2", tie_weights=False, bias=False,
               norm="rms", embed_norm=True)
    with gr.Blocks() as demo:
        who = gr.State("alice")  # the app's BrowserState holds the asker's id the same way
        page = Page(manager=manager, models=ModelCache(), who=who)
        with gr.Tab("Checkpoints"):
            build_exchange_panel(page)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", manager
    manager.shutdown()
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:  # one per module: Playwright's sync API does not nest
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def new_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(url)
    return page


@pytest.fixture(scope="module")
def page(served, browser):
    page = new_page(browser, served[0])
    yield page
    page.close()


def choose_run(page, name: str) -> None:
    """Open the picker (its focus event fills the choices with the runs the asker may see) and pick `name`."""
    box = page.locator("#exchange-run input")
    for _ in range(5):
        page.mouse.click(5, 5)  # leave the picker first, so the next click opens it afresh
        box.click()
        page.get_by_role("option", name=name, exact=False).first.click()
        page.wait_for_timeout(500)
        if box.input_value().startswith(name):
            return
    raise AssertionError(f"the run picker did not keep {name!r}")


def downloaded(page, elem_id: str) -> tuple[str, bytes]:
    try:
        page.wait_for_function("(id) => { const b = document.querySelector(`#${id}`);"
                               " return b && !b.disabled && !b.querySelector('button[disabled]'); }", arg=elem_id)
    except sync_api.TimeoutError:  # say what the panel showed instead (a flake explains itself)
        raise AssertionError(f"#{elem_id} never became ready; it says {text(page, elem_id)!r}, the plan says "
                             f"{text(page, 'export-plan')!r}, the message {text(page, 'exchange-msg')!r}") from None
    with page.expect_download() as info:
        page.click(f"#{elem_id}")
    return info.value.suggested_filename, Path(info.value.path()).read_bytes()


def test_download_each_format_then_upload_the_nanogpt_files_back(page, served, tmp_path):
    choose_run(page, "mine")
    name, data = downloaded(page, "export-hf")
    assert name == "mine-transformers.zip"
    assert "mine-transformers/config.json" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    name, data = downloaded(page, "export-nanogpt")
    files = zipfile.ZipFile(io.BytesIO(data))
    assert name == "mine-nanoGPT.zip" and sorted(files.namelist()) == ["mine-nanoGPT/ckpt.pt", "mine-nanoGPT/meta.pkl"]
    files.extractall(tmp_path)

    page.set_input_files("#import-upload input[type=file]",
                         [str(tmp_path / "mine-nanoGPT" / "ckpt.pt"), str(tmp_path / "mine-nanoGPT" / "meta.pkl")])
    wait_text(page, "exchange-msg", "Imported as")
    imported = page.locator("#exchange-msg").inner_text().split("Imported as ")[1].split(":")[0].strip()
    assert served[1].runs.visible("alice", imported) and not served[1].runs.visible("bob", imported)


def button_state(page, elem_id: str) -> tuple[bool, str]:
    """(enabled, its text) of a DownloadButton."""
    button = page.locator(f"#{elem_id}")
    return button.is_enabled(), button.inner_text().strip()


def test_a_ladder_rung_says_where_it_can_go_before_any_click(page, tmp_path):
    choose_run(page, "ladder-rung6")
    wait_text(page, "export-plan", "This run can download as a transformers model (GPT-2); nanoGPT cannot express "
                                   "its relu activation or untied LM head.")
    page.wait_for_function("() => document.querySelector('#export-nanogpt').disabled")
    assert button_state(page, "export-nanogpt") == (False, "nanoGPT cannot hold this run")
    name, data = downloaded(page, "export-hf")
    assert name == "ladder-rung6-transformers.zip"
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    assert '"GPT2LMHeadModel"' in (tmp_path / "ladder-rung6-transformers" / "config.json").read_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#exchange").screenshot(path=SHOTS / "exchange-ladder-rung6.png")

    choose_run(page, "ladder-rung5")
    wait_text(page, "export-plan", "This run cannot download in another format: transformers' GPT-2 cannot express "
                                   "its lack of norms")
    page.wait_for_function("() => document.querySelector('#export-hf').disabled")
    assert button_state(page, "export-hf") == (False, "transformers cannot hold this run")
    assert "Something went wrong" not in text(page, "exchange") and text(page, "exchange-msg").strip() == ""


def test_a_nanochat_block_run_downloads_as_transformers_nanochat(page, tmp_path):
    choose_run(page, "nanochat")
    wait_text(page, "export-plan", "This run can download as a transformers model (NanoChat)")
    name, data = downloaded(page, "export-hf")
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    assert '"model_type": "nanochat"' in (tmp_path / "nanochat-transformers" / "config.json").read_text()


def test_a_modern_run_downloads_as_qwen3_and_gpt2_gets_a_plain_refusal(page, tmp_path):
    choose_run(page, "modern")
    wait_text(page, "export-plan", "This run can download as a transformers model (Qwen3); nanoGPT cannot express "
                                   "its rotary positions")
    name, data = downloaded(page, "export-hf")
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    assert '"Qwen3ForCausalLM"' in (tmp_path / "modern-transformers" / "config.json").read_text()
    page.click("#start-gpt2")
    wait_text(page, "exchange-msg", "124M parameters, over this server's limit of 25M")


def test_in_the_app_the_checkpoints_tab_exports_and_imports(browser, tmp_path_factory, tmp_path):
    from helpers_app import launch_app

    root = tmp_path_factory.mktemp("app-runs")
    random_run(root / "shipped")  # no owner file: a run everyone sees, like the shipped one
    demo, url = launch_app(root)
    try:
        page = new_page(browser, url)
        page.get_by_role("tab", name="4 · Checkpoints").click()
        wait_text(page, "runs-table", "shipped")
        name, _ = downloaded(page, "export-hf")
        assert name == "shipped-transformers.zip"
        name, data = downloaded(page, "export-nanogpt")
        zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
        page.set_input_files("#import-upload input[type=file]", [str(tmp_path / "shipped-nanoGPT" / "ckpt.pt"),
                                                                 str(tmp_path / "shipped-nanoGPT" / "meta.pkl")])
        wait_text(page, "exchange-msg", "Imported as")
        page.click("#start-gpt2")
        wait_text(page, "exchange-msg", "over this server's limit")
        page.close()
    finally:
        demo.manager.shutdown()
        demo.close()
