"""The Chat tab: talk to a chat model, make one from any run, and see what fine-tuning changed.

Four parts, top to bottom:
- Chat: a chat model you may see answers token by token and stops at
  <|end|>; the conversation is kept within the model's context (when it is
  full the oldest turns go, and the line under the chat says so).
- Fine-tune: any run you may see (the shipped model, a finished run, an
  imported GPT-2) on a built-in task or your own JSONL/Alpaca file; an
  ordinary run of the run service (the queue, Stop/Resume, the teacher's
  page), with its loss and its held-out accuracy live.
- Base vs chat: one question to the parent run, which continues the text,
  and to the chat model, which answers and stops.
- What the loss trains on: a conversation's tokens coloured by the mask.

`ChatHandlers` are plain functions (testable without a browser); what they
share with the API is `gpt.ui.chat`.
"""

from __future__ import annotations

import threading

import gradio as gr

from ..chat import check_messages, task_from_name
from ..errors import GPTError
from ..jobs import JobManager
from ..presets import FINETUNE_PRESET, LATER_STAGES
from . import chat
from . import frames
from ..jobs import sampling as gen
from .addresses import client_address
from .messages import problem, say
from .page import CHAT_QUEUE, PRIVATE, Page, unchanged
from .pickers import first_choice, pick_run, short_label
from .rl_panel import build_rl_panel

FILE = "file"  # the task choice that means "my uploaded conversations"
TASK_CHOICES = [(name, name) for name in chat.TASK_CHOICES] + [("my file (JSONL or Alpaca)", FILE)]
STAGE = LATER_STAGES[FINETUNE_PRESET]["train"]
INTRO = ("A GPT continues text; a chat model answers and stops. Fine-tuning (SFT) is what turns one into the other: "
         "the same network, trained a few minutes more on conversations, with the loss on the answers only.")


