"""Issue 13, findings 4 and 14: the CLIs answer every bad flag, file or checkpoint with one `error:` line
and exit code 2, never a traceback; and `--resume` never reads a file the user did not name."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpt import checkpoint as ckpt
from gpt.model import GPTConfig, build_model
from gpt.sample import main as sample_main
from gpt.tokenizer import CharTokenizer
from gpt.train.cli import main as train_main

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--preset", "tiny", "--max-iters", "2", "--eval-interval", "1", "--eval-iters", "1", "--block-size", "8"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "good"
    assert train_main(["--data", "addition", *TINY, "--out", str(out)]) == 0
    return out


def one_error_line(capsys, code, expected_rc=2):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == expected_rc and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("flags, match", [
    (["--device", "quantum"], "Device 'quantum' is not one this program knows"),
    (["--seed", str(10**30)], "seed must be a whole number from 0 to 2\\*\\*63 - 1"),
    (["--temperature", "1e26"], "Temperature must be at most 100"),
    (["--temperature", "nan"], "Temperature must be a number"),
    (["--top-k", "-5"], "Top-k must be 0 \\(off\\)"),
    (["--top-p", "2"], "top-p must be in"),
    (["--max-new-tokens", "0"], "at least 1"),
])
def test_sample_cli_bad_flags_are_one_line(good, capsys, flags, match):
    line = one_error_line(capsys, sample_main(["--checkpoint", str(good), *flags]))
    assert __import__("re").search(match, line), line


def test_sample_cli_bad_checkpoints_are_one_line(tmp_path, good, capsys):
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    (tmp_path / "folder.safetensors").mkdir()
    for target, match in [(tmp_path / "missing", "No checkpoint at missing"),
                          (tmp_path / "junk.safetensors", "not a safetensors file"),
                          (tmp_path / "folder.safetensors", "model.safetensors is missing")]:
        assert match in one_error_line(capsys, sample_main(["--checkpoint", str(target)]))


@pytest.mark.parametrize("flags, match", [
    (["--device", "quantum"], "Device 'quantum'"),
    (["--dtype", "int8"], "dtype must be one of"),
    (["--seed", str(10**30)], "seed must be at most"),
    (["--max-seconds", "nan"], "max_seconds must be a positive number"),
    (["--lr", "inf"], "learning rate must be a positive number"),
    (["--min-lr-ratio", "2"], "min_lr_ratio must be at most 1"),
    (["--beta1", "1"], "beta1 must be below 1"),
    (["--beta2", "-0.1"], "beta2 must be at least 0"),
])
def test_train_cli_bad_flags_are_one_line(tmp_path, capsys, flags, match):
    line = one_error_line(capsys, train_main(["--data", "addition", *TINY, "--out", str(tmp_path / "r"), *flags]))
    assert match in line, line


def test_train_cli_adam_betas_reach_the_run(tmp_path):
    out = tmp_path / "r"
    assert train_main(["--data", "addition", *TINY, "--beta1", "0.8", "--beta2", "0.95", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())["train"]
    assert (saved["beta1"], saved["beta2"]) == (0.8, 0.95)


@pytest.mark.parametrize("flags, match", [
    (["--n-layer", "100000"], "n_layer must be at most"),
    (["--n-layer", "200"], "GPT_MAX_LAYERS"),
    (["--block-size", "100000"], "GPT_MAX_BLOCK_SIZE"),
    (["--n-embd", "4096", "--n-head", "16", "--n-layer", "12"], "GPT_MAX_PARAMS"),
])
def test_train_cli_checks_every_limit_before_any_work(tmp_path, capsys, monkeypatch, flags, match):
    """Refused by arithmetic before the corpus is read or a BPE is trained (both are made to fail here)."""
    from gpt import bpe, corpus, data

    def no_work(*args, **kwargs):
        raise AssertionError("work was done before the limits were checked")

    for module, name in ((bpe, "train"), (data, "load_corpus"), (data, "download_shakespeare")):
        monkeypatch.setattr(module, name, no_work)
    monkeypatch.setattr(corpus, "load", no_work, raising=False)
    rc = train_main(["--data", "shakespeare", "--tokenizer", "bpe", "--vocab-size", "512", "--out",
                     str(tmp_path / "r"), *flags])
    assert match in one_error_line(capsys, rc)


def test_train_cli_unusable_run_folders_are_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    line = one_error_line(capsys, train_main(["--data", "addition", *TINY, "--out", str(tmp_path / "afile")]))
    assert "is a file, not a folder" in line
    line = one_error_line(capsys, train_main(["--data", "addition", *TINY, "--out", str(tmp_path / "afile" / "run")]))
    assert "cannot use the run folder" in line


def test_resume_never_reads_a_file_the_checkpoint_names(tmp_path, capsys):
    # a downloaded checkpoint whose data_source named a secret file: its text came back in a sample
    secret = tmp_path / "secret.txt"
    secret.write_text("the password is hunter2\n" * 200)
    tok = CharTokenizer.from_text(secret.read_text())
    cfg = GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=1, n_embd=8, block_size=8)
    run = tmp_path / "downloaded"
    ckpt.save_checkpoint(run, build_model(cfg), cfg, tok, step=1, data_source=str(secret), corpus="notes",
                         train={"batch_size": 4, "max_iters": 2, "eval_interval": 1, "eval_iters": 1})
    secret.chmod(0o644)
    before = secret.stat().st_atime_ns
    line = one_error_line(capsys, train_main(["--resume", "--out", str(run), "--max-iters", "3"]))
    assert "name it again with --data FILE" in line and str(secret) not in line
    assert ckpt.load_checkpoint(run).step == 1  # nothing trained
    os.utime(secret, ns=(before, secret.stat().st_mtime_ns))
    assert train_main(["--resume", "--data", str(secret), "--out", str(run), "--max-iters", "2"]) == 0  # named: fine


def test_resume_of_a_built_in_corpus_needs_no_data_flag(good, capsys):
    assert train_main(["--resume", "--out", str(good), "--max-iters", "3"]) == 0


def _cli(*args, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_a_fifo_checkpoint_is_refused_not_waited_on(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / ckpt.WEIGHTS)
    done = _cli("gpt.sample", "--checkpoint", str(run))
    assert done.returncode == 2 and "not a regular file" in done.stderr and "Traceback" not in done.stderr


def test_sampling_into_a_closed_pipe_is_quiet(good):
    code = ("import sys; from gpt.sample import main; sys.stdout.close = lambda: None; "
            "import io, os; r, w = os.pipe(); os.close(r); os.dup2(w, 1); sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "--checkpoint", str(good), "--max-new-tokens", "200"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("cli, flags, says", [
    ("lesson", ["--data", "/missing.txt"], "There is no file at /missing.txt: check the path"),
    ("lesson", ["--data", "upload"], "Unknown corpus 'upload': use 'shakespeare', 'addition'"),
    ("lesson", ["--data", "paste"], "Unknown corpus 'paste'"),
    ("train", ["--data", "/missing.txt", "--out", "OUT"], "There is no file at /missing.txt"),
    ("ladder", ["--data", "notes/missing.txt", "--out", "OUT"], "There is no file at notes/missing.txt"),
    ("ladder", ["--data", "wikipedia", "--out", "OUT"], "Unknown corpus 'wikipedia'"),
    ("convert", ["--from", "nanogpt", "/missing", "--out", "OUT"], "There is no nanoGPT checkpoint at missing"),
    ("convert", ["--from", "nanogpt", "/missing", "--meta", "/nope.pkl", "--out", "OUT"], "There is no nope.pkl"),
])
def test_every_cli_says_a_file_is_missing_and_offers_only_its_own_choices(tmp_path, capsys, cli, flags, says):
    from gpt.convert.__main__ import main as convert_main
    from gpt.ladder import main as ladder_main
    from gpt.lesson.__main__ import main as lesson_main

    main = {"lesson": lesson_main, "train": train_main, "ladder": ladder_main, "convert": convert_main}[cli]
    line = one_error_line(capsys, main([str(tmp_path / "out") if f == "OUT" else f for f in flags]))
    assert says in line and "upload, paste" not in line and "Choose a .txt file" not in line, line


def test_the_api_offers_its_own_corpora():
    import inspect

    from gpt.errors import DataError
    from gpt.ui.api import Api, _check_start

    base = {k: v.default for k, v in inspect.signature(Api.start_run).parameters.items() if k not in ("self", "request")}
    for corpus in ("upload", "paste", "wikipedia"):
        with pytest.raises(DataError, match=f"Unknown corpus '{corpus}': choose one of shakespeare, addition, "
                                            "reverse, counting, text"):
            _check_start({**base, "corpus": corpus})


@pytest.mark.parametrize("env, says", [({"GPT_TEACHER_TOKEN": "t"}, "GPT_TEACHER_TOKEN must be at least 8 characters"),
                                       ({"GPT_MAX_ITERS": "lots"}, "GPT_MAX_ITERS")])
def test_the_app_refuses_a_bad_setting_in_its_environment_with_one_line(tmp_path, env, says):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "app.py")], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GPT_CHECKPOINT_DIR": str(tmp_path), **env})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and says in lines[0], proc.stderr[-2000:]
