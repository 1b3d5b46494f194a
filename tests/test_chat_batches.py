"""SFT batches: Dataset.get_batch's signature, the loss only where the assistant writes, packing, determinism."""

import inspect
import json

import pytest
import torch

from gpt.chat.batches import ChatBatches
from gpt.chat.files import parse_conversations
from gpt.chat.grow import chat_model, data_texts, grown_base
from gpt.chat.tasks import task_from_name
from gpt.chat.tokenizer import USER, ChatTokenizer
from gpt.data import Dataset
from gpt.errors import DataError
from gpt.tokenizer import CharTokenizer

from helpers_chat import KINDS, base_tokenizer, random_gpt

ALPHABET = "abcdefghijklmnopqrstuvwxyz ?.+0123456789W"


def file_task(rows):
    lines = [json.dumps({"messages": [{"role": r, "content": c} for r, c in turns]}) for turns in rows]
    return parse_conversations(("\n".join(lines) + "\n").encode(), "mine.jsonl")


def two_turn(i):
    return [("user", f"q {i}?"), ("assistant", "a" * (1 + i % 5)), ("user", "and?"), ("assistant", f"z {i}")]


def chat_for(task):
    """A chat tokenizer over exactly the characters the task uses."""
    return ChatTokenizer(grown_base(CharTokenizer(" "), data_texts(task))[0])


def rendered_conversations(batches, split):
    return [batches.tokenizer.render(list(ex.messages)) for ex in batches.task.examples(split)]


def test_get_batch_has_exactly_the_signature_of_dataset_get_batch():
    assert inspect.signature(ChatBatches.get_batch) == inspect.signature(Dataset.get_batch)


@pytest.mark.parametrize("kind", KINDS)
def test_targets_are_the_next_token_where_the_assistant_writes_and_minus_one_elsewhere(kind):
    """Token by token: every row is whole conversations then padding, and y follows each token's own mask."""
    task = file_task([two_turn(i) for i in range(60)])
    base = base_tokenizer(kind, text="".join(task.coverage()) + " ")
    chat = ChatTokenizer(base)
    batches = ChatBatches(task, chat, 40)
    x, y = batches.get_batch("train", 8, 40, "cpu", torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (8, 40) and x.dtype == y.dtype == torch.long
    known = {tuple(ids): mask for ids, mask in rendered_conversations(batches, "train")}
    whole_rows = 0
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        row = row_x + [row_y[-1] if row_y[-1] >= 0 else chat.end_id]  # the T+1 tokens the row was cut from
        pos, expected = 0, [-1] * 40
        while pos < 41 and row[pos] == chat.special_ids[USER]:  # a conversation starts here: which one?
            ids = next(ids for ids in known if tuple(row[pos:pos + len(ids)]) == ids)
            for t, (token, learn) in enumerate(zip(ids[1:], known[ids][1:]), start=pos):
                expected[t] = token if learn else -1  # the target's own mask decides
            pos += len(ids)  # the last <|end|>'s target is the next <|user|> or padding: -1, never learned
        whole_rows += pos == 41
        assert pos >= 1 and all(t == chat.end_id for t in row[pos:])  # then only padding
        assert row_y == expected
    assert whole_rows < len(x)  # some rows end in padding


def test_packing_puts_several_conversations_in_a_row_and_no_loss_crosses_between_them():
    task = task_from_name("addition")
    chat = chat_for(task)
    batches = ChatBatches(task, chat, 128)
    x, y = batches.get_batch("train", 16, 128, "cpu", torch.Generator().manual_seed(0))
    starts = (x == chat.special_ids[USER]).sum(dim=1)
    assert (starts >= 3).all()  # a 16-token question and a 2-3 token answer: four or five to a row
    boundaries = (x == chat.end_id) & torch.roll(x == chat.special_ids[USER], -1, dims=1)
    assert (y[boundaries] == -1).all() and (y[x == chat.end_id] == -1).all()  # nothing is learned after <|end|>
    learned = chat.decode([t for t in y.flatten().tolist() if t >= 0])
    assert set(learned) <= set("0123456789<|end>")


def test_the_same_generator_state_gives_the_same_batch_and_val_draws_held_out_questions_only():
    task = task_from_name("reverse")
    tok = chat_for(task)
    batches = ChatBatches(task, tok, 64)
    a = batches.get_batch("val", 4, 64, "cpu", torch.Generator().manual_seed(5))
    b = batches.get_batch("val", 4, 64, "cpu", torch.Generator().manual_seed(5))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    gen = torch.Generator().manual_seed(5)
    batches.get_batch("train", 4, 64, "cpu", gen)
    state = gen.get_state()
    after = batches.get_batch("train", 4, 64, "cpu", gen)
    resumed = batches.get_batch("train", 4, 64, "cpu", torch.Generator().set_state(state))
    assert all(torch.equal(p, q) for p, q in zip(after, resumed))  # an exact resume
    words = set(tok.decode(a[0].flatten().tolist()).replace("<|", " ").replace("|>", " ").split())
    train_words = {ex.key for ex in (task.example(__import__("random").Random(i), "train") for i in range(3000))}
    assert not (words - {"Reverse", "the", "word", "user", "assistant", "end"}) & train_words


def test_conversations_longer_than_the_context_are_skipped_with_a_count():
    rows = [[("user", "q" * n), ("assistant", "a")] for n in (5, 6, 7, 8, 60, 70)] + [two_turn(i) for i in range(20)]
    task = file_task(rows)
    chat = chat_for(task)
    batches = ChatBatches(task, chat, 40)
    assert batches.note == ("Skipped 2 of 26 conversations longer than the model's context of 40 tokens "
                            "(the longest has 75); 24 remain.")
    for seed in range(20):
        x, _ = batches.get_batch("train", 4, 40, "cpu", torch.Generator().manual_seed(seed))
        assert not any("q" * 30 in chat.decode(row) for row in x.tolist())
    with pytest.raises(DataError, match="Every training conversation of mine.jsonl is longer than the model's context of 4"):
        batches.check_block_size(4)
    assert batches.val_chars_per_token > 0
    assert ChatBatches(task, chat, 200).note is None


def test_an_endless_task_estimates_its_share_of_long_conversations():
    task = task_from_name("identity")
    chat = chat_for(task)
    assert "are longer than the model's context of 64 tokens; they are skipped." in ChatBatches(task, chat, 64).note
    with pytest.raises(DataError, match="longer than the model's context of 20 tokens"):
        ChatBatches(task, chat, 20)
    with pytest.raises(DataError, match="chat tokenizer"):
        ChatBatches(task, chat.base, 64)


def test_a_batch_trains_a_model_with_the_loss_on_the_answers_only():
    task = task_from_name("addition")
    base = CharTokenizer(sorted(set(ALPHABET + "What")))
    grown = chat_model(random_gpt(base.vocab_size, block_size=64), base, task)
    batches = ChatBatches(task, grown.tokenizer, 64)
    x, y = batches.get_batch("train", 4, 64, "cpu", torch.Generator().manual_seed(0))
    logits, loss = grown.model(x, y)
    picked = y >= 0
    by_hand = torch.nn.functional.cross_entropy(logits[picked], y[picked])
    assert torch.allclose(loss, by_hand)
