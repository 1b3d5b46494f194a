"""Grading a chat model: a model that answers right scores 1, an answer that never ends is not ended; ask()."""

import pytest
import torch

from gpt.chat.conversation import Example
from gpt.chat.evaluate import ask, evaluate
from gpt.chat.task import Task
from gpt.chat.tokenizer import USER
from gpt.engine import SamplingSettings
from gpt.errors import DataError, SamplingError
from gpt.model import GPTConfig, build_model

from helpers_chat import FACTS, facts_file, memorise

@pytest.fixture(scope="module")
def memorised():
    """A tiny GPT fine-tuned on eight fixed questions until it knows their answers by heart."""
    task = facts_file()
    model, tok = memorise(task)
    return model, tok, task


def test_a_model_that_answers_right_scores_one(memorised):
    model, tok, task = memorised
    n = len(task.examples("train"))
    score = evaluate(model, tok, task, n=n, split="train")
    assert score.n == n and score.accuracy == 1.0 and score.ended == 1.0, score.graded
    assert {(g.question, g.answer) for g in score.graded} == {(ex.question, ex.answer) for ex in task.examples("train")}
    answer = ask(model, tok, [{"role": "user", "content": task.examples("train")[0].question}],
                 SamplingSettings(max_new_tokens=10, temperature=0))
    assert answer.ended and answer.text == task.examples("train")[0].answer


def test_the_memorised_model_does_not_know_the_held_out_question(memorised):
    model, tok, task = memorised
    score = evaluate(model, tok, task, n=5, split="val")
    assert score.n == len(task.examples("val")) and score.accuracy < 1.0


def constant_model(tok, token_id: int, block_size: int = 32):
    """A GPT whose every next token is `token_id`: its final hidden state is one fixed vector."""
    torch.manual_seed(0)
    model = build_model(GPTConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=1, n_head=1, n_embd=8,
                                  tie_weights=False))
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[token_id] = 1.0
    return model.eval()


def test_an_answer_that_never_ends_counts_as_not_ended_and_wrong(memorised):
    _, tok, task = memorised
    four = tok.encode("4")[0]
    score = evaluate(constant_model(tok, four), tok, task, n=3, split="train")
    assert score.ended == 0.0 and score.accuracy == 0.0
    assert all(g.answer == "4" * (len(g.expected) + 16) for g in score.graded)  # it ran out of tokens
    opens_a_turn = constant_model(tok, tok.special_ids[USER])
    assert evaluate(opens_a_turn, tok, task, n=3, split="train").ended == 0.0
    ends = constant_model(tok, tok.end_id)
    score = evaluate(ends, tok, task, n=3, split="train")
    assert score.ended == 1.0 and score.accuracy == 0.0 and all(g.answer == "" for g in score.graded)


def test_ask_drops_the_oldest_turns_of_a_long_conversation_and_refuses_one_too_long_message(memorised):
    _, tok, _ = memorised
    model = constant_model(tok, tok.end_id, block_size=32)
    turns = []
    for q, a in FACTS[:4]:
        turns += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    answer = ask(model, tok, turns + [{"role": "user", "content": "cat?"}], SamplingSettings(max_new_tokens=4))
    assert answer.ended and answer.text == ""
    assert answer.notes and "its first 6 message(s) were left out" in answer.notes[0]
    with pytest.raises(SamplingError, match="write a shorter one"):
        ask(model, tok, [{"role": "user", "content": "a" * 40}], SamplingSettings(max_new_tokens=4))
    with pytest.raises(DataError, match="must be the user's turn"):
        ask(model, tok, turns, SamplingSettings(max_new_tokens=4))


def test_a_task_with_nothing_that_fits_the_context_says_so(memorised):
    model, tok, _ = memorised
    with pytest.raises(DataError, match="No val example of long fits the model's context of 32 tokens"):
        evaluate(model, tok, LongOnly(), n=3)


class LongOnly(Task):
    name = "long"

    def example(self, rng, split):
        return Example(({"role": "user", "content": "a" * 40}, {"role": "assistant", "content": "b"}), "k", self.name)
