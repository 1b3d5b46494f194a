"""Reinforcement learning with a grader: the model answers, the task grades, right answers are made likelier.

The last stage of a chat model, in miniature, as an objective handed to the one
trainer (`gpt.train`). Each step, for each of B questions (the run's batch size):

1) sample k answers with the KV cache (k rows of the same prompt; prompts of the
   same length share one batch), at a temperature, from a generator seeded by
   the step, so a resumed run samples what an uninterrupted one would;
2) grade each with the task's grader: reward 1 if it ended with <|end|> and is
   right, else 0 (an answer that never ends within the expected answer's length
   plus 16 tokens gets 0, as in `gpt.chat.evaluate`);
3) advantage = the reward minus the mean reward of its question's k answers:
   a right answer among wrong ones is pushed up, a wrong one among right ones
   down, and a question all k got right (or all wrong) teaches nothing;
4) the loss is minus the sum, over the assistant's sampled tokens (the answer
   and the token that closed it), of the advantage times the token's
   log-probability, divided by the number of those tokens. That is a weighted
   cross-entropy: the batch's y holds the sampled tokens (-1 off them) and its
   weight the row's advantage, and `gpt.train.objective.token_loss` computes it.

This is nanochat's chat RL (scripts/chat_rl.py), itself "GRPO" reduced to
REINFORCE: on-policy (one update per sample, so no ratio to clip), no KL
penalty towards the starting model, the group mean as the baseline without
dividing by the group's spread, and normalised per token rather than per answer.
What differs here: the log-probabilities are the model's own (temperature 1)
whatever the sampling temperature; all B questions are sampled in one batch
per prompt length rather than in device-sized chunks.

What it can and cannot do: it sharpens what the model can already sometimes do.
A question none of the k samples gets right has zero advantage everywhere: RL
cannot add what the model never samples (docs/lesson.md says more).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from .. import checkpoint as ckpt
from ..device import autocast, device_type
from ..engine import KVCache, sample_next_token
from ..errors import ConfigError
from ..model import GPTConfig
from ..presets import LATER_STAGES, RL_PRESET
from ..tokcompare import bits_per_char
from ..train import TrainConfig
from ..train.objective import IGNORE, Batch, Objective, Trainer
from ..validate import number, whole
from .batches import ChatBatches
from .conversation import Example
from .evaluate import EXTRA_TOKENS, Graded, Score, pick_examples
from .finetune import stage_configs
from .grow import data_texts, grown_base
from .objective import Finetune
from .task import Task
from .tokenizer import ChatTokenizer

SAMPLES_RANGE = (4, 16)  # answers per question: fewer makes the group mean a poor baseline, more costs time
MAX_TEMPERATURE = 2.0
EVAL_QUESTIONS = 100  # held-out questions answered greedily at each evaluation (the same ones every time)
SHOWN_GROUPS = 3  # questions of the latest step whose sampled answers an evaluation row keeps
SHOWN_HELD_OUT = 8  # held-out answers an evaluation row keeps, to compare before and after
MAX_DRAWS = 100  # draws per question for one that fits the context


@dataclass
class RLConfig:
    """What RL adds to a run's training settings: how many answers per question, and how boldly they are drawn."""

    samples: int = 8
    temperature: float = 1.0
    eval_questions: int = EVAL_QUESTIONS

    def __post_init__(self):
        lo, hi = SAMPLES_RANGE
        self.samples = whole(self.samples, "samples (answers per question)", lo, hi,
                             hint=f"Use {lo} to {hi}: each answer is compared with the mean of its question's.")
        if isinstance(self.temperature, (int, float)) and not isinstance(self.temperature, bool) \
                and self.temperature == 0:
            raise ConfigError("temperature must be above 0, got 0: greedy answers are all the same answer, so none "
                              "is better than its group's mean and nothing is learned. Use 1.")
        self.temperature = number(self.temperature, "temperature", 0, MAX_TEMPERATURE, low_open=True,
                                  hint="1 samples the model as it is; lower is bolder, higher more varied.")
        self.eval_questions = whole(self.eval_questions, "eval_questions", 1, 10_000)

    @classmethod
    def for_stage(cls, samples=None, temperature=None) -> "RLConfig":
        """The RL stage's settings (`gpt.presets.LATER_STAGES`), with what was asked instead where given."""
        asked = {k: v for k, v in (("samples", samples), ("temperature", temperature)) if v is not None}
        return cls(**{**LATER_STAGES[RL_PRESET]["rl"], **asked})


# --- starting an RL run ------------------------------------------------------------------------------------

