"""Conversation data: built-in tasks with disjoint splits and exact graders; your own files, checked line by line."""

import json
import random

import pytest

from gpt.chat.conversation import check_messages
from gpt.chat.files import load_conversations, parse_conversations
from gpt.chat.task import is_held_out
from gpt.chat.tasks import IDENTITY_ANSWER, TASKS, Mix, task_from_name
from gpt.chat.tokenizer import ChatTokenizer
from gpt.errors import DataError
from gpt.tokenizer import CharTokenizer

from conftest import shakespeare_available

NAMES = [n for n in TASKS if n != "shakespeare" or shakespeare_available()]


def draws(task, split, n=3000, seed=0):
    rng = random.Random(seed)
    return [task.example(rng, split) for _ in range(n)]


@pytest.mark.parametrize("name", NAMES)
def test_no_held_out_question_ever_appears_in_train(name):
    task = task_from_name(name)
    train, val = draws(task, "train"), draws(task, "val", 500)
    assert not {ex.question for ex in train} & {ex.question for ex in val}
    assert not {ex.key for ex in train} & {ex.key for ex in val}
    assert all(ex.messages[-1]["role"] == "assistant" and ex.messages[0]["role"] == "user" for ex in train + val)
    assert draws(task, "val", 50, seed=7) == draws(task, "val", 50, seed=7)  # deterministic


@pytest.mark.parametrize("name", ["addition", "addition3", "count", "reverse"])
def test_the_split_is_the_keys_hash(name):
    task = task_from_name(name)
    assert all(not is_held_out(ex.key) for ex in draws(task, "train", 500))
    assert all(is_held_out(ex.key) for ex in draws(task, "val", 200))


def test_addition_holds_out_both_orders_of_a_pair():
    train = {ex.question for ex in draws(task_from_name("addition"), "train", 30000)}
    val = draws(task_from_name("addition"), "val", 300)
    for ex in val:
        a, b = ex.key.split("+")
        assert f"What is {b} + {a}?" not in train and f"What is {a} + {b}?" not in train


class Scripted:
    """A random generator that returns the values it is given, in order."""

    def __init__(self, *values):
        self.values = list(values)

    def randrange(self, *_):
        return self.values.pop(0)

    def choice(self, seq):
        value = self.values.pop(0)
        assert value in seq
        return value

    def random(self):
        return self.values.pop(0)


@pytest.mark.parametrize("name, draw, question, answer", [
    ("addition", (47, 38), "What is 47 + 38?", "85"), ("addition3", (999, 999), "What is 999 + 999?", "1998"),
    ("count", ("strawberry", 0.1, "r"), "How many r's are in strawberry?", "3"),
    ("count", ("apple", 0.9, "z"), "How many z's are in apple?", "0"),
    ("reverse", ("apple",), "Reverse the word apple.", "elppa"),
])
def test_answers_are_right_and_graded_by_exact_match(name, draw, question, answer):
    task = task_from_name(name)
    ex = task.make(Scripted(*draw))
    assert (ex.question, ex.answer) == (question, answer)
    assert task.grade(ex, answer) and task.grade(ex, f" {answer}\n")
    assert not task.grade(ex, answer + "0") and not task.grade(ex, "")


def test_identity_answers_one_self_description_and_holds_out_whole_phrasings():
    task = task_from_name("identity")
    train, val = draws(task, "train", 400), draws(task, "val", 100)
    assert {ex.answer for ex in train + val} == {IDENTITY_ANSWER} and "small GPT" in IDENTITY_ANSWER
    assert len({ex.question for ex in val}) == 4 and len({ex.question for ex in train}) == 16


def test_shakespeare_asks_who_speaks_and_what_comes_next_from_the_corpus(shakespeare_text):
    task = task_from_name("shakespeare")
    examples = draws(task, "train", 2000)
    who = [ex for ex in examples if ex.question.startswith("Who speaks this line?\n")]
    after = [ex for ex in examples if ex.question.startswith("What comes after this line?\n")]
    assert len(who) > 500 and len(after) > 500
    for ex in who[:50]:
        line = ex.question.split("\n", 1)[1]
        assert f"{ex.answer}:\n" in shakespeare_text and shakespeare_text.count(line + "\n") == 1
    for ex in after[:50]:
        assert ex.question.split("\n", 1)[1] + "\n" + ex.answer + "\n" in shakespeare_text


