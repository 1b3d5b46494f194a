"""RL with a grader (gpt.chat.rl): the advantages, the loss, the tokens that carry gradient, zero advantage, resume.

A small chat model that knows a few facts by heart (helpers_chat.memorise) answers
them by sampling; the task grades. Every number the objective computes is
checked against a computation by hand on the same tensors.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gpt import checkpoint as ckpt
from gpt.chat.batches import ChatBatches
from gpt.chat.conversation import Example
from gpt.chat.rl import Group, Reinforce, RLConfig, check_parent, policy_batch, sample_rows
from gpt.chat.tasks import task_from_name
from gpt.errors import ConfigError, GPTError
from gpt.jobs import RunRequest
from gpt.tokenizer import CharTokenizer
from gpt.train import Trainer
from gpt.train.objective import Objective, token_loss
from helpers_chat import facts_file, memorise, random_gpt

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def memorised():
    """(model, tokenizer, task): a tiny chat model that answers eight facts, and the facts as a task."""
    task = facts_file()
    model, tok = memorise(task)
    return model, tok, task


class FakeTrainer:
    """What an objective reads of the trainer that hands itself over."""

    def __init__(self, model, batch_size: int, step: int = 0):
        from gpt.train import TrainConfig

        self.model, self.forward, self.device, self.dtype, self.step = model, model, "cpu", torch.float32, step
        self.config = TrainConfig(batch_size=batch_size)

    def stop_requested(self) -> bool:
        return False


def chat_tokenizer():
    from gpt.chat import ChatTokenizer

    return ChatTokenizer(CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz0123456789+? "))


def example(question: str, answer: str) -> Example:
    return Example(({"role": "user", "content": question}, {"role": "assistant", "content": answer}), question)


def test_the_advantage_is_the_reward_minus_its_groups_mean():
    g = Group(example("2+2?", "4"), [1, 2], [[3]] * 4, ["4", "5", "4", "x"], [True] * 4, [1.0, 0.0, 1.0, 0.0])
    assert g.advantages == [0.5, -0.5, 0.5, -0.5]
    assert Group(g.example, [1], [[3]] * 3, ["4"] * 3, [True] * 3, [1.0] * 3).advantages == [0.0] * 3
    assert Group(g.example, [1], [[3]] * 3, ["4"] * 3, [True] * 3, [0.0] * 3).advantages == [0.0] * 3


def test_the_loss_of_a_hand_made_batch_is_minus_the_advantage_weighted_log_probabilities_per_token():
    """Two questions, three answers each, of different lengths: the batch and its loss, computed by hand."""
    tok = chat_tokenizer()
    model = random_gpt(tok.vocab_size, block_size=32, seed=3)
    e = tok.end_id
    enc = tok.encode
    p1, p2 = tok.render_prompt([{"role": "user", "content": "2+2?"}]), tok.render_prompt(
        [{"role": "user", "content": "sky?"}])
    a1 = [[*enc("4"), e], [*enc("44"), e], [*enc("5"), e]]
    a2 = [[*enc("blue"), e], [*enc("red"), e], enc("blu")]  # the last never ended
    groups = [Group(example("2+2?", "4"), p1, a1, ["4", "44", "5"], [True] * 3, [1.0, 0.0, 0.0]),
              Group(example("sky?", "blue"), p2, a2, ["blue", "red", "blu"], [True, True, False], [1.0, 1.0, 0.0])]
    batch = policy_batch(groups, pad_id=e)
    # by hand: each answer token's log-probability after its prompt and the answer so far
    total, count = 0.0, 0
    by_hand_adv = [1 - 1 / 3, -1 / 3, -1 / 3, 1 - 2 / 3, 1 - 2 / 3, -2 / 3]
    rows = [(p1, a) for a in a1] + [(p2, a) for a in a2]
    with torch.no_grad():
        for (prompt, answer), adv in zip(rows, by_hand_adv):
            ids = torch.tensor([prompt + answer])
            logp = F.log_softmax(model(ids)[0][0].double(), dim=-1)  # (T, V)
            for j, token in enumerate(answer):
                total += adv * logp[len(prompt) - 1 + j, token].item()
                count += 1
        loss = Objective().loss(model, batch)
    assert torch.allclose(batch.weight[:, 0], torch.tensor(by_hand_adv, dtype=torch.float32))
    assert int((batch.y != -1).sum()) == count == sum(len(a) for _, a in rows)
    assert loss.item() == pytest.approx(-total / count, rel=1e-5, abs=1e-6)


def test_only_the_sampled_answer_tokens_carry_gradient():
    """The loss's gradient reaches the logits at exactly the positions that predict an answer token or the token
    that closed it: none at the prompt (the question, the chat tokens) nor at the padding."""
    tok = chat_tokenizer()
    e = tok.end_id
    p = tok.render_prompt([{"role": "user", "content": "name?"}])
    answers = [[*tok.encode("gpt"), e], [*tok.encode("g"), e]]
    batch = policy_batch([Group(example("name?", "gpt"), p, answers, ["gpt", "g"], [True, True], [1.0, 0.0])], e)
    logits = torch.randn(*batch.x.shape, tok.vocab_size, requires_grad=True)
    token_loss(logits, batch).backward()
    carries = logits.grad.abs().sum(-1) > 0  # (R, T)
    expected = torch.zeros_like(carries)
    for r, answer in enumerate(answers):
        expected[r, len(p) - 1: len(p) - 1 + len(answer)] = True  # position t predicts token t + 1
    assert torch.equal(carries, expected)
    assert torch.equal(batch.y[expected], torch.tensor([t for a in answers for t in a]))
    assert not any(tok.is_special(t) and t != e for t in batch.y[expected].tolist())


def test_sampled_rows_end_at_their_first_chat_token_and_the_same_seed_samples_the_same(memorised):
    model, tok, task = memorised
    prompt = tok.render_prompt([{"role": "user", "content": "sky?"}])
    rows = sample_rows(model, [prompt] * 6, [8] * 6, 1.0, tok.n_text, torch.Generator().manual_seed(5))
    again = sample_rows(model, [prompt] * 6, [8] * 6, 1.0, tok.n_text, torch.Generator().manual_seed(5))
    assert rows == again and all(1 <= len(r) <= 8 for r in rows)
    for r in rows:
        specials = [i for i, t in enumerate(r) if tok.is_special(t)]
        assert specials in ([], [len(r) - 1])  # only the last token may be a chat token
    greedy = sample_rows(model, [prompt], [8], 0.0, tok.n_text)[0]
    assert tok.decode(greedy) == "blue<|end|>"


def test_a_batch_samples_k_answers_per_question_and_rewards_the_right_ones(memorised):
    model, tok, task = memorised
    obj = Reinforce(task, ChatBatches(task, tok, 32), RLConfig(samples=4, temperature=1.0, eval_questions=4))
    batch = obj.batch(FakeTrainer(model, batch_size=5, step=7), "train", torch.Generator().manual_seed(0))
    assert batch.x.shape[0] == 5 * 4 and batch.weight.shape == batch.x.shape
    for g in obj._latest:
        for text, ended, reward in zip(g.texts, g.ended, g.rewards):
            assert reward == float(ended and text == g.example.answer)
        assert len(g.answers) == 4 and sum(g.advantages) == pytest.approx(0.0, abs=1e-6)
    assert obj._rewards == [(8, sum(r for g in obj._latest for r in g.rewards) / 20)]
    again = obj.batch(FakeTrainer(model, batch_size=5, step=7), "train", torch.Generator().manual_seed(0))
    assert torch.equal(batch.x, again.x) and torch.equal(batch.weight, again.weight)  # seeded by the step


def test_an_answer_that_never_ends_gets_no_reward(memorised):
    model, tok, task = memorised
    obj = Reinforce(task, ChatBatches(task, tok, 32), RLConfig(samples=4))
    ex = task.examples("train")[0]
    prompt = tok.render_prompt(ex.prompt)
    right = tok.encode(ex.answer)
    g = obj.grade(ex, prompt, [right + [tok.end_id], right, right + [tok.special_id("<|user|>")]])
    assert g.rewards == [1.0, 0.0, 0.0] and g.ended == [True, False, False] and g.texts == [ex.answer] * 3


def _trainer(model, tok, task, out, rl: RLConfig, grade=None, resume=True, **train):
    """A trainer resuming from `model` saved as step 0 (as an RL run's step 0 is its parent's weights)."""
    if grade is not None:
        task.grade = grade
    model_cfg, train_cfg = RunRequest(kind="rl", max_seconds=0, **train).configs(tok.vocab_size, "cpu",
                                                                                base_model=model.config)
    if not (out / ckpt.WEIGHTS).exists():
        ckpt.save_checkpoint(out, model, model.config, tok, 0, train=train_cfg.to_dict())
    return Trainer(model_cfg, train_cfg, Reinforce(task, ChatBatches(task, tok, 32), rl), out, resume=resume)


def test_a_grader_that_always_says_right_leaves_the_model_unchanged(memorised, tmp_path):
    """Every answer ends and is 'right': every advantage is 0, so is every gradient, and AdamW (no weight decay
    in the RL stage) moves nothing."""
    model, tok, task = memorised
    always = facts_file()
    trainer = _trainer(model, tok, always, tmp_path, RLConfig(samples=4, temperature=0.5, eval_questions=2),
                       grade=lambda ex, answer: True, batch_size=4, max_iters=3)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer.run() == "finished", trainer.error
    assert all(r == 1.0 for g in trainer.objective._latest for r in g.rewards)  # every answer ended
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the task's own grader, which says no to some answers, does move it
    moved = _trainer(model, tok, facts_file(), tmp_path / "b", RLConfig(samples=4, temperature=1.5, eval_questions=2),
                     batch_size=4, max_iters=3)
    moved.run()
    assert any(not torch.equal(before[k], v) for k, v in moved.model.state_dict().items())


def test_stop_and_resume_equals_one_go_bit_for_bit(memorised, tmp_path):
    model, tok, task = memorised
    settings = RLConfig(samples=4, temperature=1.0, eval_questions=2)
    one_go = _trainer(model, tok, facts_file(), tmp_path / "one", settings, batch_size=4, max_iters=6)
    assert one_go.run() == "finished", one_go.error

    first = _trainer(model, tok, facts_file(), tmp_path / "two", settings, batch_size=4, max_iters=6)
    first.add_callback("on_step", lambda p: first.request_stop() if p["step"] == 3 else None)
    assert first.run() == "stopped" and first.step == 3
    second = _trainer(model, tok, facts_file(), tmp_path / "two", settings, batch_size=4, max_iters=6)
    assert second.step == 3 and second.run() == "finished"
    a, b = one_go.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_evaluation_row_has_the_reward_curve_held_out_accuracy_and_sampled_answers(memorised, tmp_path):
    model, tok, task = memorised
    trainer = _trainer(model, tok, facts_file(), tmp_path, RLConfig(samples=4, eval_questions=2), batch_size=4,
                       max_iters=4)
    trainer.config.eval_interval = 2
    assert trainer.run() == "finished", trainer.error
    rows = ckpt.read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [0, 2, 4]
    assert "reward" not in rows[0] and [s for s, _ in rows[1]["rewards"]] == [1, 2]
    assert [s for s, _ in rows[2]["rewards"]] == [3, 4]
    for r in rows[1:]:
        assert r["reward"] == pytest.approx(sum(v for _, v in r["rewards"]) / 2, abs=1e-3)
        assert 0 <= r["val_accuracy"] <= 1 and math.isfinite(r["val_loss"]) and math.isfinite(r["train_loss"])
        for shown in r["sampled"]:
            assert len(shown["answers"]) == 4 and all(reward in (0.0, 1.0) for _, reward in shown["answers"])
    assert [h[0] for h in rows[0]["held_out"]] == [h[0] for h in rows[-1]["held_out"]]  # the same questions
    assert rows[-1]["sample"].startswith("Q: ")


def test_held_out_accuracy_is_what_the_chat_evaluation_measures():
    """The batched greedy answers grade as `gpt.chat.evaluate` grades one answer at a time."""
    from gpt.chat.evaluate import evaluate

    from gpt.chat.grow import chat_model
    from helpers_chat import CORPUS

    task = task_from_name("addition")
    base = CharTokenizer.from_text(CORPUS)
    grown = chat_model(random_gpt(base.vocab_size, arch="modern", scale=3.0), base, task)
    model, tok = grown.model.eval(), grown.tokenizer
    obj = Reinforce(task, ChatBatches(task, tok, 48), RLConfig(eval_questions=30))
    batched, single = obj.held_out_score(model), evaluate(model, tok, task, n=30)
    assert [(g.question, g.answer, g.correct, g.ended) for g in batched.graded] == \
        [(g.question, g.answer, g.correct, g.ended) for g in single.graded]


# --- bad inputs are sentences ---------------------------------------------------------------------------------

@pytest.mark.parametrize("samples", [3, 17, 2.5, "eight", True])
def test_answers_per_question_out_of_range_is_a_sentence(samples):
    with pytest.raises(ConfigError, match=r"^samples \(answers per question\) must be .*4 to 16"):
        RLConfig(samples=samples)


@pytest.mark.parametrize("temperature", [0, -1, 2.5, float("nan")])
def test_a_temperature_out_of_range_is_a_sentence(temperature):
    with pytest.raises(ConfigError, match="^temperature must be"):
        RLConfig(temperature=temperature)


def test_a_parent_that_is_not_a_chat_model_or_lacks_the_tasks_tokens_is_refused():
    task = task_from_name("addition")
    with pytest.raises(GPTError, match="Run 'base' is not a chat model: fine-tune it on conversations first"):
        check_parent(CharTokenizer.from_text("abc"), task, "base")
    from gpt.chat import ChatTokenizer

    letters = ChatTokenizer(CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz ?"))
    with pytest.raises(GPTError, match=r"^addition uses 12 characters that chat run 'words' has never written "
                                       r"\('\+' '0' '1' .*\); fine-tune it on addition first"):
        check_parent(letters, task, "words")
    ok = ChatTokenizer(CharTokenizer.from_text("What is 0123456789+?"))
    assert check_parent(ok, task, "ok") is ok


def test_the_rl_stage_settings_are_the_presets_and_a_request_overrides_them():
    from gpt.presets import LATER_STAGES

    stage = LATER_STAGES["rl"]
    assert RLConfig.for_stage() == RLConfig(**stage["rl"])
    assert RLConfig.for_stage(samples=16, temperature=0.7) == RLConfig(samples=16, temperature=0.7)
    model = random_gpt(50, block_size=32)
    _, train = RunRequest(kind="rl", lr=3e-4).configs(50, "cpu", base_model=model.config)
    assert train.batch_size == stage["train"]["batch_size"] and train.lr == 3e-4 and train.weight_decay == 0.0
