"""The layers point down and nothing goes round in a circle.

- core (`gpt/*`, but `gpt/jobs` and `gpt/ui`) knows nothing of the run service, Gradio or hosting;
- only `gpt/ui` (and app.py) imports Gradio;
- no import circle anywhere in `gpt/` or app.py. Every import counts: at the top, inside a function, under
  TYPE_CHECKING; and a package whose `__init__` imports submodules that import the package back is a circle.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path) -> dict[str, Path]:
    """Every module of the `gpt` package under `root` and app.py, by dotted name."""
    found = {_module_name(p, root): p for p in sorted((root / "gpt").rglob("*.py"))}
    if (root / "app.py").exists():
        found["app"] = root / "app.py"
    return found


def _imports(path: Path, root: Path, known: set[str]) -> set[str]:
    """The modules a file imports, every import statement counted, relative imports resolved.

    `from pkg import name` is an import of the module `pkg.name` when that is a module, else of `pkg`
    itself (its `__init__`): that is how a submodule that takes a name from its package imports it back.
    """
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
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
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in known else module)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = _modules(root)
    known = set(modules)
    return {m: {i for i in _imports(p, root, known) if i in known and i != m} for m, p in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each a circle of imports."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_in_gpt_or_the_app():
    found = circles(import_graph(ROOT))
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_circle_finder_sees_each_kind_of_circle(tmp_path):
    """Built in a folder of its own (no test writes into the package): a circle through a function's import, one
    under TYPE_CHECKING, and a package whose __init__ imports a submodule that takes a name back from it."""
    pkg = tmp_path / "gpt"
    (pkg / "lesson").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n")
    (pkg / "lesson" / "__init__.py").write_text("from .steps import run\nclass Lesson: pass\n")
    (pkg / "lesson" / "steps.py").write_text("from . import Lesson\ndef run(): pass\n")
    (pkg / "c.py").write_text("from .lesson import steps\n")  # a submodule, not the package: no circle
    found = circles(import_graph(tmp_path))
    assert ["gpt.a", "gpt.b"] in found and ["gpt.lesson", "gpt.lesson.steps"] in found and len(found) == 2


def _layer_files(exclude: tuple[str, ...]) -> list[Path]:
    return [p for p in sorted((ROOT / "gpt").rglob("*.py")) if p.relative_to(ROOT / "gpt").parts[0] not in exclude]


def _plain_imports(path: Path) -> set[str]:
    return _imports(path, ROOT, set(_modules(ROOT))) | {
        alias.name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import) for alias in node.names}


@pytest.mark.parametrize("path", _layer_files(("ui",)), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_gpt_ui_imports_gradio(path):
    bad = {m for m in _plain_imports(path) if m.split(".")[0] == "gradio" or m == "gpt.ui" or m.startswith("gpt.ui.")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: only gpt/ui and app.py may"


@pytest.mark.parametrize("path", _layer_files(("ui", "jobs")), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_knows_nothing_of_the_run_service(path):
    bad = {m for m in _plain_imports(path) if m == "gpt.jobs" or m.startswith("gpt.jobs.")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: core must not know the run service"


HOSTING = re.compile(r"zero_?gpu|spaces\.GPU|GPU slice|storage volume|\bslices?\.py|SPACES_", re.IGNORECASE)


@pytest.mark.parametrize("path", _layer_files(("ui", "jobs")), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_says_nothing_of_hosting(path):
    """ZeroGPU, GPU slices and storage volumes are the run service's and the page's business, not the lecture's."""
    hits = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if HOSTING.search(line)]
    assert not hits, f"{path.relative_to(ROOT)} mentions hosting: {hits[:3]}"


def test_the_layer_checks_see_a_violation(tmp_path):
    """The rules above can fail: a core file that imports gradio and the run service is caught."""
    pkg = tmp_path / "gpt"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "probe.py").write_text("import gradio\nfrom .ui import page\nfrom .jobs.manager import JobManager\n")
    found = _imports(pkg / "probe.py", tmp_path, {"gpt.ui.page", "gpt.jobs.manager"})
    assert {"gpt.ui.page", "gpt.jobs.manager"} <= found and HOSTING.search("a GPU slice on ZeroGPU")


def test_the_run_service_loads_neither_gradio_nor_the_ui():
    code = ("import sys, gpt.jobs, gpt.train, gpt.sample, gpt.insight, gpt.plots; "
            "bad = [m for m in sys.modules if m == 'gradio' or m.startswith(('gradio.', 'gpt.ui'))]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, f"importing the run service loaded: {out.stdout.strip() or out.stderr[-500:]}"
