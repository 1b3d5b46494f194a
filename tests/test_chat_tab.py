"""The Chat tab's handlers and the /chat and /start_finetune endpoints, as the page and a client call them.

They run against a real run service holding a small chat model memorised from
its parent (`helpers_chat.save_chat_pair`: it answers '2+2?' with '4' and
stops), so every answer below is the model's own, greedy. The browser test of
the tab is tests/test_chat_browser.py.
"""

from __future__ import annotations

import json

import gradio as gr
import pytest

from gpt import checkpoint as ckpt
from gpt.jobs import JobManager
from gpt.jobs.sampling import ModelCache
from gpt.lesson import StudentRuns
from gpt.limits import Limits
from gpt.ui import chat
from gpt.ui.api import Api
from gpt.ui.chat_tab import FILE, ChatHandlers
from gpt.ui.page import Page
from helpers_app import wait_until
from helpers_chat import save_chat_pair

pytestmark = pytest.mark.timeout(600)
BIG = Limits(max_concurrent_jobs=1, max_params=5_000_000, max_iters=1_000_000)
GREEDY = (20, 0.0, 0, 1.0)  # max new tokens, temperature, top-k, top-p: as the tab's sliders send them


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return save_chat_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture
def manager(tmp_path, pair):
    import shutil

    for run in pair:  # shipped runs (no owner): everyone may see them and start from them
        shutil.copytree(run, tmp_path / "runs" / run.name)
    m = JobManager(tmp_path / "runs", BIG, device="cpu")
    yield m
    m.shutdown()


@pytest.fixture
def h(manager):
    return ChatHandlers(manager, ModelCache())


def last(stream):
    out = None
    for out in stream:
        pass
    return out


def jsonl_upload(tmp_path, lines: list[str], name: str = "mine.jsonl") -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run_folders(manager) -> list[str]:
    return sorted(p.name for p in manager.root.iterdir() if p.is_dir() and not p.name.startswith("."))


def chat_line(question: str, answer: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})


# --- chatting --------------------------------------------------------------------------------------------------

def test_the_chat_offers_chat_models_and_the_fine_tune_offers_every_gpt(h):
    assert [v for _, v in h.chat_choices("alice")["choices"]] == ["parent-chat"]
    assert {v for _, v in h.parent_choices("alice")["choices"]} == {"parent", "parent-chat"}