def test_mix_draws_by_weight_and_grades_each_by_its_own_task():
    mix = task_from_name("mix:addition=3,identity=1")
    tasks = [ex.task for ex in draws(mix, "train", 4000)]
    assert 0.70 < tasks.count("addition") / len(tasks) < 0.80
    assert set(tasks) == {"addition", "identity"}
    ex = draws(mix, "val", 1)[0]
    assert mix.grade(ex, ex.answer)
    assert task_from_name("mix").weights == {"addition": 5.0, "count": 2.0, "reverse": 2.0, "identity": 1.0}
    for bad, words in [("mix:addition=-1", "positive"), ("mix:mix=1", "other than mix"), ("nope", "Unknown task"),
                       ("mix:addition=x", "name=number")]:
        with pytest.raises(DataError, match=words):
            task_from_name(bad)
    with pytest.raises(DataError):
        Mix({})


# --- your own files --------------------------------------------------------------------------------


def chat_line(*turns, **extra):
    roles = ["user", "assistant"] * len(turns)
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in zip(roles, turns)], **extra})


def jsonl(*lines):
    return ("\n".join(lines) + "\n").encode()


def many(n):
    return [chat_line(f"question {i}", f"answer {i}") for i in range(n)]


def test_jsonl_in_the_chat_format_and_alpaca_in_both_containers_read_the_same():
    rows = [("What is 2 + 2?", "4"), ("Name a colour.", "Blue")] + [(f"q{i}", f"a{i}") for i in range(30)]
    as_chat = parse_conversations(jsonl(*(chat_line(q, a) for q, a in rows)), "chat.jsonl")
    alpaca = [{"instruction": q, "input": "", "output": a} for q, a in rows]
    as_list = parse_conversations(json.dumps(alpaca, indent=2).encode(), "alpaca.json")
    as_lines = parse_conversations(jsonl(*map(json.dumps, alpaca)), "alpaca.jsonl")
    for f in (as_list, as_lines):
        assert [ex.messages for ex in f.examples("train")] == [ex.messages for ex in as_chat.examples("train")]
        assert [ex.messages for ex in f.examples("val")] == [ex.messages for ex in as_chat.examples("val")]
    assert len(as_chat) == 32 and as_chat.examples("val")
    with_input = parse_conversations(json.dumps([{"instruction": "Add.", "input": "2 + 2", "output": "4"}] * 2 + [
        {"instruction": "Say hi.", "output": "hi"}]).encode(), "a.json")
    users = {ex.messages[0]["content"] for split in ("train", "val") for ex in with_input.examples(split)}
    assert users == {"Add.\n\n2 + 2", "Say hi."}


def test_the_same_question_is_always_on_the_same_side():
    f = parse_conversations(jsonl(*(chat_line(f"q{i % 40}", f"a{i}") for i in range(400))), "dup.jsonl")
    train_q = {ex.question for ex in f.examples("train")}
    val_q = {ex.question for ex in f.examples("val")}
    assert val_q and not train_q & val_q


def test_a_small_file_still_holds_one_question_out_and_a_single_question_is_refused():
    two = parse_conversations(jsonl(chat_line("hi", "hello"), chat_line("bye", "see you")), "two.jsonl")
    assert len(two.examples("train")) == 1 and len(two.examples("val")) == 1
    with pytest.raises(DataError, match="at least two conversations with different questions"):
        parse_conversations(jsonl(chat_line("hi", "hello"), chat_line("hi", "hey")), "one.jsonl")


@pytest.mark.parametrize("line, sentence", [
    ('{"messages": [{"role": "bot", "content": "x"}]}', "Line 2: message 1's 'role' must be user, assistant or system, got 'bot'."),
    ('{"messages": [{"role": "user", "content": "hi"', "Line 2: not valid JSON"),
    ('{"messages": []}', "Line 2: 'messages' is empty."),
    ('{"messages": "hi"}', "Line 2: 'messages' must be a list of messages, got text."),
    ('{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}', "Line 2: message 1's 'content' is empty."),
    ('{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]}', "Line 2: message 1's 'content' must be text, got a number."),
    ('{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}', "Line 2: message 1 has no 'content'."),
    ('{"messages": [{"role": "user", "content": "hi"}]}', "Line 2: the conversation has no assistant turn"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}',
     "Line 2: the conversation ends with a user turn; it must end with the assistant's answer."),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}', "Line 2: message 2 is a second user turn in a row"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}', "Line 2: message 2 is a system message"),
    ('{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "b"}]}', "Line 2: message 1's 'content' holds a lone surrogate"),
    ('{"instruction": "hi"}', "Line 2: 'output' is missing."),
    ('{"instruction": "hi", "output": ["a"]}', "Line 2: 'output' must be text, got a list."),
    ('{"instruction": "hi", "input": 3, "output": "a"}', "Line 2: 'input' must be text, got a number."),
    ('{"text": "hi"}', "Line 2: expected 'messages' (chat format) or 'instruction' and 'output' (Alpaca); its keys are 'text'."),
    ('[1, 2]', "Line 2: expected a JSON object, got list."),
])
def test_each_bad_line_gets_a_sentence_naming_the_line_and_the_field(line, sentence):
    with pytest.raises(DataError) as err:
        parse_conversations(jsonl(chat_line("hi", "hello"), line, chat_line("bye", "now")), "mine.jsonl")
    assert "1 of the 3 records in mine.jsonl cannot be used" in str(err.value)
    assert sentence in str(err.value), str(err.value)


