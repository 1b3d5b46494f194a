"""The performance paths, exercised on a CPU: bf16 autocast, the compile flag,
Muon's parameter groups, fused/foreach AdamW, MFU, threads
and denormals, the presets. Speed itself is measured in bench/, not here."""

import math
import subprocess
import sys
from pathlib import Path

import copy

import pytest
import torch

from gpt import device as dev
from gpt.data import Dataset, addition_corpus
from gpt.engine import SamplingSettings, generate
from gpt.model import ARCHITECTURES, MODEL_PRESETS, GPTConfig, build_model
from gpt.optim import build_optimizers, lr_multiplier
from gpt.presets import DEFAULT_PRESET, PRESETS, preset, preset_tokenizer
from gpt.tokenizer import CharTokenizer
from gpt.train import Trainer
from gpt.train import TrainConfig, configs_from

ROOT = Path(__file__).resolve().parent.parent

TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32)


@pytest.fixture(scope="module")
def addition():
    text = addition_corpus(4000)
    return Dataset(text, CharTokenizer.from_text(text), name="addition")


def trainer_for(ds, arch="classic", **train_kw):
    cfg = GPTConfig(vocab_size=ds.tokenizer.vocab_size, **TINY, **ARCHITECTURES[arch])
    kw = dict(batch_size=8, max_iters=20, eval_interval=10, eval_iters=2, lr=3e-3, warmup_iters=2, sample_tokens=0,
              device="cpu", dtype="float32")
    kw.update(train_kw)
    return Trainer(cfg, TrainConfig(**kw), ds, None)


# --- bf16 autocast on a CPU ---------------------------------------------------------------


@pytest.mark.parametrize("arch", ["classic", "modern"])
def test_bf16_autocast_trains_on_cpu(addition, arch):
    t = trainer_for(addition, arch, dtype="bfloat16", max_iters=30, sample_tokens=8)
    assert t.dtype == torch.bfloat16
    assert t.run() == "finished", t.error
    first, last = t.metrics[0], t.metrics[-1]
    assert math.isfinite(last["val_loss"]) and last["val_loss"] < first["val_loss"]
    assert isinstance(last["sample"], str)  # sampling under autocast works too
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # autocast: weights stay fp32


@pytest.mark.parametrize("arch", ["classic", "modern"])
def test_cpu_autocast_attention_is_written_out_and_matches_float32(monkeypatch, arch):
    import gpt.model as gm

    fused = []
    real = gm.F.scaled_dot_product_attention
    monkeypatch.setattr(gm.F, "scaled_dot_product_attention", lambda *a, **kw: fused.append(1) or real(*a, **kw))
    torch.manual_seed(0)
    model = build_model(GPTConfig(vocab_size=20, **TINY, **ARCHITECTURES[arch])).eval()
    idx = torch.randint(20, (2, 16))
    with torch.no_grad():
        ref, _ = model(idx)
        assert len(fused) == TINY["n_layer"]  # float32: PyTorch's fused kernel
        fused.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = model(idx)
    assert not fused  # bf16 on a CPU: the written-out attention (the fused kernel is slow there)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), ref, atol=0.05, rtol=0.05)


def test_written_out_attention_equals_the_fused_kernel():
    from gpt.model import CausalSelfAttention

    torch.manual_seed(0)
    attn = CausalSelfAttention(GPTConfig(vocab_size=20, **TINY), 0).eval()
    q, k, v = (torch.randn(2, 2, 7, 16) for _ in range(3))
    full = attn._attend(q, k, v, 7, 0.0)
    torch.testing.assert_close(attn._attend_written_out(q, k, v, 7, 0.0), full)
    # three new queries after a cached prefix of four keys
    torch.testing.assert_close(attn._attend_written_out(q[:, :, 4:], k, v, 3, 0.0), full[:, :, 4:])
    torch.testing.assert_close(attn._attend_written_out(q[:, :, 6:], k, v, 1, 0.0), full[:, :, 6:])