class ChatHandlers:
    def __init__(self, manager: JobManager, models: gen.ModelCache):
        self.m = manager
        self.models = models
        self._stop: dict[str, threading.Event] = {}  # owner -> the Stop button of their answer in progress

    # --- which runs ---------------------------------------------------------------------------------
    def _chosen(self, owner, run) -> str:
        """The chat model asked for; a click that beats the tab's own list asks for the one it will show."""
        return run or first_choice(self.m, owner, chat.chat_runs(self.m.runs.list_runs(owner))) or ""

    def chat_choices(self, owner, current=None):
        return pick_run(self.m, owner, chat.chat_runs(self.m.runs.list_runs(owner)), current, short_label)

    def parent_choices(self, owner, current=None):
        return pick_run(self.m, owner, chat.parent_runs(self.m.runs.list_runs(owner)), current, short_label)

    def latest_finetune(self, owner) -> str | None:
        """The fine-tune the panel watches after a refresh: the person's newest one."""
        mine = [r for r in self.m.runs.list_runs(owner) if r.mine and r.kind == "finetune"] if owner else []
        return max(mine, key=lambda r: r.created).name if mine else None

    # --- chatting -----------------------------------------------------------------------------------
    def _stop_event(self, owner) -> threading.Event:
        event = self._stop[owner or ""] = threading.Event()
        return event

    def send(self, owner, run, message, history, max_new_tokens, temperature, top_k, top_p):
        """Stream (message box, chatbot, history, status). A refusal keeps the typed message and the conversation."""
        stop = self._stop_event(owner)
        history = list(history or [])
        try:
            chat.typed_message(message)
            run = self._chosen(owner, run)
            loaded = chat.open_chat(self.m, self.models, owner, run)
            settings, notes = chat.chat_settings(loaded, self.m.limits.max_new_tokens, max_new_tokens, temperature,
                                                 top_k, top_p)
            asked = history + [{"role": "user", "content": message}]
            stream = chat.answer_stream(loaded, chat.as_messages(asked), settings, stop.is_set)
        except Exception as err:  # noqa: BLE001 - the sentence, and nothing typed is lost
            yield gr.skip(), gr.skip(), gr.skip(), problem(err)
            return
        answer = None
        try:
            with self.m.sampling(run):
                for answer in stream:
                    shown = asked + [{"role": "assistant", "content": answer.text}]
                    yield "", shown, gr.skip(), " ".join(notes + list(answer.notes)) or "Answering..."
        except Exception as err:  # noqa: BLE001
            yield gr.skip(), gr.skip(), gr.skip(), problem(err)
            return
        yield "", *self._settled(asked, answer, notes, stop.is_set())

    @staticmethod
    def _settled(asked: list[dict], answer, notes: list[str], stopped: bool):
        """(chatbot, history, status) once the answer is whole; an empty answer is shown but not kept."""
        if answer.text.strip():
            history = asked + [{"role": "assistant", "content": answer.text}]
        else:
            history = asked[:-1]
        how = ("Stopped." if stopped else "The answer ended with <|end|>." if answer.ended else
               "The answer did not end with <|end|> within the tokens allowed (raise 'Max new tokens', or fine-tune "
               "longer).")
        empty = " The model said nothing, so this turn is not kept." if not answer.text.strip() else ""
        return asked + [{"role": "assistant", "content": answer.text}], history, " ".join(
            notes + list(answer.notes) + [how + empty])

    def stop(self, owner):
        event = self._stop.get(owner or "")
        if event is not None:
            event.set()
        return "Stopped."

    @staticmethod
    def clear():
        return [], [], "", ""

    # --- base vs chat ---------------------------------------------------------------------------------
    def compare(self, owner, run, question, max_new_tokens, temperature, top_k, top_p):
        """Stream (the parent's text, the chat model's answer, status) for the same question."""
        stop = self._stop_event(owner)
        try:
            chat.typed_message(question)
            run = self._chosen(owner, run)
            loaded = chat.open_chat(self.m, self.models, owner, run)
            parent = self.m.runs.summary(run, owner).parent
            if not parent:
                raise GPTError(f"Run {run!r} does not name the run it was fine-tuned from, so there is no base to "
                               "compare with.")
            base = gen.open_run(self.m, self.models, owner, parent, self.m.device)
            settings, notes = chat.chat_settings(loaded, self.m.limits.max_new_tokens, max_new_tokens, temperature,
                                                 top_k, top_p)
            stream = chat.side_by_side(base, loaded, question, settings, stop.is_set)
            with self.m.sampling(run), self.m.sampling(parent):
                for base_text, answer, more in stream:
                    yield base_text, answer.text, " ".join(notes + more) or "Writing..."
        except Exception as err:  # noqa: BLE001
            yield gr.skip(), gr.skip(), problem(err)
            return
        ended = "ended with <|end|>" if answer.ended else "did not end within the tokens allowed"
        yield gr.skip(), gr.skip(), " ".join(notes + more + [
            f"The parent ({parent}) only continues the text; the chat model's answer {ended}."])

    # --- the mask -------------------------------------------------------------------------------------
    def show_mask(self, owner, source, run, history, parent, task, upload):
        """The mask over a conversation: the chat above (with its model's tokenizer), or an example of the task
        chosen for fine-tuning (with the tokenizer the fine-tune of the chosen parent will have)."""
        try:
            if source == "chat":
                if not history:
                    raise GPTError("Chat with the model first, or show an example of the fine-tuning task.")
                loaded = chat.open_chat(self.m, self.models, owner, run)
                return chat.mask_html(loaded.tokenizer, check_messages(list(history), complete=True))
            data = chat.upload_task(upload, self.m.limits) if task == FILE else task_from_name(task or "mix")
            tokenizer = chat.grown_for(self.m, owner, parent, data)
            return chat.mask_html(tokenizer, chat.task_example(data))
        except Exception as err:  # noqa: BLE001
            return problem(err, toast=False)

    # --- fine-tuning ----------------------------------------------------------------------------------
    @staticmethod
    def task_inputs(task):
        # "hidden", not False: the file box is in the page from the first paint, unseen, so showing it is CSS, not
        # a mount. (Tried against a CI flake, the box shown without its file input; that flake stayed.)
        return gr.update(visible=True if task == FILE else "hidden")

    def start_finetune(self, owner, parent, task, upload, max_seconds, max_iters, lr, batch_size,
                       request: gr.Request = None):
        """Start the fine-tune as an ordinary run; returns (message, the run the panel watches)."""
        try:
            corpus = chat.conversation_corpus(upload, self.m.limits) if task == FILE else None
            req = chat.finetune_request(parent, None if task == FILE else task, max_seconds, max_iters, lr,
                                        batch_size)
            job = self.m.start(owner, corpus, req, address=client_address(request))
        except Exception as err:  # noqa: BLE001
            return problem(err), gr.skip()
        return say(self.m.runner.describe_start(job)), job.name

    def stop_finetune(self, owner, name):
        try:
            return say(self.m.stop(owner, name or ""))
        except Exception as err:  # noqa: BLE001
            return problem(err)

    def resume_finetune(self, owner, name):
        try:
            return say(self.m.runner.describe_start(self.m.resume(owner, name or ""), resumed=True))
        except Exception as err:  # noqa: BLE001
            return problem(err)

    def poll(self, owner, name, last, current_chat):
        """Timer tick: the watched fine-tune's progress, curves, growth note and latest graded answer, each sent
        only when it changed; once it finishes, the chat picker offers it, chosen."""
        status = self.m.runs.status_if_visible(name, owner)
        sig = [name, status and status.state, status and status.step, status and len(status.metrics),
               status and status.message, status and status.queue_position]
        same = unchanged(sig, last, 8)
        if same:
            return same
        if status is None:
            return ('<div class="run-progress idle">No fine-tune yet: choose a run and a task, then press '
                    "<b>Fine-tune</b>.</div>", None, None, "", "", gr.update(interactive=False),
                    gr.update(interactive=False), gr.skip(), sig)
        finished = status.state == "finished" and (last is None or last[1] != "finished")
        picker = self.chat_choices(owner, name if finished else current_chat) if (
            last is None or last[1] != sig[1]) else gr.skip()
        return (frames.progress_html(status), frames.drawn(frames.loss_frame(status.metrics, status.history)),
                frames.drawn(chat.accuracy_frame(status.metrics)), chat.growth_line(status), status.latest_sample,
                gr.update(interactive=status.mine and status.active),
                gr.update(interactive=status.mine and not status.active and status.state != "running elsewhere"),
                picker, sig)


