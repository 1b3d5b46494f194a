"""The layers point down: core knows nothing of the run service or Gradio; only gpt/ui imports Gradio."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in _files("gpt") if "ui" not in p.relative_to(ROOT / "gpt").parts[:1]],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_gpt_ui_imports_gradio(path):
    bad = {m for m in _imports(path) if m.split(".")[0] == "gradio" or m == "gpt.ui" or m.startswith("gpt.ui.")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: only gpt/ui and app.py may"


@pytest.mark.parametrize("path", [p for p in _files("gpt") if p.relative_to(ROOT / "gpt").parts[0] not in ("ui", "jobs")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_core_knows_nothing_of_the_run_service(path):
    bad = {m for m in _imports(path) if m == "gpt.jobs" or m.startswith("gpt.jobs.")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: core must not know the run service"


def test_the_checker_sees_a_violation(tmp_path):
    """The rule above can fail: a core file that imports gradio is caught."""
    fake = ROOT / "gpt" / "_layer_probe.py"
    fake.write_text("import gradio\nfrom .ui import page\n", encoding="utf-8")
    try:
        assert {"gradio", "gpt.ui.page"} <= _imports(fake)
    finally:
        fake.unlink()


def test_the_run_service_loads_neither_gradio_nor_the_ui():
    code = ("import sys, gpt.jobs, gpt.train, gpt.sample, gpt.insight, gpt.plots; "
            "bad = [m for m in sys.modules if m == 'gradio' or m.startswith(('gradio.', 'gpt.ui'))]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, f"importing the run service loaded: {out.stdout.strip() or out.stderr[-500:]}"