def test_greedy_cache_equality_holds_under_bf16_autocast():
    torch.manual_seed(3)
    model = build_model(GPTConfig(vocab_size=30, **TINY, **ARCHITECTURES["modern"])).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(12.0)  # sharp logits: no near-ties for bf16 rounding to flip
    s = SamplingSettings(max_new_tokens=40, temperature=0)  # past the 32-token context: slides too
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cached = generate(model, [1, 2], s, use_cache=True)
        uncached = generate(model, [1, 2], s, use_cache=False)
    assert len(cached) == 40 and len(set(cached)) >= 3  # a varied sequence, not one repeated token
    assert cached == uncached


def test_auto_dtype_follows_the_hardware(monkeypatch):
    assert isinstance(dev.cpu_has_native_bf16(), bool)
    monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: True)
    assert dev.resolve_dtype("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: False)
    assert dev.resolve_dtype("auto", "cpu") == torch.float32
    assert dev.resolve_dtype("float32", "cpu") == torch.float32
    assert dev.resolve_dtype("bfloat16", "cpu") == torch.bfloat16


# --- torch.compile flag ------------------------------------------------------------------------


def test_compile_flag_wraps_the_model_and_trains(addition, monkeypatch):
    calls = []
    real = torch.compile

    def fake_compile(model, **kw):  # inductor's C++ build takes minutes here; dynamo's eager backend checks the wiring
        calls.append(model)
        return real(model, backend="eager")

    monkeypatch.setattr(torch, "compile", fake_compile)
    t = trainer_for(addition, compile=True, max_iters=6, eval_interval=3)
    assert calls == [t.model] and t.forward is not t.model
    assert t.run() == "finished", t.error
    assert math.isfinite(t.metrics[-1]["val_loss"])
    plain = trainer_for(addition)
    assert plain.forward is plain.model  # off by default


# --- optimizers ----------------------------------------------------------------------------------


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    model = build_model(GPTConfig(vocab_size=40, **TINY, **ARCHITECTURES["modern"]))
    adamw, muon = build_optimizers(model, "muon", 3e-3, 0.1, (0.9, 0.99), "cpu", muon_lr=0.02)
    assert isinstance(adamw, torch.optim.AdamW) and isinstance(muon, torch.optim.Muon)
    names = {id(p): n for n, p in model.named_parameters()}
    on_muon = {names[id(p)] for g in muon.param_groups for p in g["params"]}
    on_adamw = {names[id(p)] for g in adamw.param_groups for p in g["params"]}
    assert on_muon == {n for n, p in model.named_parameters() if p.dim() == 2 and ".h." in f".{n}"}
    assert on_muon.isdisjoint(on_adamw) and on_muon | on_adamw == set(names.values())
    assert "lm_head.weight" in on_adamw and "transformer.wte.weight" in on_adamw
    decay, no_decay = adamw.param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert muon.param_groups[0]["initial_lr"] == 0.02 and adamw.param_groups[0]["initial_lr"] == 3e-3


def test_muon_weight_decay_shrinks_only_the_hidden_matrices_and_comes_from_the_recipe(addition):
    """Decoupled: a step with no gradient signal leaves each hidden matrix times (1 - lr x decay) and the
    embedding, head and gains as they were; the default recipe decays (docs/benchmarks.md), AdamW runs not."""
    model = build_model(GPTConfig(vocab_size=40, **TINY, **ARCHITECTURES["modern"]))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opts = build_optimizers(model, "muon", 3e-3, 0.0, (0.9, 0.99), "cpu", muon_lr=0.02, muon_weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    for o in opts:
        o.step()
    hidden = {n for g in opts[1].param_groups for n, p in model.named_parameters() for q in g["params"] if p is q}
    assert hidden
    for n, p in model.named_parameters():
        want = before[n] * (1 - 0.02 * 0.5) if n in hidden else before[n]
        torch.testing.assert_close(p.detach(), want, rtol=1e-6, atol=0, msg=n)
    _, recipe = configs_from(DEFAULT_PRESET, 512, {}, {})
    assert recipe.optimizer == "muon" and recipe.muon_weight_decay > 0
    t = trainer_for(addition, arch="modern", optimizer="muon", muon_weight_decay=recipe.muon_weight_decay)
    assert t.optimizers[1].param_groups[0]["weight_decay"] == recipe.muon_weight_decay
    assert trainer_for(addition, arch="modern", optimizer="muon").optimizers[1].param_groups[0]["weight_decay"] == 0


def test_newton_schulz_in_bfloat16_is_pytorchs_and_in_float32_is_the_same_orthogonalisation():
    """`orthogonalise` is PyTorch's iteration with a dtype: in bf16 it gives PyTorch's bits; in float32 (a CPU
    without bf16 instructions, where bf16 is emulated ~20x slower) nearly the same matrix, closer to orthogonal."""
    from torch.optim import _muon

    from gpt.optim import orthogonalise

    torch.manual_seed(0)
    coefficients = (_muon.DEFAULT_A, _muon.DEFAULT_B, _muon.DEFAULT_C)
    for shape in [(48, 16), (16, 48), (32, 32)]:
        g = torch.randn(*shape)
        ours = orthogonalise(g, coefficients, 5, _muon.EPS, torch.bfloat16)
        assert torch.equal(ours, _muon._zeropower_via_newtonschulz(g, coefficients, 5, _muon.EPS))
        exact = orthogonalise(g, coefficients, 5, _muon.EPS, torch.float32)
        assert exact.dtype == torch.float32 and exact.shape == g.shape
        assert (exact - ours.float()).norm() / exact.norm() < 0.02
        singular = torch.linalg.svdvals(exact)
        assert singular.min() > 0.5 and singular.max() < 1.3  # the quintic's band around 1, as in Keller Jordan's


def test_muon_in_float32_steps_as_pytorchs_muon_would_and_is_chosen_where_bf16_is_emulated(monkeypatch):
    """Our Muon's float32 step is PyTorch's step with a float32 iteration, step for step (momentum, Nesterov,
    decoupled decay, the shape's lr scaling); bf16 where the hardware has it, float32 on other CPUs."""
    from torch.optim import _muon

    from gpt.optim import Muon, orthogonalise

    def weights():
        torch.manual_seed(1)
        return [torch.nn.Parameter(torch.randn(24, 8)), torch.nn.Parameter(torch.randn(8, 8))]

    ours_w, theirs_w = weights(), weights()
    options = dict(lr=0.02, weight_decay=0.3, momentum=0.9)
    ours = Muon(ours_w, ns_dtype=torch.float32, **options)
    theirs = torch.optim.Muon(theirs_w, **options)
    monkeypatch.setattr(_muon, "_zeropower_via_newtonschulz",
                        lambda g, c, n, eps: orthogonalise(g, c, n, eps, torch.float32))
    for step in range(4):
        torch.manual_seed(10 + step)
        grads = [torch.randn_like(p) for p in ours_w]
        for params, opt in ((ours_w, ours), (theirs_w, theirs)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
        for a, b in zip(ours_w, theirs_w):
            assert torch.equal(a, b), step
    monkeypatch.undo()

    model = build_model(GPTConfig(vocab_size=40, **TINY, **ARCHITECTURES["modern"]))
    for native, device, want in [(False, "cpu", torch.float32), (True, "cpu", torch.bfloat16),
                                 (False, "cuda", torch.bfloat16)]:
        monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda native=native: native)
        _, muon = build_optimizers(model, "muon", 3e-3, 0.0, (0.9, 0.99), device)
        assert isinstance(muon, Muon) and muon.ns_dtype == want, (native, device)


def test_adamw_is_fused_on_cpu_and_cuda_and_fused_gives_foreachs_update():
    """Fused AdamW is one kernel per tensor on a CPU too (PyTorch's CPU foreach ops loop tensor by tensor):
    6% more training tokens a second at nanoGPT's shape (docs/benchmarks.md). Same update as foreach to float
    rounding."""
    model = build_model(GPTConfig(vocab_size=40, **TINY))
    twin, before = copy.deepcopy(model), copy.deepcopy(model.transformer.wte.weight)
    (opt,) = build_optimizers(model, "adamw", 1e-3, 0.1, (0.9, 0.99), "cpu")
    assert opt.defaults.get("fused") is True
    (opt_cuda,) = build_optimizers(model, "adamw", 1e-3, 0.1, (0.9, 0.99), "cuda")  # CPU tensors here, fused either way
    assert opt_cuda.defaults.get("fused") is True
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": [dict(twin.named_parameters())[n] for n in
              [n for n, p in model.named_parameters() for q in g["params"] if p is q]]} for g in opt.param_groups]
    reference = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), foreach=True)
    ids = torch.randint(0, 40, (2, 8))
    for _ in range(3):
        for m, o in ((model, opt), (twin, reference)):
            o.zero_grad()
            m(ids, ids)[1].backward()
            o.step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(model.transformer.wte.weight, before)  # the updates were real