def _chat_area(lim) -> dict:
    with gr.Row():
        c = dict(run=gr.Dropdown(label="Chat model (a run fine-tuned on conversations)", scale=5, elem_id="chat-run"))
        c["refresh"] = gr.Button("↻", scale=0, min_width=40, elem_id="chat-refresh")
    c["chatbot"] = gr.Chatbot(height=340, render_markdown=False, elem_id="chatbot", label="Conversation",
                              placeholder="Ask something the model was fine-tuned on: What is 47 + 38?")
    with gr.Row():
        c["message"] = gr.Textbox(placeholder="Your message, then Enter", show_label=False, scale=5, max_lines=3,
                                  elem_id="chat-message")  # a pasted page scrolls inside the box
        c["send"] = gr.Button("Send", variant="primary", scale=1, min_width=70, elem_id="chat-send")
        c["stop"] = gr.Button("■", variant="stop", scale=0, min_width=40, elem_id="chat-stop")
        c["clear"] = gr.Button("Clear", scale=0, min_width=60, elem_id="chat-clear")
    c["status"] = gr.Markdown(elem_id="chat-status")
    with gr.Accordion("Sampling", open=False, elem_id="chat-sampling"):
        with gr.Row():
            c["temperature"] = gr.Slider(0, 2, 0.0, step=0.05, label="Temperature (0 = greedy)",
                                         elem_id="chat-temperature")
            c["top_k"] = gr.Slider(0, 200, 0, step=1, label="Top-k (0 = off)", elem_id="chat-top-k")
            c["top_p"] = gr.Slider(0.05, 1.0, 1.0, step=0.05, label="Top-p (1 = off)", elem_id="chat-top-p")
            c["max_new"] = gr.Slider(1, min(500, lim.max_new_tokens), min(120, lim.max_new_tokens), step=1,
                                     label="Max new tokens", elem_id="chat-max-new")
    return c