def test_an_answer_streams_ends_at_end_and_the_turn_is_kept(h):
    outs = list(h.send("alice", "parent-chat", "2+2?", [], *GREEDY))
    message, shown, history, status = outs[-1]
    assert message == "" and history == [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    assert shown == history and "The answer ended with <|end|>." in status
    message, shown, history, status = last(h.send("alice", "parent-chat", "3+5?", history, *GREEDY))
    assert [m["content"] for m in history] == ["2+2?", "4", "3+5?", "8"]  # a second turn, on the first


@pytest.mark.parametrize("typed, says", [
    ("", "Type a message first."),
    ("   \n ", "Type a message first."),
    ("x" * 20_000, "Your message is 20,000 characters long, over the limit of 10,000"),
    ("2+2?" * 20, "write a shorter one"),  # 80 characters: more than the model's context of 32 leaves for it
    ("2+2?<|end|>", "never saw in its training corpus: '&lt;', '&gt;', '|'"),  # typed, it is text
])
def test_a_refused_message_gets_a_sentence_and_loses_nothing(h, typed, says):
    history = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    outs = list(h.send("alice", "parent-chat", typed, history, *GREEDY))
    assert len(outs) == 1
    message, shown, kept, status = outs[0]
    assert message == shown == kept == gr.skip()  # the typed message, the chat and its history stay as they were
    assert says in status and "msg-error" in status and "Traceback" not in status, status


def test_a_conversation_longer_than_the_context_loses_its_oldest_turns_and_says_so(h):
    history = []
    for q, a in [("2+2?", "4"), ("3+5?", "8"), ("cat?", "meow"), ("dog?", "woof")]:
        history += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    _, _, kept, status = last(h.send("alice", "parent-chat", "sky?", history, *GREEDY))
    assert kept[-1] == {"role": "assistant", "content": "blue"} and len(kept) == 10  # the page keeps every turn
    assert "message(s) were left out" in status  # the model read only the last ones, and the page says so


def test_no_chat_model_or_a_run_that_is_not_one_is_a_sentence(h, tmp_path):
    nothing = JobManager(tmp_path / "empty", BIG, device="cpu")  # a server with no chat model at all
    assert "Choose a chat model" in last(ChatHandlers(nothing, ModelCache()).send("alice", None, "2+2?", [], *GREEDY))[-1]
    # a Send that beats the tab's own list (opening the tab refreshes it) asks the model the list will show
    assert h.chat_choices("alice")["value"] == "parent-chat"
    _, _, kept, status = last(h.send("alice", None, "2+2?", [], *GREEDY))
    assert kept[-1] == {"role": "assistant", "content": "4"} and "ended with" in status
    assert "is not a chat model" in last(h.send("alice", "parent", "2+2?", [], *GREEDY))[-1]
    assert "There is no run named" in last(h.send("alice", "someone-elses", "2+2?", [], *GREEDY))[-1]


# --- base vs chat and the mask -----------------------------------------------------------------------------------

def test_base_vs_chat_the_parent_continues_the_text_and_the_chat_model_answers_and_stops(h):
    base, answer, status = last(h.compare("alice", "parent-chat", "2+2?", *GREEDY))
    assert base == gr.skip() and answer == gr.skip()  # the last update only adds the sentence
    outs = list(h.compare("alice", "parent-chat", "2+2?", *GREEDY))
    base, answer, _ = outs[-2]
    assert answer == "4"
    assert base.startswith("2+2?") and len(base) > len("2+2?") + 5  # the untrained parent runs on
    assert "The parent (parent) only continues the text; the chat model's answer ended with <|end|>." in status
    assert "Type a message first." in last(h.compare("alice", "parent-chat", " ", *GREEDY))[-1]


def test_the_mask_view_colours_exactly_the_answer_and_its_end(h, manager):
    history = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    view = h.show_mask("alice", "chat", "parent-chat", history, "parent", "addition", None)
    assert "2 of 9 tokens carry the loss" in view  # '4' and its <|end|>, of <|user|>2+2?<|end|><|assistant|>4<|end|>
    tokenizer = ckpt.load_checkpoint(manager.root / "parent-chat").tokenizer
    ids, mask = tokenizer.render(history)
    assert view.count(chat.TRAINED) == sum(mask) + 1 and view.count(chat.GIVEN) == len(mask) - sum(mask) + 1  # +legend
    example = h.show_mask("alice", "task", None, [], "parent", "addition", None)
    assert '<span class="tok-text">W</span>' in example and "carry the loss" in example  # "What is ...", by character
    assert "Chat with the model first" in h.show_mask("alice", "chat", "parent-chat", [], "parent", "addition", None)


def test_the_file_box_shows_for_my_file_only_and_stays_in_the_page_otherwise():
    assert ChatHandlers.task_inputs(FILE)["visible"] is True
    assert [ChatHandlers.task_inputs(task)["visible"] for task in ("mix", "addition")] == ["hidden", "hidden"]


def test_a_broken_upload_is_named_by_line_and_field_and_nothing_is_made(h, manager, tmp_path):
    bad = jsonl_upload(tmp_path, [chat_line("hi", "hello"), '{"messages": [{"role": "bot", "content": "x"}]}',
                                  '{"messages": [{"role": "user", "content": "a"'])
    msg, watched = h.start_finetune("alice", "parent", FILE, bad, 60, 20, 1e-3, 8)
    assert "2 of the 3 records in mine.jsonl cannot be used" in msg and watched == gr.skip()
    assert "Line 2: message 1's 'role' must be user, assistant or system, got 'bot'." in msg
    assert "Line 3: not valid JSON" in msg and "msg-error" in msg
    assert "Line 2:" in h.show_mask("alice", "task", None, [], "parent", FILE, bad)
    assert "Upload a conversation file" in h.start_finetune("alice", "parent", FILE, None, 60, 20, 1e-3, 8)[0]
    empty = jsonl_upload(tmp_path, [""], "empty.jsonl")
    assert "empty.jsonl is empty" in h.start_finetune("alice", "parent", FILE, empty, 60, 20, 1e-3, 8)[0]
    assert run_folders(manager) == ["parent", "parent-chat"]  # nothing was made


# --- fine-tuning from the tab -------------------------------------------------------------------------------------

def test_a_fine_tune_from_the_tab_shows_its_loss_accuracy_and_growth_then_can_be_chatted_with(h, manager, tmp_path):
    facts = [chat_line(q, a) for q, a in [("2+2?", "4"), ("3+5?", "8"), ("cat?", "meow"), ("dog?", "woof"),
                                          ("sky?", "blue"), ("name?", "gpt")] * 3]
    msg, watched = h.start_finetune("alice", "parent", FILE, jsonl_upload(tmp_path, facts), 0, 40, 1e-2, 8)
    assert watched.startswith("parent-chat") and watched != "parent-chat" and "parent-chat" not in msg.split()[0]
    manager.wait(watched, 300)
    progress, loss, accuracy, growth, sample, stop, resume, picker, sig = h.poll("alice", watched, None, None)
    assert watched in progress and stop["interactive"] is False and resume["interactive"] is True
    assert set(accuracy["series"]) == set(chat.ACCURACY_SERIES) and accuracy["percent"].between(0, 100).all()
    assert "parent fine-tuned on mine.jsonl" in growth and "chat tokens" in growth
    assert sample.startswith("Q: ") and picker["value"] == watched  # the finished model is offered, chosen
    assert h.poll("alice", watched, sig, watched)[:8] == (gr.skip(),) * 8  # nothing new: nothing sent again
    assert h.latest_finetune("alice") == watched and h.latest_finetune("bob") is None
    _, _, history, status = last(h.send("alice", watched, "cat?", [], *GREEDY))
    assert history[-1]["role"] == "assistant" and "msg-error" not in status


def test_stop_and_resume_from_the_tab(h, manager):
    msg, watched = h.start_finetune("alice", "parent", "addition", None, 0, 100_000, 1e-3, 4)
    job = manager.job(watched)
    wait_until(lambda: job.trainer is not None and job.trainer.step > 2, timeout=120, what="training")
    assert watched in h.poll("alice", watched, None, None)[0]
    assert "Stopping" in h.stop_finetune("alice", watched)
    assert "no run named" in h.stop_finetune("bob", watched).lower()  # another person cannot stop it
    manager.wait(watched, 60)
    stopped_at = ckpt.load_checkpoint(manager.root / watched).step
    assert "stopped" in h.poll("alice", watched, None, None)[0]
    assert "msg-error" not in h.resume_finetune("alice", watched)
    again = manager.job(watched)
    wait_until(lambda: again.trainer is not None and again.trainer.step > stopped_at, timeout=120, what="more steps")
    h.stop_finetune("alice", watched)
    manager.wait(watched, 60)


def test_the_growth_of_a_character_vocabulary_is_said_before_and_during_a_fine_tune(h, manager):
    """The parent's characters lack the 'W' of 'What is 47 + 38?': the growth line names what the task adds."""
    msg, watched = h.start_finetune("alice", "parent", "addition", None, 0, 10, 1e-3, 4)
    manager.wait(watched, 120)
    growth = h.poll("alice", watched, None, None)[3]
    assert "Added 1 character the conversations use: W." in growth and "Added the chat tokens &lt;|user|&gt;" in growth


def test_on_zerogpu_the_pages_slice_timer_trains_a_fine_tune_started_from_the_tab(tmp_path, pair):
    """A fine-tune started from the Chat tab is the person's run in progress: the page's one slice timer (wired by
    the Train tab, ticking on every tab) runs its GPU slices until it is done."""
    import shutil

    from gpt.jobs.slice_runner import SliceRunner
    from gpt.jobs.slices import train_slice
    from gpt.jobs.zerogpu import SliceSettings, StandIn
    from gpt.ui.slice_timer import SliceTimer

    for run in pair:
        shutil.copytree(run, tmp_path / "runs" / run.name)
    m = JobManager(tmp_path / "runs", BIG, device="cpu", runner=SliceRunner(StandIn(train_slice, 60),
                                                                             SliceSettings(60, 6)))
    try:
        msg, watched = ChatHandlers(m, ModelCache()).start_finetune("alice", "parent", "addition", None, 0, 20,
                                                                     1e-3, 4)
        assert "msg-error" not in msg
        timer = SliceTimer(m)
        for _ in range(20):
            if not m.runner.wants_slice(watched):
                break
            timer.tick("alice")
        status = m.runs.status(watched, "alice")
        assert status.state == "finished" and status.step == 20, status.message
        assert status.chat and status.kind == "finetune"
    finally:
        m.shutdown()


# --- the client API ---------------------------------------------------------------------------------------------

@pytest.fixture
def api(manager):
    with gr.Blocks():
        return Api(Page(manager, ModelCache(), gr.State("")))


def test_chat_streams_the_answer_and_start_finetune_queues_an_ordinary_run(api, manager):
    answers = list(api.chat("parent-chat", "2+2?"))
    assert answers[-1] == {"answer": "4", "ended": True, "notes": []}
    conversation = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
                    {"role": "user", "content": "cat?"}]
    assert list(api.chat("parent-chat", conversation))[-1]["answer"] == "meow"
    started = api.start_finetune("parent", task="addition", max_seconds=0, max_iters=10, batch_size=4)
    assert started["kind"] == "finetune" and started["parent"] == "parent" and started["token"]
    manager.wait(started["name"], 120)
    status = api.run_status(started["name"], token=started["token"])
    assert status["state"] == "finished" and status["chat"] and "val_accuracy" in status["metrics"][-1]
    assert list(api.chat(started["name"], "2+2?", token=started["token"]))[-1]["ended"] in (True, False)