def test_muon_run_resumes_exactly(tmp_path, addition):
    kw = dict(arch="modern", optimizer="muon", max_iters=16, eval_interval=8)
    straight = trainer_for(addition, **kw)
    straight.out_dir = tmp_path / "a"
    straight.run()
    first = trainer_for(addition, **kw)
    first.out_dir = tmp_path / "b"
    first.add_callback("on_step", lambda p: first.request_stop() if p["step"] == 8 else None)
    assert first.run() == "stopped" and first.step == 8
    second = Trainer(first.model_config, first.config, addition, tmp_path / "b", resume=True)
    assert second.step == 8 and second.run() == "finished"
    for p, q in zip(straight.model.parameters(), second.model.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0)  # Muon's momentum came back with the checkpoint


# --- MFU, threads, denormals ----------------------------------------------------------------


def test_mfu_in_metrics_only_when_peak_flops_known(addition, monkeypatch):
    monkeypatch.delenv("GPT_PEAK_FLOPS", raising=False)
    t = trainer_for(addition)
    t.run()
    assert all("mfu" not in r for r in t.metrics)  # a CPU has no known peak
    monkeypatch.setenv("GPT_PEAK_FLOPS", "1e12")
    t = trainer_for(addition)
    t.run()
    assert "mfu" not in t.metrics[0]  # step 0: no throughput yet
    assert all(0 < r["mfu"] < 1 for r in t.metrics[1:])