def test_many_bad_lines_are_counted_and_all_listed_in_the_details():
    lines = many(10) + ['{"messages": 1}'] * 8
    with pytest.raises(DataError) as err:
        parse_conversations(jsonl(*lines), "bad.jsonl")
    assert "8 of the 18 records in bad.jsonl cannot be used (and 5 more)" in str(err.value)
    assert str(err.value).count("Line ") == 3 and err.value.details.count("Line ") == 8
    assert "Line 18:" in err.value.details


def test_a_broken_json_list_names_the_line():
    text = '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]'
    with pytest.raises(DataError, match=r"alpaca.json, line 3: not valid JSON"):
        parse_conversations(text.encode(), "alpaca.json")
    with pytest.raises(DataError, match="neither JSONL"):
        parse_conversations(b"hello", "x.txt")
    with pytest.raises(DataError, match="is empty"):
        parse_conversations(b" \n", "x.jsonl")
    with pytest.raises(DataError, match="not UTF-8 text \\(line 2"):
        parse_conversations(b'{"a": 1}\n\xff\n', "x.jsonl")


def test_special_token_strings_in_content_are_kept_as_text():
    f = parse_conversations(jsonl(chat_line("say <|end|><|assistant|>", "ok <|user|>"), chat_line("b", "c")), "s.jsonl")
    ex = [e for s in ("train", "val") for e in f.examples(s) if "<|end|>" in e.question][0]
    chat = ChatTokenizer(CharTokenizer.from_text("".join(f.coverage())))
    ids, mask = chat.render(list(ex.messages))
    assert sum(chat.is_special(i) for i in ids) == 4
    assert chat.decode([i for i, m in zip(ids, mask) if m]) == "ok <|user|><|end|>"  # typed in content, then the real end


def test_limits_are_checked_before_anything_is_built(tmp_path, monkeypatch):
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as f:
        f.truncate(50 * 2**20 + 1)  # a 50 MB file, sparse: refused from its size alone
    read = []
    monkeypatch.setattr("pathlib.Path.read_bytes", lambda self: read.append(self) or b"")
    with pytest.raises(DataError, match="big.jsonl is 50.0 MB, over the limit of 50 MB"):
        load_conversations(big)
    assert read == []
    monkeypatch.undo()
    million = b'{"messages": []}\n' * 1_000_000  # a million lines: counted, never parsed
    parsed = []
    monkeypatch.setattr("json.loads", lambda s: parsed.append(s))
    with pytest.raises(DataError, match="holds 1,000,000 conversations, over the limit of 200,000"):
        parse_conversations(million, "million.jsonl")
    assert parsed == []
    monkeypatch.undo()
    with pytest.raises(DataError, match="holds more than 10 conversations, over the limit of 10"):
        parse_conversations(("[" + ",".join(['{"instruction": "a", "output": "b"}'] * 11) + "]").encode(), "l.json",
                            max_conversations=10)
    with pytest.raises(DataError, match="could need up to 44 tokens, over the limit of 20"):
        parse_conversations(jsonl(*many(2)), "t.jsonl", max_tokens=20)
    ok = tmp_path / "ok.jsonl"
    ok.write_bytes(jsonl(*many(50)))
    assert len(load_conversations(ok, max_conversations=50)) == 50


def test_check_messages_is_the_one_check_for_prompts_too():
    assert check_messages([{"role": "user", "content": "hi", "extra": 1}], complete=False) == [
        {"role": "user", "content": "hi"}]
    with pytest.raises(DataError, match="must be the user's turn"):
        check_messages([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], complete=False)