def _finetune_area(lim) -> dict:
    gr.Markdown("### Fine-tune a run into a chat model")
    with gr.Row():
        c = dict(parent=gr.Dropdown(label="Start from (any run you may see)", scale=5, elem_id="ft-parent"))
        c["refresh"] = gr.Button("↻", scale=0, min_width=40, elem_id="ft-refresh")
    with gr.Row():
        c["task"] = gr.Dropdown(TASK_CHOICES, value="mix", label="Conversations", elem_id="ft-task")
        c["max_seconds"] = gr.Slider(0, 1800, STAGE["max_seconds"], step=10, label="Max seconds (0 = none)",
                                     elem_id="ft-seconds")
    c["upload"] = gr.File(label="Your conversations: JSONL ({\"messages\": [...]} per line) or Alpaca JSON",
                          file_types=[".jsonl", ".json"], type="filepath", visible="hidden", elem_id="ft-upload")
    with gr.Accordion("More settings", open=False, elem_id="ft-settings"):
        with gr.Row():
            c["max_iters"] = gr.Slider(10, lim.max_iters, min(STAGE["max_iters"], lim.max_iters), step=10,
                                       label="Max steps", elem_id="ft-steps")
            c["lr"] = gr.Number(STAGE["lr"], label="Learning rate", minimum=1e-6, maximum=1.0, elem_id="ft-lr")
            c["batch_size"] = gr.Slider(1, lim.max_batch_size, STAGE["batch_size"], step=1, label="Batch size",
                                        elem_id="ft-batch")
    with gr.Row():
        c["start"] = gr.Button("▶ Fine-tune", variant="primary", scale=3, elem_id="ft-start")
        c["stop"] = gr.Button("■ Stop", variant="stop", interactive=False, scale=1, elem_id="ft-stop")
        c["resume"] = gr.Button("↻ Resume", interactive=False, scale=1, elem_id="ft-resume")
    c["msg"] = gr.Markdown(elem_id="ft-msg")
    c["progress"] = gr.HTML(elem_id="ft-progress")
    c["growth"] = gr.Markdown(elem_id="ft-growth")
    c["loss_plot"] = gr.LinePlot(None, x="step", y="loss", color="series", color_map=frames.LOSS_COLOURS,
                                 height=220, title="Loss on the answers (lower is better)", elem_id="ft-loss")
    c["accuracy_plot"] = gr.LinePlot(None, x="step", y="percent", color="series", height=220, y_lim=[0, 100],
                                     title="Held-out questions, greedy (%)", elem_id="ft-accuracy")
    c["sample"] = gr.Textbox(label="A held-out question at the latest evaluation", lines=3, interactive=False,
                             elem_id="ft-sample")
    return c


def _compare_area() -> dict:
    gr.Markdown("### Base vs chat\nThe same question to the run the chat model was made from, and to the chat "
                "model: one continues the text, the other answers and stops.")
    with gr.Row():
        c = dict(question=gr.Textbox(value="What is 47 + 38?", label="Question", scale=5, elem_id="vs-question"))
        c["ask"] = gr.Button("Ask both", variant="primary", scale=1, elem_id="vs-ask")
    with gr.Row():
        c["base"] = gr.Textbox(label="The parent run (a GPT: it continues the text)", lines=5, interactive=False,
                               elem_id="vs-base")
        c["chat"] = gr.Textbox(label="The chat model (it answers, then stops at <|end|>)", lines=5,
                               interactive=False, elem_id="vs-chat")
    c["status"] = gr.Markdown(elem_id="vs-status")
    return c


