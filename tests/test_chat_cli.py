"""`python -m gpt.chat`: finetune, eval and ask from a terminal; every bad input is one `error:` line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gpt import checkpoint as ckpt
from gpt.chat import ChatTokenizer, evaluate
from gpt.chat.cli import main
from gpt.train.cli import main as train_main
from helpers_chat import FACTS, facts_file, save_chat_pair

from test_cli_errors import ROOT, one_error_line

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The parent run and the chat model memorised from it (it answers '2+2?' with '4')."""
    return save_chat_pair(tmp_path_factory.mktemp("chat"))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A small pretrained character run on text without digits, '+' or '?', as a class's first run is."""
    out = tmp_path_factory.mktemp("cli") / "words"
    text = tmp_path_factory.mktemp("data") / "words.txt"
    text.write_text("hear me speak. speak, speak. first citizen: before we proceed any further\n" * 60)
    assert train_main(["--data", str(text), "--preset", "tiny", "--tokenizer", "char", "--block-size", "32",
                       "--max-iters", "2", "--eval-interval", "2", "--eval-iters", "1", "--out", str(out)]) == 0
    return out


def test_finetune_makes_a_chat_model_with_the_one_trainer(pretrained, tmp_path, capsys):
    out = tmp_path / "chat"
    assert main(["finetune", "--from", str(pretrained), "--task", "addition", "--max-iters", "20",
                 "--batch-size", "8", "--lr", "3e-3", "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Added" in printed and "held-out accuracy" in printed and f"checkpoint in {out}" in printed
    run = ckpt.load_checkpoint(out)
    assert isinstance(run.tokenizer, ChatTokenizer) and {"+", "?", "7"} <= set(run.tokenizer.base.chars)
    assert run.step == 20 and run.meta["parent"] == "words" and run.meta["task"] == "addition"
    assert run.meta["train"]["lr"] == 3e-3 and run.meta["train"]["batch_size"] == 8 and run.meta["train"]["seed"] == 3
    rows = ckpt.read_metrics(out)
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 20 and all("val_accuracy" in r for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # the masked loss falls
    again = one_error_line(capsys, main(["finetune", "--from", str(pretrained), "--task", "addition", "--out", str(out)]))
    assert "already holds a run" in again


def test_finetune_on_a_conversation_file(pretrained, tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"instruction": f"say {w}", "output": w}) for w in ("hear", "me", "speak") * 5))
    assert main(["finetune", "--from", str(pretrained), "--task", str(path), "--max-iters", "4", "--batch-size", "4",
                 "--out", str(tmp_path / "c")]) == 0
    assert ckpt.load_checkpoint(tmp_path / "c").meta["task"] == "mine.jsonl"


def test_ask_prints_the_answer_alone(pair, capsys):
    assert main(["ask", str(pair[1]), "2+2?", "--temperature", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "4\n" and "error" not in captured.err


def facts_path(tmp_path):
    path = tmp_path / "facts.jsonl"
    path.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                       {"role": "assistant", "content": a}]}) for q, a in FACTS))
    return path


def test_eval_json_is_one_object_with_fractions(pair, tmp_path, capsys):
    assert main(["eval", str(pair[1]), "--task", str(facts_path(tmp_path)), "--n", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # one JSON object and nothing else
    held_out = facts_file().examples("val")
    assert {"accuracy", "ended", "n", "task", "run"} <= set(out) and out["n"] == len(held_out)
    assert 0 <= out["accuracy"] <= 1 and 0 <= out["ended"] <= 1
    run = ckpt.load_checkpoint(pair[1])
    score = evaluate(run.model, run.tokenizer, facts_file(), n=5)
    assert (out["accuracy"], out["ended"]) == (score.accuracy, score.ended)  # the library's figures


def test_eval_prints_a_summary_and_the_wrong_answers(pair, tmp_path, capsys):
    assert main(["eval", str(pair[1]), "--task", str(facts_path(tmp_path)), "--n", "50"]) == 0
    printed = capsys.readouterr().out
    held_out = len(facts_file().examples("val"))
    assert f"on {held_out} held-out questions of facts.jsonl" in printed and "accuracy" in printed


def test_a_conversation_in_the_terminal(pair):
    """Each line is a turn; an empty line is skipped, /reset forgets, Ctrl-D (end of input) ends with 0."""
    done = subprocess.run([sys.executable, "-m", "gpt.chat", "ask", str(pair[1]), "--temperature", "0"],
                          input="2+2?\n\n3+5?\n/reset\ncat?\n", capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "Traceback" not in done.stderr and "error" not in done.stderr, done.stderr
    answers = [line.split("model> ")[-1] for line in done.stdout.splitlines() if "model> " in line]
    assert answers == ["4", "8", "meow"], done.stdout


@pytest.mark.parametrize("argv, match", [
    (["eval", "{chat}", "--task", "poetry"], "Unknown task 'poetry'"),
    (["finetune", "--from", "{parent}", "--task", "poetry", "--out", "{tmp}/x"], "Unknown task 'poetry'"),
    (["eval", "{tmp}/missing", "--task", "addition"], "No checkpoint at missing"),
    (["ask", "{tmp}/missing", "hi"], "No checkpoint at missing"),
    (["finetune", "--from", "{tmp}/missing", "--task", "addition", "--out", "{tmp}/x"], "No checkpoint at missing"),
    (["ask", "{parent}", "hi"], "is not a chat model"),
    (["eval", "{parent}", "--task", "addition"], "is not a chat model"),
    (["eval", "{chat}", "--task", "{tmp}/nothere.jsonl"], "No conversation file at"),
    (["eval", "{chat}", "--task", "addition"], "never saw in its training corpus: 'W'"),
    (["finetune", "--from", "{parent}", "--task", "{tmp}/bad.jsonl", "--out", "{tmp}/x"], "cannot be used"),
    (["finetune", "--from", "{parent}", "--task", "{tmp}/long.jsonl", "--out", "{tmp}/x"], "longer than the model's"),
    (["eval", "{chat}", "--task", "addition", "--n", "0"], "--n must be a positive whole number"),
    (["ask", "{chat}", "hi", "--temperature", "-1"], "Temperature must be 0 or more"),
    (["ask", "{chat}", "   "], "message 1's 'content' is empty"),
    (["ask", "{chat}", "what is 2€2?"], "never saw"),
    (["finetune", "--from", "{parent}", "--task", "addition", "--max-iters", "10000000", "--out", "{tmp}/x"],
     "10,000,000 iterations is over this server's limit"),
])
def test_bad_input_is_one_error_line(pair, tmp_path, capsys, argv, match):
    (tmp_path / "bad.jsonl").write_text('{"messages": [{"role": "bot", "content": "hi"}]}\nnot json\n')
    long = [{"messages": [{"role": "user", "content": "a" * 100 + str(i)}, {"role": "assistant", "content": "b"}]}
            for i in range(3)]  # three different questions, each longer than the model's context
    (tmp_path / "long.jsonl").write_text("\n".join(json.dumps(c) for c in long))
    args = [a.format(parent=pair[0], chat=pair[1], tmp=tmp_path) for a in argv]
    line = one_error_line(capsys, main(args))
    assert match in line, line
    assert not (tmp_path / "x" / ckpt.WEIGHTS).exists()  # nothing was written for a refused fine-tune


def test_a_special_token_typed_in_a_question_stays_text(pair, capsys):
    """'<|end|>' typed by the user is text for the base tokenizer (here: characters the model never saw)."""
    line = one_error_line(capsys, main(["ask", str(pair[1]), "2+2?<|end|>"]))
    assert "'<'" in line and "'|'" in line
