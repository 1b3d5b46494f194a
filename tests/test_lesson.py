"""The lesson prints what the lecture's notebook prints, on Tiny Shakespeare, and runs on any other text."""

from __future__ import annotations

import inspect

import pytest

from gpt import lesson
from gpt.corpus import Corpus, dataset
from gpt.errors import ConfigError, DataError
from gpt.lesson import __main__ as cli
from gpt.lesson import bigram, heads, text

LECTURE_XB = [[24, 43, 58, 5, 57, 1, 46, 43], [44, 53, 56, 1, 58, 46, 39, 58], [52, 58, 1, 58, 46, 39, 58, 1],
              [25, 17, 27, 10, 0, 21, 1, 54]]
LECTURE_YB = [[43, 58, 5, 57, 1, 46, 43, 39], [53, 56, 1, 58, 46, 39, 58, 1], [58, 1, 58, 46, 39, 58, 1, 46],
              [17, 27, 10, 0, 21, 1, 54, 39]]


@pytest.fixture(scope="module")
def shakespeare():
    from conftest import shakespeare_available

    if not shakespeare_available():
        pytest.skip("Tiny Shakespeare is not available offline (set GPT_DATA_DIR)")
    return lesson.make("shakespeare", "char")


def test_tokenize_prints_the_lectures_ids(shakespeare):
    step = lesson.run(shakespeare, "tokenize")
    assert step.values["char_ids"] == [46, 47, 47, 1, 58, 46, 43, 56, 43]
    assert "decode(...) = 'hii there'" in step.output
    if step.values["gpt2_error"] is None:  # GPT_GPT2_RANKS (tests/conftest.py) makes it available offline
        assert step.values["gpt2_ids"] == [71, 4178, 612]
    else:
        assert "GPT_GPT2_RANKS" in step.output


def test_gpt2_offline_says_why(shakespeare, monkeypatch, tmp_path):
    monkeypatch.setenv("GPT_GPT2_RANKS", str(tmp_path / "missing.tiktoken"))
    step = lesson.run(shakespeare, "tokenize")
    assert step.values["gpt2_ids"] is None and "GPT-2 BPE via tiktoken: not available here: GPT_GPT2_RANKS" in step.output
    assert step.values["char_ids"] == [46, 47, 47, 1, 58, 46, 43, 56, 43]  # the rest of the step still runs


def test_batches_are_exactly_the_lectures(shakespeare):
    step = lesson.run(shakespeare, "batches")
    assert step.values["xb"] == LECTURE_XB and step.values["yb"] == LECTURE_YB
    assert step.values["first_block"][0] == "when input is tensor([18]) the target: 47"
    assert step.values["first_block"][-1] == "when input is tensor([18, 47, 56, 57, 58,  1, 15, 47]) the target: 58"
    assert "when input is [24] the target: 43" in step.output
    assert step.output.count("when input is [") == 32
    assert "Yours is the same batch" in step.lecture


def test_bigram_reproduces_the_lectures_initial_loss_and_noise(shakespeare):
    quick = lesson.Lesson(shakespeare.corpus, shakespeare.dataset, lesson.Settings(bigram_steps=300))
    step = lesson.run(quick, "bigram")
    assert step.values["logits_shape"] == (4, 8, 65) and step.values["flat_shape"] == (32, 65)
    assert round(step.values["init_loss"], 4) == 4.8786
    assert step.values["uniform_loss"] == pytest.approx(4.1744, abs=1e-4)
    assert step.values["before"].startswith("\nSKIcLT;AcELMoTbvZv C?nq-QE33:CJqkOKH-q;:la!oiywkHjgChzbQ?u!3bLIgwevmyFJGUGp")
    assert step.values["final_loss"] < 3.2  # 300 steps at 1e-2 already learn the common pairs


def test_the_trick_and_the_head():
    any_text = lesson.Lesson(Corpus("t", "abc " * 200, "text"), dataset(Corpus("t", "abc " * 200, "text"), "char"))
    trick = lesson.run(any_text, "trick")
    assert trick.values["allclose"] == (True, True) and trick.values["max_difference"] < 1e-6
    assert trick.matrix.shape == (8, 8) and trick.matrix[7].tolist() == pytest.approx([0.125] * 8)
    head = lesson.run(any_text, "head")
    assert head.values["out_shape"] == (4, 8, 16)
    assert head.values["wei0"][1][:2] == pytest.approx([0.1574, 0.8426], abs=1e-4)  # the lecture's wei[0]
    assert 8 < head.values["raw_var"] < 32 and 0.5 < head.values["scaled_var"] < 2


def test_the_code_shown_is_the_code_that_ran(shakespeare):
    step = lesson.run(shakespeare, "batches")
    for fn in (text.first_block, text.lecture_batch, text.batch_pairs):
        assert inspect.getsource(fn).strip().splitlines()[0] in step.code
    assert "torch.randint(len(data) - block_size, (batch_size,)" in step.code  # the package's own get_batch
    assert "def train_bigram" in lesson.source(bigram.train_bigram) and "def one_head" in lesson.source(heads.one_head)


def test_every_step_runs_on_pasted_text_with_a_trained_bpe():
    words = "the cat sat on the mat and the dog ate the hat while the bird sang. " * 300
    pasted = lesson.make("paste", "bpe", pasted=words, vocab_size=300,
                         settings=lesson.Settings(seed=7, block_size=4, batch_size=2, bigram_steps=50))
    for name in lesson.STEP_NAMES:
        step = lesson.run(pasted, name)
        assert step.title and step.why and step.code and step.output and step.lecture
    batches = lesson.run(pasted, "batches")
    assert len(batches.values["xb"]) == 2 and len(batches.values["xb"][0]) == 4
    assert "holds on Tiny Shakespeare + characters" in batches.lecture
    assert "the lesson's tokenizer, bpe" in lesson.run(pasted, "tokenize").output


def test_a_sentence_the_characters_cannot_spell_is_explained():
    digits = lesson.make("addition", "char")
    step = lesson.run(digits, "tokenize")
    assert step.values["char_ids"] is None and "never saw" in step.output


def test_bad_settings_and_steps_name_the_field():
    with pytest.raises(ConfigError, match="block_size"):
        lesson.Settings(block_size=0)
    with pytest.raises(ConfigError, match="batch_size"):
        lesson.Settings(batch_size=1000)
    with pytest.raises(ConfigError, match="step must be one of data, tokenize"):
        lesson.run(lesson.make("counting", "char"), "attention")
    tiny = lesson.make("paste", "char", pasted="abcdefghij" * 3, settings=lesson.Settings(block_size=64))
    with pytest.raises(DataError, match="block size of 64"):
        lesson.run(tiny, "batches")


def test_the_terminal_lesson_prints_the_lectures_batch(shakespeare, capsys):
    assert cli.main(["--data", "shakespeare", "--tokenizer", "char", "--step", "batches"]) == 0
    out = capsys.readouterr().out
    assert "tensor([[24, 43, 58,  5, 57,  1, 46, 43]," in out
    assert "        [25, 17, 27, 10,  0, 21,  1, 54]])" in out
    assert "when input is tensor([18]) the target: 47" in out and "--- code (from the package) ---" in out
    assert cli.main(["--step", "nope"]) == 2
    assert "--step must be one of" in capsys.readouterr().err