def _mask_area() -> dict:
    with gr.Accordion("What the loss trains on: the mask", open=False, elem_id="mask-area"):
        gr.Markdown("A conversation as the fine-tune sees it. Green tokens carry the loss; grey ones are only read.")
        with gr.Row():
            c = dict(source=gr.Radio([("An example of the fine-tuning task", "task"), ("The chat above", "chat")],
                                     value="task", label="Conversation", scale=3, elem_id="mask-source"))
            c["show"] = gr.Button("Show the mask", scale=1, elem_id="mask-show")
        c["html"] = gr.HTML(elem_id="mask-view")
    return c


def build_chat_tab(page: Page) -> gr.Tab:
    h, who, lim = ChatHandlers(page.manager, page.models), page.who, page.manager.limits
    with gr.Tab("3 · Chat", id="chat", elem_id="chat-tab") as tab:
        gr.Markdown(INTRO, elem_id="chat-intro")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                c = _chat_area(lim)
            with gr.Column(scale=2, min_width=380):
                f = _finetune_area(lim)
        v = _compare_area()
        k = _mask_area()
        history, watched, last = gr.State([]), gr.State(None), gr.State(None)
        with gr.Accordion("Reward the answers (RL)", open=False, elem_id="rl-area"):
            build_rl_panel(page)
    _wire_chat(page, h, c, history)
    _wire_finetune(page, h, f, c["run"], watched, last)
    sampling = [c["max_new"], c["temperature"], c["top_k"], c["top_p"]]
    v["ask"].click(h.compare, [who, c["run"], v["question"], *sampling], [v["base"], v["chat"], v["status"]],
                   **CHAT_QUEUE, **PRIVATE)
    k["show"].click(h.show_mask, [who, k["source"], c["run"], history, f["parent"], f["task"], f["upload"]],
                    k["html"], **PRIVATE)
    return tab


def _wire_chat(page: Page, h: ChatHandlers, c: dict, history) -> None:
    who = page.who
    show_runs = dict(fn=h.chat_choices, inputs=[who, c["run"]], outputs=c["run"], **PRIVATE)
    page.on_load.append(show_runs)
    c["refresh"].click(**show_runs)
    inputs = [who, c["run"], c["message"], history, c["max_new"], c["temperature"], c["top_k"], c["top_p"]]
    outputs = [c["message"], c["chatbot"], history, c["status"]]
    send = c["send"].click(h.send, inputs, outputs, **CHAT_QUEUE, **PRIVATE)
    submit = c["message"].submit(h.send, inputs, outputs, **CHAT_QUEUE, **PRIVATE)
    c["stop"].click(h.stop, who, c["status"], cancels=[send, submit], **PRIVATE)
    c["clear"].click(h.clear, None, [c["chatbot"], history, c["status"], c["message"]], **PRIVATE)
    c["run"].input(h.clear, None, [c["chatbot"], history, c["status"], c["message"]], **PRIVATE)  # a new model


def _wire_finetune(page: Page, h: ChatHandlers, f: dict, chat_run, watched, last) -> None:
    who = page.who
    show_parents = dict(fn=h.parent_choices, inputs=[who, f["parent"]], outputs=f["parent"], **PRIVATE)
    page.on_load += [show_parents, dict(fn=h.latest_finetune, inputs=who, outputs=watched, **PRIVATE)]
    f["refresh"].click(**show_parents)
    f["task"].change(h.task_inputs, f["task"], f["upload"], **PRIVATE)
    start_in = [who, f["parent"], f["task"], f["upload"], f["max_seconds"], f["max_iters"], f["lr"], f["batch_size"]]
    page.wake_after(f["start"].click(h.start_finetune, start_in, [f["msg"], watched], **PRIVATE))
    f["stop"].click(h.stop_finetune, [who, watched], f["msg"], **PRIVATE)
    page.wake_after(f["resume"].click(h.resume_finetune, [who, watched], f["msg"], **PRIVATE))
    outputs = [f["progress"], f["loss_plot"], f["accuracy_plot"], f["growth"], f["sample"], f["stop"], f["resume"],
               chat_run, last]
    if page.timer is not None:
        page.every_tick(h.poll, [who, watched, last, chat_run], outputs)
