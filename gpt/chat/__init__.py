"""From a GPT to a chat model: the chat format, conversation data, SFT batches, grading.

Core layer: torch and core modules only (never gradio, the run service or the UI).

    tokenizer.py      ChatTokenizer: <|user|> <|assistant|> <|end|> <|system|> after any text vocabulary;
                      render(messages) -> (ids, mask), render_prompt(messages) -> ids
    conversation.py   what a conversation is (roles, order, content), checked once; Example
    grow.py           chat_model(model, tokenizer, data) -> Grown(model, tokenizer, note)
    tasks.py          built-in tasks (addition, addition3, count, reverse, identity, mix), split and graded
    shakespeare.py    the shakespeare task, from the corpus
    files.py          load_conversations(path, ...): JSONL chat format or Alpaca, with limits
    batches.py        ChatBatches(task, tokenizer, block_size).get_batch(...): packed rows, y = -1 off the mask
    evaluate.py       ask(...) -> Answer, evaluate(...) -> Score

A fine-tune from a saved run, in order:

    run = load_checkpoint(path)
    data = task_from_name("addition")              # or load_conversations("mine.jsonl")
    grown = chat_model(run.model, run.tokenizer, data)
    batches = ChatBatches(data, grown.tokenizer, grown.model.config.block_size)
    ... train grown.model on batches.get_batch ...
    evaluate(grown.model, grown.tokenizer, data, n=100)
"""

from .batches import ChatBatches
from .conversation import Example, check_messages
from .evaluate import Answer, Score, ask, evaluate
from .files import ConversationFile, load_conversations, parse_conversations
from .grow import Grown, chat_model
from .task import Task
from .tasks import TASKS, task_from_name
from .tokenizer import ASSISTANT, END, SPECIALS, SYSTEM, USER, ChatTokenizer

__all__ = ["ChatTokenizer", "SPECIALS", "USER", "ASSISTANT", "END", "SYSTEM", "Example", "check_messages",
           "Grown", "chat_model", "Task", "TASKS", "task_from_name", "ConversationFile", "load_conversations",
           "parse_conversations", "ChatBatches", "Answer", "Score", "ask", "evaluate"]