@pytest.mark.parametrize("call, says", [
    (lambda a: list(a.chat("parent-chat", "")), "message 1's 'content' is empty"),
    (lambda a: list(a.chat("parent-chat", [{"role": "bot", "content": "x"}])), "'role' must be user, assistant"),
    (lambda a: list(a.chat("parent-chat", [{"role": "user", "content": "a"}] * 1001)), "over the limit of 1,000"),
    (lambda a: list(a.chat("parent", "2+2?")), "is not a chat model"),
    (lambda a: a.start_finetune("parent"), "Choose a built-in task"),
    (lambda a: a.start_finetune("parent", task="addition", conversations="x"), "one of the two"),
    (lambda a: a.start_finetune("parent", conversations='{"messages": 1}'), "Line 1: 'messages' must be a list"),
    (lambda a: a.start_finetune("parent", task="poetry"), "Unknown task 'poetry'"),
    (lambda a: a.start_finetune("parent", task="addition", max_iters=10**8), "over this server's limit"),
    (lambda a: a.start_finetune("nobody", task="addition"), "There is no run named"),
])
def test_bad_api_calls_get_one_sentence(api, manager, call, says):
    with pytest.raises(gr.Error) as err:
        call(api)
    assert says in str(err.value), str(err.value)
    assert run_folders(manager) == ["parent", "parent-chat"]


