"""A function of a model compiled ahead of time into a shared library (AOTInductor), kept on disk by what it computes.

Why a decode step goes this way (`gpt.compiled_step`): torch.compile's graph
takes every weight as an input and is entered through Dynamo's guards and
AOT's wrappers, ~150 us of a small model's ~400 us step on one thread here,
and its matrix products are MKL's, which repack the weight on every call
(~60% of a product's time at 4 rows). A package is entered with its few real
inputs straight into C++, and its weights are constants, frozen into the
library: the compiler lays them out once for products it writes itself
(inductor's C++ GEMM template). On the shipped model the step went from
~360 to ~160 us (docs/benchmarks.md).

The price is that a package holds one model's weights: it is built per model
(~20 s for the shipped one, a C++ compiler running) and kept in a cache
directory under a key of everything it depends on (torch, this CPU's vector
instructions, the threads it is built for, the traced graph, every weight's
bytes), so a server that starts again, or a second process serving the same
run, loads it in a moment. A different model never gets another's package:
a changed weight is another key.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import tempfile
from typing import Callable

import torch
import torch.nn as nn

CACHE_ENV = "GPT_PACKAGE_CACHE"  # where packages are kept; default: beside inductor's own cache
CACHE_BYTES = 2 * 1024**3  # past this the packages used least lately are deleted

Run = Callable[[list[torch.Tensor]], list[torch.Tensor]]


class _Bound(nn.Module):
    """fn(view, *args) as a module, for torch.export: the view's weights become the program's constants."""

    def __init__(self, fn: Callable, view: nn.Module):
        super().__init__()
        self.fn, self.view = fn, view

    def forward(self, *args):
        return self.fn(self.view, *args)


def cache_dir() -> str:
    from torch._inductor.runtime.cache_dir_utils import cache_dir as inductor_cache

    return os.environ.get(CACHE_ENV) or os.path.join(inductor_cache(), "gpt-packages")


def package(fn: Callable, view: nn.Module, args: tuple, dynamic_shapes=None, options: dict | None = None) -> tuple[Run, bool]:
    """fn(view, *args) compiled into a package, or loaded from the cache when one was built for the same graph
    and weights: (run, loaded), where run(list of args' tensors) -> list of fn's output tensors, and loaded says
    the package came from the cache. Raises what export or the compiler raised (no C++ compiler, an op inductor
    cannot lower): the caller decides what serves instead."""
    from torch._inductor import aoti_compile_and_package

    with torch.inference_mode():
        program = torch.export.export(_Bound(fn, view), args,  # forward(*args): the shapes of its one argument
                                      dynamic_shapes=None if dynamic_shapes is None else (dynamic_shapes,))
    path = os.path.join(cache_dir(), _key(program, options or {}) + ".pt2")
    if os.path.exists(path):
        try:
            loaded = _load(path)
            os.utime(path)  # used lately: the last to be pruned
            return loaded.loader.run, True
        except Exception:  # noqa: BLE001 - a package cut short or from elsewhere: build it again
            os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".building-", dir=os.path.dirname(path)) as building:
        partial = os.path.join(building, "package.pt2")
        with torch.inference_mode():
            aoti_compile_and_package(program, package_path=partial, inductor_configs=dict(options or {}))  # it adds to them
        os.replace(partial, path)  # whole or not at all: a second process may be loading it
    _prune(os.path.dirname(path), keep=path)
    return _load(path).loader.run, False


def _load(path: str):
    """The package at `path`, loaded. The loader unpacks its library into a new folder under $TMPDIR and never
    deletes it (~6 MB a load: every start of a decode process, every test): here it unpacks into a folder of
    ours, deleted once the library is loaded (Linux keeps a loaded library whose file is gone)."""
    from torch._inductor import aoti_load_package

    tempfile.gettempdir()  # Python's own temporary folder, fixed before TMPDIR points elsewhere for a moment
    folder, before = tempfile.mkdtemp(prefix="gpt-package-"), os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = folder
    try:
        return aoti_load_package(path)
    finally:
        if before is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = before
        shutil.rmtree(folder, ignore_errors=True)


def _key(program, options: dict) -> str:
    """Everything the library depends on: a change in any of it is a new package."""
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    h = hashlib.sha256()
    for part in (torch.__version__, sys.version, platform.machine(), str(pick_vec_isa()), torch.get_num_threads(),
                 sorted(options.items()), program.graph_module.code, program.range_constraints, program.call_spec):
        h.update(repr(part).encode())
    for name, t in sorted({**program.state_dict, **program.constants}.items()):
        if isinstance(t, torch.Tensor):
            h.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:32]


def _prune(folder: str, keep: str, limit: int = CACHE_BYTES) -> None:
    """Delete the packages used least lately until the folder is under `limit` bytes; `keep` stays."""
    try:
        entries = [(e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(folder)
                   if e.name.endswith(".pt2") and e.is_file()]
    except OSError:
        return
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        if path != keep:
            try:
                os.unlink(path)
                total -= size
            except OSError:
                pass
