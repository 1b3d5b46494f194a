"""`python -m gpt.chat rl`: RL from a terminal, measured by `python -m gpt.chat eval`; every bad input one
`error:` line naming what to change, exit 2, and nothing written."""

from __future__ import annotations

import json

import pytest

from gpt import checkpoint as ckpt
from gpt.chat import evaluate
from gpt.chat.cli import main
from helpers_rl import chat_run, pretrained_run
from test_cli_errors import one_error_line

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(a chat run that adds two-digit numbers, sometimes right; a run that is no chat model)."""
    root = tmp_path_factory.mktemp("parents")
    return chat_run(root), pretrained_run(root)


def test_rl_trains_a_copy_of_the_chat_run_with_the_one_trainer_and_eval_measures_it(runs, tmp_path, capsys):
    parent, _ = runs
    out = tmp_path / "adder-rl"
    assert main(["rl", "--from", str(parent), "--task", "addition", "-k", "4", "--temperature", "1.5",
                 "--max-iters", "3", "--batch-size", "4", "--lr", "3e-3", "--seed", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 questions x 4 answers a step, temperature 1.5" in printed
    assert "Starts from adder-chat at step 150" in printed
    assert "mean reward" in printed and f"checkpoint in {out}" in printed and f"gpt.chat eval {out}" in printed
    run = ckpt.load_checkpoint(out)
    assert run.step == 3 and run.meta["parent"] == "adder-chat" and run.meta["task"] == "addition"
    assert (run.meta["samples"], run.meta["temperature"]) == (4, 1.5)
    assert (run.meta["train"]["lr"], run.meta["train"]["batch_size"], run.meta["train"]["seed"]) == (3e-3, 4, 2)
    assert run.tokenizer.spec() == ckpt.load_checkpoint(parent).tokenizer.spec()  # RL adds no token
    rows = ckpt.read_metrics(out)
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 3 and "val_accuracy" in rows[0]
    assert [s for s, _ in rows[-1]["rewards"]] == [1, 2, 3] and 0 <= rows[-1]["reward"] <= 1

    assert main(["eval", str(out), "--task", "addition", "--n", "30", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    score = evaluate(run.model, run.tokenizer, "addition", n=30)
    assert (measured["accuracy"], measured["n"]) == (score.accuracy, 30)


def test_the_stages_settings_apply_where_no_flag_is_given(runs, tmp_path, capsys):
    parent, _ = runs
    out = tmp_path / "default"
    assert main(["rl", "--from", str(parent), "--task", "addition", "--max-iters", "1", "--batch-size", "2",
                 "--out", str(out)]) == 0
    run = ckpt.load_checkpoint(out)
    assert (run.meta["samples"], run.meta["temperature"], run.meta["train"]["lr"]) == (8, 1.0, 1e-4)
    again = one_error_line(capsys, main(["rl", "--from", str(parent), "--task", "addition", "--out", str(out)]))
    assert "--out" in again and "already holds a run" in again


@pytest.mark.parametrize("argv, match", [
    (["--from", "{plain}", "--task", "addition"], "is not a chat model"),
    (["--from", "{chat}", "--task", "reverse"], "has never written"),
    (["--from", "{tmp}/missing", "--task", "addition"], "No checkpoint at missing"),
    (["--from", "{chat}", "--task", "poetry"], "Unknown task 'poetry'"),
    (["--from", "{chat}", "--task", "{tmp}/nothere.jsonl"], "No conversation file at"),
    (["--from", "{chat}", "--task", "addition", "-k", "2"], "samples (answers per question) must be at least 4"),
    (["--from", "{chat}", "--task", "addition", "--samples", "17"], "samples (answers per question) must be at most"),
    (["--from", "{chat}", "--task", "addition", "--temperature", "0"], "temperature must be above 0"),
    (["--from", "{chat}", "--task", "addition", "--temperature", "3"], "temperature must be at most 2"),
    (["--from", "{chat}", "--task", "addition", "--temperature", "nan"], "temperature must be a positive number"),
    (["--from", "{chat}", "--task", "addition", "--lr", "-1"], "learning rate must be a positive number"),
    (["--from", "{chat}", "--task", "addition", "--batch-size", "0"], "batch_size"),
    (["--from", "{chat}", "--task", "addition", "--max-iters", "10000000"], "10,000,000 iterations is over"),
    (["--from", "{chat}", "--task", "addition", "--device", "quantum"], "Device 'quantum'"),
])
def test_bad_input_is_one_error_line_and_nothing_is_written(runs, tmp_path, capsys, argv, match):
    chat, plain = runs
    args = ["rl", *(a.format(chat=chat, plain=plain, tmp=tmp_path) for a in argv), "--out", str(tmp_path / "x")]
    line = one_error_line(capsys, main(args))
    assert match in line, line
    assert not (tmp_path / "x").exists()