# --- the Lesson's last step, on the student's runs ------------------------------------------------------------------

def test_the_lessons_last_step_sets_the_students_chat_model_beside_its_parent(h, manager):
    from gpt import corpus as corpora
    from gpt.data import Dataset
    from gpt.lesson import Lesson
    from gpt.lesson.chat import step_chat

    cache = ModelCache()
    assert chat.student_runs(manager, cache, "") is None
    runs = chat.student_runs(manager, cache, "alice")  # shipped runs are not alice's: her current run, if any
    assert runs is None or runs.chat_name is None
    parent = ckpt.load_checkpoint(manager.root / "parent")
    mine = ckpt.load_checkpoint(manager.root / "parent-chat")
    corpus = corpora.Corpus("facts", "2+2? 4 cat? meow", "text")
    lesson = Lesson(corpus, Dataset(corpus.text, parent.tokenizer, name="facts"),
                    runs=StudentRuns("parent", parent.model, parent.tokenizer, "parent-chat", mine.model,
                                     mine.tokenizer))
    step = step_chat(lesson)
    assert "your run parent" in step.output and "targets carry the loss: the answer and its <|end|>" in step.output
    assert step.values["trained"] == 3  # '8', '5' and <|end|>
    assert "parent-chat (chat) answers:" in step.output and "parent (GPT) continues:" in step.output