def check_parent(tokenizer, task: Task, name: str) -> ChatTokenizer:
    """The parent's chat tokenizer, or a sentence: RL starts from a chat model that can write every token the
    task's answers use (a token it never samples is a token no reward can teach)."""
    if not isinstance(tokenizer, ChatTokenizer):
        raise ConfigError(f"Run {name!r} is not a chat model: fine-tune it on conversations first, then reward its "
                          "answers (RL makes likelier what a chat model already sometimes answers).")
    _, missing, unit = grown_base(tokenizer.base, data_texts(task))
    if missing:
        shown = " ".join(repr(piece) for piece in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ConfigError(f"{task.name} uses {len(missing):,} {unit} that chat run {name!r} has never written "
                          f"({shown}); fine-tune it on {task.name} first: RL cannot teach a token the model never "
                          "samples.")
    return tokenizer


def write_step_zero(out_dir, parent_dir, task: Task, parent_name: str, train: dict, limits=None,
                    meta: dict | None = None) -> str:
    """An RL run's step 0: the parent chat run's weights, unchanged, saved in `out_dir` with `meta` (where the run
    comes from). Returns the sentence saying where it starts from."""
    saved = ckpt.load_checkpoint(parent_dir, limits=limits)
    check_parent(saved.tokenizer, task, parent_name)
    note = f"Starts from {parent_name} at step {saved.step:,}."
    ckpt.save_checkpoint(out_dir, saved.model, saved.model_config, saved.tokenizer, 0, train=train, elapsed_s=0.0,
                         n_params=sum(p.numel() for p in saved.model.parameters()), **{**(meta or {}), "grown": note})
    return note


def rl_configs(parent: GPTConfig, overrides: dict | None = None,
               device: str = "auto") -> tuple[GPTConfig, TrainConfig]:
    """The parent's shape and vocabulary (RL adds no token), and the RL stage's training settings
    (`gpt.presets.LATER_STAGES`: AdamW 1e-4, 16 questions a step, five minutes at most) with `overrides`."""
    return stage_configs(RL_PRESET, parent, parent.vocab_size, overrides, device)


def rl_objective(task: Task, tokenizer: ChatTokenizer, block_size: int, config: RLConfig | None = None) -> "Reinforce":
    """What the trainer is handed for an RL run on `task`: its questions, sampled answers and grader."""
    return Reinforce(task, ChatBatches(task, tokenizer, block_size), config or RLConfig.for_stage())


@dataclass(frozen=True)
class Group:
    """One question's k sampled answers, graded."""

    example: Example
    prompt: list[int]  # the conversation up to <|assistant|>
    answers: list[list[int]]  # each answer's tokens, with the token that closed it (if it closed)
    texts: list[str]  # each answer's text, without the closing token
    ended: list[bool]  # closed with <|end|>
    rewards: list[float]  # 1.0 right, 0.0 not

    @property
    def advantages(self) -> list[float]:
        """Each reward minus the group's mean: zero for all when every answer is right, or every one wrong."""
        mean = sum(self.rewards) / len(self.rewards)
        return [r - mean for r in self.rewards]


def answer_budget(tokenizer: ChatTokenizer, example: Example, prompt_len: int, block_size: int) -> int:
    """Tokens an answer may take, the closing one included: the expected answer's length plus EXTRA_TOKENS (as
    `gpt.chat.evaluate` allows), within the context."""
    return min(len(tokenizer.encode(example.answer)) + EXTRA_TOKENS, block_size - prompt_len + 1)


@torch.inference_mode()
def sample_rows(model, prompts: list[list[int]], budgets: list[int], temperature: float, first_special: int,
                generator: torch.Generator | None = None) -> list[list[int]]:
    """Answers to R prompts of one length, sampled together with one KV cache: R lists of new tokens, each cut
    after its first chat token (id >= first_special) or at its budget. Temperature 0 is greedy."""
    device = next(model.parameters()).device
    rows = len(prompts)
    cache = KVCache.for_model(model, batch_size=rows)
    logits, _ = model(torch.tensor(prompts, device=device), kv_cache=cache, last_only=True)  # (R, 1, V)
    budget = torch.tensor(budgets, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    steps = []
    for t in range(max(budgets)):
        token = sample_next_token(logits[:, -1, :], temperature, generator=generator).view(rows)  # (R,)
        steps.append(token)
        done |= (token >= first_special) | (budget <= t + 1)
        if bool(done.all()):
            break
        logits, _ = model(token.view(rows, 1), kv_cache=cache, last_only=True)  # one new position per row
    drawn = torch.stack(steps, dim=1).tolist()  # (R, n)
    out = []
    for row, limit in zip(drawn, budgets):
        row = row[:limit]
        closed = next((i for i, tok in enumerate(row) if tok >= first_special), None)
        out.append(row if closed is None else row[: closed + 1])
    return out


def policy_batch(groups: list[Group], pad_id: int, device: str = "cpu") -> Batch:
    """x (R, T) the prompts and answers, y (R, T) the answer tokens (-1 elsewhere), weight (R, T) each row's
    advantage: R = B questions x k answers, T the longest prompt + answer less one."""
    rows, targets, weights = [], [], []
    for g in groups:
        for answer, advantage in zip(g.answers, g.advantages):
            ids = g.prompt + answer
            rows.append(ids[:-1])
            targets.append([IGNORE] * (len(g.prompt) - 1) + answer)  # the target of position t is ids[t + 1]
            weights.append(advantage)
    width = max(len(r) for r in rows)
    x = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long)
    y = torch.tensor([t + [IGNORE] * (width - len(t)) for t in targets], dtype=torch.long)
    weight = torch.tensor(weights, dtype=torch.float32)[:, None].expand(-1, width).contiguous()
    return Batch(x.to(device), y.to(device), weight.to(device))


class Reinforce(Objective):
    """RL with the task's grader: sampled answers, rewarded, each token weighted by its answer's advantage."""

    name = "rl"

    def __init__(self, task: Task, batches: ChatBatches, config: RLConfig | None = None):
        self.task, self.batches, self.config = task, batches, config or RLConfig()
        self.tokenizer: ChatTokenizer = batches.tokenizer
        self.answers = Finetune(task, batches)  # the right answers' cross-entropy: the loss curves of a row
        self._rewards: list[tuple[int, float]] = []  # (step, mean reward) since the last evaluation row
        self._latest: list[Group] = []  # the latest step's groups
        self._latest_step = 0
        self._held_out: list[tuple[Example, list[int]]] | None = None  # the questions every evaluation asks

    def check(self, model_config: GPTConfig) -> None:
        super().check(model_config)
        self.batches.check_block_size(model_config.block_size)

    # --- one step's batch --------------------------------------------------------------------------------
    def questions(self, rng: random.Random, split: str, n: int, block_size: int) -> list[tuple[Example, list[int]]]:
        """n examples of `split` whose prompt and right answer fit the context, each with its prompt ids."""
        out = []
        for _ in range(n * MAX_DRAWS):
            if len(out) == n:
                return out
            ex = self.task.example(rng, split)
            prompt = self.tokenizer.render_prompt(ex.prompt)
            if len(prompt) + len(self.tokenizer.encode(ex.answer)) + 1 <= block_size + 1:
                out.append((ex, prompt))
        raise ConfigError(f"{self.task.name}'s questions are too long for the model's context of {block_size} "
                          "tokens; use shorter conversations or a model with a longer context.")

    def rollout(self, model, drawn: list[tuple[Example, list[int]]], generator: torch.Generator | None,
                samples: int | None = None, temperature: float | None = None) -> list[Group]:
        """k answers to each question (the config's k and temperature unless given), graded. Prompts of one
        length are sampled as one batch of rows."""
        k, tok, block = samples or self.config.samples, self.tokenizer, model.config.block_size
        temperature = self.config.temperature if temperature is None else temperature
        answers: list[list[list[int]]] = [[] for _ in drawn]
        by_length: dict[int, list[int]] = {}
        for i, (_, prompt) in enumerate(drawn):
            by_length.setdefault(len(prompt), []).append(i)
        for length in sorted(by_length):
            members = by_length[length]
            prompts = [drawn[i][1] for i in members for _ in range(k)]
            budgets = [answer_budget(tok, drawn[i][0], length, block) for i in members for _ in range(k)]
            got = sample_rows(model, prompts, budgets, temperature, tok.n_text, generator)
            for j, i in enumerate(members):
                answers[i] = got[j * k:(j + 1) * k]
        return [self.grade(ex, prompt, group) for (ex, prompt), group in zip(drawn, answers)]

    def grade(self, example: Example, prompt: list[int], answers: list[list[int]]) -> Group:
        texts, ended, rewards = [], [], []
        for ids in answers:
            closed = bool(ids) and self.tokenizer.is_special(ids[-1])
            text = self.tokenizer.decode(ids[:-1] if closed else ids)
            ok = closed and ids[-1] == self.tokenizer.end_id
            texts.append(text)
            ended.append(ok)
            rewards.append(1.0 if ok and self.task.grade(example, text) else 0.0)
        return Group(example, prompt, answers, texts, ended, rewards)

    def batch(self, trainer: Trainer, split: str, generator: torch.Generator) -> Batch:
        """B questions, k answers each, sampled from the model as it is now; see the module docstring."""
        model = trainer.model
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        rng = random.Random(seed)  # 1) the questions
        drawn = self.questions(rng, split, trainer.config.batch_size, model.config.block_size)
        sampler = torch.Generator(device=trainer.device).manual_seed(seed)  # 2) the answers
        was_training = model.training
        model.eval()  # no dropout while sampling: the answers are the model's own
        try:
            # token by token on a CPU, bf16 casts cost more than they save: float32 there
            dtype = torch.float32 if device_type(trainer.device) == "cpu" else trainer.dtype
            with autocast(trainer.device, dtype):
                groups = self.rollout(model, drawn, sampler)
        finally:
            model.train(was_training)
        if split == "train":
            rewards = [r for g in groups for r in g.rewards]
            self._latest_step = getattr(trainer, "step", 0) + 1  # the step this batch trains
            self._rewards.append((self._latest_step, sum(rewards) / len(rewards)))
            self._latest = groups
        return policy_batch(groups, self.tokenizer.end_id, trainer.device)  # 3) and 4): advantages as weights

    # --- what a page reads while the run trains in this process -----------------------------------------------
    def recent_rewards(self) -> list[tuple[int, float]]:
        """(step, mean reward) of each step since the last evaluation row, which will carry them."""
        return list(self._rewards)

    def latest_answers(self) -> tuple[int, list[dict]]:
        """The latest step and a few of its questions with their sampled answers and rewards."""
        return self._latest_step, [shown_group(g) for g in self._latest[:SHOWN_GROUPS]]

    # --- one evaluation row ---------------------------------------------------------------------------------
    def held_out_score(self, model) -> Score:
        """pass@1 on the fixed held-out questions: greedy answers, graded as `gpt.chat.evaluate.evaluate` grades
        them (the same questions, budget and rule), sampled in batches of one prompt length (~10x fewer passes)."""
        if self._held_out is None:
            examples = pick_examples(self.task, self.tokenizer, "val", self.config.eval_questions,
                                     model.config.block_size)
            self._held_out = [(ex, self.tokenizer.render_prompt(ex.prompt)) for ex in examples]
        was_training = model.training
        model.eval()
        try:
            groups = self.rollout(model, self._held_out, None, samples=1, temperature=0.0)
        finally:
            model.train(was_training)
        graded = tuple(Graded(g.example.question, g.example.answer, g.texts[0], g.rewards[0] > 0, g.ended[0])
                       for g in groups)
        n = len(graded)
        return Score(sum(g.correct for g in graded) / n, sum(g.ended for g in graded) / n, n, graded)

    # --- one evaluation row --------------------------------------------------------------------------------
    def evaluate(self, trainer: Trainer, eval_iters: int) -> dict:
        """The right answers' cross-entropy (train_loss, val_loss: the curves every run has), held-out accuracy
        (greedy, the same questions each time), the mean reward of the steps since the last row and each of
        them, a few of the latest step's sampled answers, and a few held-out answers to compare over time."""
        row = Objective.evaluate(self.answers, trainer, eval_iters)  # the mean loss of each split, SFT's way
        row["val_bpc"] = bits_per_char(row["val_loss"], self.batches.val_chars_per_token)
        dtype = torch.float32 if device_type(trainer.device) == "cpu" else trainer.dtype
        with autocast(trainer.device, dtype):
            score = self.held_out_score(trainer.model)
        row["val_accuracy"], row["val_ended"] = score.accuracy, score.ended
        if self._rewards:
            row["reward"] = sum(r for _, r in self._rewards) / len(self._rewards)
            row["rewards"] = [[s, round(r, 4)] for s, r in self._rewards]
            self._rewards = []
        if self._latest:
            row["sampled"] = [shown_group(g) for g in self._latest[:SHOWN_GROUPS]]
        row["held_out"] = [[g.question, g.expected, g.answer, g.correct] for g in score.graded[:SHOWN_HELD_OUT]]
        first = score.graded[0] if score.graded else None
        if first is not None:
            mark = "right" if first.correct else "wrong"
            row["sample"] = f"Q: {first.question}\nA: {first.answer} ({mark}; the answer is {first.expected})"
        return row


def shown_group(g: Group) -> dict:
    """A question, its right answer and its k sampled answers with their rewards, for the page."""
    return {"question": g.example.question, "expected": g.example.answer,
            "answers": [[text, reward] for text, reward in zip(g.texts, g.rewards)]}