def test_cpu_threads_and_denormals(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("GPT_NUM_THREADS", "1")
        assert dev.configure_cpu_threads() == 1 and torch.get_num_threads() == 1
        tiny = torch.tensor([1e-39], dtype=torch.float32)  # a denormal float32
        assert (tiny * 1.0).item() == 0.0  # flushed to zero: denormal arithmetic is ~100x slower on CPUs
    finally:
        torch.set_num_threads(before)


# --- presets and the schedule ------------------------------------------------------------------


def test_every_preset_builds_valid_configs():
    for name in PRESETS:
        model_cfg, train_cfg = configs_from(name, 65, {}, {})
        assert model_cfg.vocab_size == 65 and train_cfg.max_iters > 0
    assert DEFAULT_PRESET == "two-minutes"
    assert preset("small")["model"] == MODEL_PRESETS["small"]  # nanoGPT's CPU shape, unchanged
    for name, budget in (("fast", 135), ("two-minutes", 135), ("ten-minutes", 600)):
        _, train_cfg = configs_from(name, 65, {}, {})
        assert train_cfg.max_seconds and train_cfg.max_seconds <= budget  # the time-to-quality budgets


def test_every_preset_fits_a_default_server_on_the_corpus_it_was_tuned_for():
    """The app offers every preset: none may be refused by the limits a fresh server starts with."""
    from gpt.limits import Limits

    for name in PRESETS:
        kind, vocab = preset_tokenizer(name)
        model_cfg, train_cfg = configs_from(name, vocab or 65, {}, {})
        assert Limits().check_run(model_cfg, train_cfg, n_tokens=1_100_000) > 0, name
    model_cfg, _ = configs_from("ten-minutes", 512, {}, {"device": "cuda"})  # on a fast machine: a bigger model
    assert (model_cfg.n_layer, model_cfg.n_embd, model_cfg.block_size, model_cfg.dropout) == (6, 192, 128, 0.1)


def test_ten_minutes_takes_the_largest_shape_this_machine_trains_on_enough_text(monkeypatch):
    """On a machine measured fast, ten minutes train 6 x 192 on enough tokens; on a slow one that shape would read
    too few, and a smaller one (same head size) takes its place. A shape asked for is kept whatever the speed."""
    from gpt import estimate as est
    from gpt.ui.train_tab import preset_values

    def tokens_per_parameter(cfg, train_cfg):
        tokens = train_cfg.max_seconds / est.step_seconds(cfg, train_cfg.batch_size) * train_cfg.batch_size * cfg.block_size
        return tokens / est.parameters(cfg)

    taken = {}
    for flops in (1e9, 1e10, 5e10, 2e11, 1e12):
        monkeypatch.setitem(est._speed, "cpu", flops)
        cfg, train_cfg = configs_from("ten-minutes", 512, {}, {"device": "cpu"})
        taken[flops] = (cfg.n_layer, cfg.n_head, cfg.n_embd)
        assert cfg.n_embd // cfg.n_head == 32 and cfg.block_size == 128
        small = cfg.n_embd == 128  # the two-minutes model takes the two-minutes recipe's training with it
        assert (cfg.dropout, cfg.tie_weights, train_cfg.batch_size, train_cfg.min_lr_ratio,
                train_cfg.muon_weight_decay) == ((0.0, True, 20, 0.0, 0.3) if small else (0.1, False, 16, 0.0, 0.3))
        larger = [s for s in preset("ten-minutes")["shapes"] if s["n_embd"] > cfg.n_embd]
        if cfg.n_embd > 128:  # what it took reads enough tokens a parameter in its 590 s
            assert tokens_per_parameter(cfg, train_cfg) >= est.TOKENS_PER_PARAMETER
        for shape in larger:  # and every larger shape would not
            bigger = GPTConfig(**{**cfg.to_dict(), "tie_weights": False, **shape})  # as the preset's model
            assert tokens_per_parameter(bigger, train_cfg) < est.TOKENS_PER_PARAMETER
        v = preset_values("ten-minutes")  # the Train tab's sliders show the shape a run takes, and its settings
        assert (v["n_layer"], v["n_head"], v["n_embd"], v["dropout"], v["batch_size"]) == (
            *taken[flops], cfg.dropout, train_cfg.batch_size)
    assert taken[1e9] == (4, 4, 128) and taken[1e12] == (6, 6, 192)
    assert len(set(taken.values())) == 2  # each shape is taken at some speed
    monkeypatch.setitem(est._speed, "cpu", 1e9)
    cfg, _ = configs_from("ten-minutes", 512, {"n_layer": 6, "n_head": 6, "n_embd": 192}, {"device": "cpu"})
    assert (cfg.n_layer, cfg.n_embd) == (6, 192)  # asked for: kept
    # the sliders' run (every slider given) on the small shape still takes its schedule and decay, not what was set
    sliders = {"n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.05}
    cfg, train_cfg = configs_from("ten-minutes", 512, sliders, {"device": "cpu", "batch_size": 12})
    assert (cfg.dropout, train_cfg.batch_size, train_cfg.min_lr_ratio, train_cfg.muon_weight_decay) == (
        0.05, 12, 0.0, 0.3)
    from gpt.jobs.request import RunRequest  # the Train tab's form names the architecture: the shape's head still
    form = RunRequest(tokenizer="bpe", vocab_size=512, preset="ten-minutes", architecture="modern", **sliders)
    assert form.configs(512, "cpu")[0].tie_weights  # is tied, as the CLI's is; classic asked for is classic's
    assert not RunRequest(preset="ten-minutes", architecture="classic", **sliders).configs(512, "cpu")[0].qk_norm
    cfg, train_cfg = configs_from("ten-minutes", 512, {}, {"device": "cpu", "muon_weight_decay": 0.0})
    assert (cfg.n_embd, train_cfg.muon_weight_decay, train_cfg.min_lr_ratio) == (128, 0.0, 0.0)  # asked: kept
    cfg, _ = configs_from("ten-minutes", 512, {"n_layer": 8}, {"device": "cpu"})
    assert (cfg.n_layer, cfg.n_embd) == (8, 192)  # one dimension asked for: the preset's own shape around it
    cfg, _ = configs_from("ten-minutes", 512, {}, {"device": "cpu", "max_seconds": 0})
    assert (cfg.n_layer, cfg.n_embd) == (6, 192)  # no time limit: nothing to fit
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg, _ = configs_from("ten-minutes", 512, {}, {"device": "cpu"})
    assert (cfg.n_layer, cfg.n_embd) == (6, 192)  # under torchrun every process takes the same shape
    assert configs_from("two-minutes", 512, {}, {"device": "cpu"})[0].n_embd == 128  # a preset without shapes


def test_the_speed_estimate_measures_in_the_precision_a_run_takes_here(monkeypatch):
    """A CPU with native bf16 trains in bf16 autocast, ~2x its float32 matmuls: the estimate's benchmark measures
    that (in float32 it read a 2-core Zen 4 as too slow for ten-minutes' 6 x 192); float32 where runs are."""
    from gpt import estimate as est

    asked = []
    monkeypatch.setattr(est, "_benchmark_flops", lambda dtype: asked.append(dtype) or 1e11)
    for native, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: native)
        monkeypatch.delitem(est._speed, "cpu", raising=False)
        assert est.effective_flops("cpu") == pytest.approx(1e11 * est.EFFICIENCY) and asked[-1] == dtype
    monkeypatch.undo()
    assert est._benchmark_flops(torch.bfloat16) > 0 and est._benchmark_flops(torch.float32) > 0  # both measure


def test_the_app_measures_the_machine_as_it_is_built_before_its_background_work_starts(tmp_path, monkeypatch):
    """The first measure of the machine's speed stays until a run finishes; taken at the first page load, while
    the decode step compiled (from launch on), it read a 2-core Zen 4 at half its speed and ten-minutes took its
    small shape there. So the app measures as it is built, while nothing else runs."""
    import app
    from gpt import estimate as est
    from gpt.jobs import JobManager

    monkeypatch.setattr(est, "_speed", {})
    demo = app.build_demo(JobManager(tmp_path, device="cpu"))
    assert est._speed.get("cpu", 0) > 0
    demo.manager.shutdown()


def test_a_preset_brings_its_tokenizer_unless_one_is_asked_for():
    assert preset_tokenizer("two-minutes") == ("bpe", 512)
    assert preset_tokenizer("two-minutes", "char") == ("char", None)  # the preset's vocabulary size goes with it
    assert preset_tokenizer("two-minutes", "bpe", 1024) == ("bpe", 1024)
    assert preset_tokenizer("fast") == ("char", None) and preset_tokenizer("no-such-preset") == ("char", None)


def test_schedule_warms_up_then_decays_to_the_floor():
    assert lr_multiplier(0, 10, 0.0, 0.1) == pytest.approx(0.1)
    assert lr_multiplier(9, 10, 0.0, 0.1) == pytest.approx(1.0)
    assert lr_multiplier(500, 10, 1.0, 0.1) == pytest.approx(0.1)
    mids = [lr_multiplier(500, 10, f, 0.0) for f in (0.2, 0.5, 0.8)]
    assert mids == sorted(mids, reverse=True)


def test_the_app_builds_an_optimizer_as_it_starts_so_the_first_run_does_not_wait():
    code = ("import sys, threading; from gpt.optim import warm_up; assert 'torch._dynamo' not in sys.modules; "
            "warm_up(); print('torch._dynamo' in sys.modules and threading.active_count() == 1)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]


def test_the_train_cli_says_which_shape_ten_minutes_took_here(tmp_path, capsys, monkeypatch):
    """On a machine measured slow the CLI's ten-minutes run is the small shape, and it says so and how to choose."""
    from gpt import estimate as est
    from gpt.checkpoint import load_checkpoint
    from gpt.train.cli import main

    monkeypatch.setitem(est._speed, "cpu", 1e9)
    flags = ["--data", "addition", "--tokenizer", "char", "--preset", "ten-minutes", "--max-iters", "1",
             "--eval-iters", "1", "--sample-tokens", "0"]
    assert main([*flags, "--out", str(tmp_path / "fit")]) == 0
    said = capsys.readouterr().err
    assert "ten-minutes takes 4 layers x 128 wide here" in said and "--n-layer" in said, said
    assert load_checkpoint(tmp_path / "fit", device="cpu").model.config.n_embd == 128
    assert main([*flags, "--n-layer", "2", "--out", str(tmp_path / "asked")]) == 0
    assert "[preset]" not in capsys.readouterr().err  # a shape asked for: nothing to say
    assert load_checkpoint(tmp_path / "asked", device="cpu").model.config.n_layer == 2
