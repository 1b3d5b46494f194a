"""A package (gpt.packaged_graph): it computes what the function computes, is kept under a key of everything it
depends on (a model with one weight changed never gets another's package), is loaded from the cache the
second time, is built again when the cached file was cut short, and the cache is pruned least-lately-used first."""

import os
import tempfile
import time

import torch
import torch.nn as nn

from gpt import packaged_graph


def affine(view, x):
    """The function packaged here: small enough to compile in seconds."""
    return (torch.relu(view.lin(x)) * 2,)


def model(seed=0):
    torch.manual_seed(seed)
    view = nn.Module()
    view.lin = nn.Linear(8, 8)
    return view.eval()


def test_a_package_computes_the_function_is_loaded_the_second_time_and_rebuilt_when_cut_short(monkeypatch, tmp_path):
    monkeypatch.setenv(packaged_graph.CACHE_ENV, str(tmp_path))
    view, x = model(), torch.randn(4, 8)
    run, loaded = packaged_graph.package(affine, view, (x,))
    assert not loaded
    with torch.inference_mode():
        torch.testing.assert_close(run([x])[0], affine(view, x)[0])
    [built] = os.listdir(tmp_path)  # the package alone: its build folder is gone
    assert built.endswith(".pt2")
    temporary = tmp_path.parent / f"{tmp_path.name}-tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # where this process's temporary folders go...
    monkeypatch.setenv("TMPDIR", str(temporary))  # ...and the loader's (it unpacked there and left it)
    again, loaded = packaged_graph.package(affine, view, (x,))
    assert loaded and torch.equal(again([x])[0], run([x])[0])
    assert os.listdir(temporary) == [] and os.environ["TMPDIR"] == str(temporary)  # the unpacked library is not left
    path = tmp_path / built
    whole = path.read_bytes()
    path.write_bytes(whole[:1000])  # a package cut short (a disk that filled, a copy stopped)
    builds = []

    def build(program, package_path, inductor_configs):  # the compiler again, without its 10-20 s
        builds.append(package_path)
        with open(package_path, "wb") as f:
            f.write(whole)

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", build)
    rebuilt, loaded = packaged_graph.package(affine, view, (x,))
    assert not loaded and len(builds) == 1 and path.read_bytes() == whole
    assert torch.equal(rebuilt([x])[0], run([x])[0])


def test_the_key_is_every_weight_the_graph_and_the_options():
    x = torch.randn(4, 8)

    def key(view, options=None, fn=affine):
        with torch.inference_mode():
            program = torch.export.export(packaged_graph._Bound(fn, view), (x,))
        return packaged_graph._key(program, options or {})

    view = model()
    assert key(view) == key(model())  # the same weights: the same package, in any process
    nudged = model()
    with torch.no_grad():
        nudged.lin.weight[3, 5] = torch.nextafter(nudged.lin.weight[3, 5], torch.tensor(1.0))  # one bit of one weight
    assert key(nudged) != key(view)
    assert key(view, {"freezing": True}) != key(view)
    assert key(view, fn=lambda v, x: (torch.relu(v.lin(x)) * 3,)) != key(view)


def test_the_cache_keeps_the_packages_used_lately(tmp_path):
    now = time.time()
    for age, name in enumerate(["newest", "kept", "middle", "oldest"]):
        (tmp_path / f"{name}.pt2").write_bytes(b"x" * 100)
        os.utime(tmp_path / f"{name}.pt2", (now - age * 60, now - age * 60))
    (tmp_path / ".building-1").mkdir()  # a package another process is building
    packaged_graph._prune(str(tmp_path), keep=str(tmp_path / "kept.pt2"), limit=250)
    assert sorted(os.listdir(tmp_path)) == [".building-1", "kept.pt2", "newest.pt2"]
