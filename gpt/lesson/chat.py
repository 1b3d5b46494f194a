"""Lesson step 10: from GPT to ChatGPT, on the student's own run.

The lecture ends with a model that continues text. What makes it a chat model
changes three things and keeps the rest (the network, the loss, the loop):
new tokens that mark whose turn it is (new rows in the embedding, started at
the mean of the old ones), conversations as data, and a mask so the loss
trains only on the answer. This step shows each on the student's run (or on
the lesson's tokenizer when there is none), and, once they fine-tuned one,
their chat model answering beside the run it came from.
"""

from __future__ import annotations

import torch

from ..chat.evaluate import ask, base_prompt
from ..chat.grow import grown_tokenizer, resized
from ..chat.tasks import task_from_name
from ..chat.tokenizer import ChatTokenizer
from ..engine import SamplingSettings
from ..errors import GPTError
from ..sample import stream_text
from .base import Lesson, Step, StudentRuns, source

EXAMPLE = [{"role": "user", "content": "What is 47 + 38?"}, {"role": "assistant", "content": "85"}]
QUESTIONS = ("What is 47 + 38?", "Reverse the word apple.", "Who are you?")
ANSWER_TOKENS = 40


def targets(ids: list[int], mask: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    # the inputs and the next tokens, as in pretraining; the loss ignores (-1) every target off the mask
    x = torch.tensor(ids[:-1])
    y = torch.tensor(ids[1:])
    y[torch.tensor(mask[1:]) == 0] = -1
    return x, y


def _table(chat: ChatTokenizer, ids: list[int], mask: list[int]) -> list[str]:
    rows = [f"{'token':>16} {'id':>6}  loss"]
    for i, m in zip(ids, mask):
        rows.append(f"{chat.decode([i])!r:>16} {i:>6}  {'trained on' if m else '-'}")
    return rows


def _side_by_side(runs: StudentRuns) -> list[str]:
    """The chat model's answers beside its parent's continuations, greedy."""
    settings = SamplingSettings(max_new_tokens=ANSWER_TOKENS, temperature=0)
    lines = [f"Your chat model {runs.chat_name} and the run it came from, {runs.name} (greedy):"]
    for question in QUESTIONS:
        try:
            answer = ask(runs.chat_model, runs.chat_tokenizer, [{"role": "user", "content": question}], settings)
            said = f"{answer.text!r}" + (" and stops (<|end|>)" if answer.ended else " and does not stop")
        except GPTError as err:
            said = f"cannot answer: {err}"
        ids, _ = base_prompt(runs.tokenizer, question, runs.model.config.block_size)
        text = "".join(stream_text(runs.model, runs.tokenizer, ids, settings))
        lines += [f"  {question}", f"    {runs.name} (GPT) continues: {text!r}", f"    {runs.chat_name} (chat) answers: {said}"]
    return lines


def step_chat(lesson: Lesson) -> Step:
    runs = lesson.runs
    base = runs.tokenizer if runs is not None else lesson.dataset.tokenizer
    where = f"your run {runs.name}" if runs is not None else f"the lesson's tokenizer ({base.describe()})"
    chat, note = grown_tokenizer(base, task_from_name("mix"))
    ids, mask = chat.render(EXAMPLE)
    x, y = targets(ids, mask)
    output = [f"On {where}, fine-tuned on the built-in mix of tasks:",
              f"vocabulary {base.vocab_size:,} -> {chat.vocab_size:,} tokens: {note}", "",
              f"conversation = {EXAMPLE}", "ids, mask = chat.render(conversation)", *_table(chat, ids, mask), "",
              f"x = {x.tolist()}", f"y = {y.tolist()}",
              f"{int((y != -1).sum())} of {len(y)} targets carry the loss: the answer and its <|end|>.", ""]
    if runs is not None and runs.chat_model is not None:
        output += _side_by_side(runs)
    else:
        output.append("Fine-tune a run in the Chat tab (or python -m gpt.chat finetune) and this step sets your chat "
                      "model beside the run it came from.")
    output += ["", "Next comes the reward stage (RL): the chat model answers each question several times, a grader "
               "scores each answer (1 right, 0 wrong), and the answers that scored better than their question's "
               "average are made likelier, with no written answer to copy. It sharpens what the model can already "
               "sometimes do; it cannot teach what the model never samples. Try it in the Chat tab (Reward the "
               "answers) or with python -m gpt.chat rl."]
    why = ("The model from the lecture continues documents; a chat model answers and stops. Supervised "
           "fine-tuning (SFT) keeps the network, the loss and the training loop, and changes three things: "
           "special tokens that say whose turn it is (new rows in the embedding, each started at the mean of the "
           "old ones, so no old prediction changes), conversations as the data, and a mask so that the loss "
           "trains only on the assistant's answer and the <|end|> that closes it.")
    lecture = ("The lecture ends here: its model is the pretraining stage only. ChatGPT adds a fine-tuning stage "
               "on conversations, then a reward stage; this step is the first of the two, at the scale of your run.")
    return Step("chat", "", why, source(targets, ChatTokenizer.render, resized), "\n".join(output), lecture,
                dict(ids=ids, mask=mask, vocab_before=base.vocab_size, vocab_after=chat.vocab_size, note=note,
                     trained=int((y != -1).sum())))
