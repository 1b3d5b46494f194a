"""`python -m gpt.chat`: fine-tune any run into a chat model, measure it, and talk to it, from a terminal.

    python -m gpt.chat finetune --from checkpoints/shakespeare-char --task mix --max-seconds 300 --out runs/chat
    python -m gpt.chat rl --from runs/chat --task addition --samples 8 --max-seconds 300 --out runs/chat-rl
    python -m gpt.chat eval runs/chat --task addition --n 200 [--json]
    python -m gpt.chat ask runs/chat "What is 47 + 38?"
    python -m gpt.chat ask runs/chat                     # a conversation in the terminal

TASK is a built-in task (addition, addition3, count, reverse, identity,
shakespeare, mix, or mix:addition=4,count=1) or a conversation file (JSONL
chat format or Alpaca). `finetune` is the one trainer (`gpt.train.Trainer`)
with the `Finetune` objective, from the parent made into a chat model as
step 0 (`gpt.chat.finetune`), so the run folder resumes, samples and exports
like any other. `rl` is the same trainer with the `Reinforce` objective
(`gpt.chat.rl`: k sampled answers per question, graded by the task, right
ones made likelier), from a copy of a chat run as step 0. Exit codes: 0, 1
(a run that failed), 2 (a setting, a file or a run refused, as one `error:`
line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .. import checkpoint as ckpt
from ..device import configure_cpu_threads, detect_device
from ..engine import SamplingSettings
from ..errors import ConfigError, DataError, GPTError
from ..limits import Limits
from ..validate import whole
from .evaluate import ask_stream, evaluate
from .files import load_conversations
from .finetune import finetune_configs, finetune_objective, write_step_zero
from .grow import grown_tokenizer
from . import rl
from .task import Task
from .tasks import TASKS, task_from_name
from .tokenizer import ChatTokenizer

MAX_EVAL_QUESTIONS = 10_000
SHOWN_WRONG = 5  # wrong answers printed after a plain eval


def load_task(name: str, limits: Limits) -> Task:
    """A built-in task by name, or the conversation file at that path (held to the upload limit)."""
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"--task must name a task ({', '.join(TASKS)}) or a conversation file.")
    path = Path(name)
    if path.is_file():
        return load_conversations(path, max_bytes=limits.max_upload_bytes)
    if path.suffix.lower() in (".jsonl", ".json") or os.sep in name:
        raise DataError(f"No conversation file at {name[:200]}; give a JSONL or Alpaca file that is there, "
                        f"or a built-in task ({', '.join(TASKS)}).")
    return task_from_name(name)


def load_chat_run(path: str, device: str) -> ckpt.Checkpoint:
    """A run folder whose tokenizer has the chat tokens, or a sentence saying how to make one."""
    run = ckpt.load_checkpoint(path, device=device, limits=Limits.from_env())
    if not isinstance(run.tokenizer, ChatTokenizer):
        raise ConfigError(f"{Path(path).name} is not a chat model (its tokenizer has no chat tokens), so it cannot "
                          f"answer; make one first: python -m gpt.chat finetune --from {path} --task mix --out DIR.")
    return run


def _device(requested: str | None) -> str:
    device = detect_device(requested or "auto")
    if device == "cpu":
        configure_cpu_threads()
    return device


def _new_run_folder(args: argparse.Namespace, suffix: str) -> Path:
    """--out, or checkpoints/<parent>-<suffix>: a folder that holds no run yet."""
    out = Path(args.out or f"checkpoints/{Path(args.parent).name}-{suffix}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; give a run folder.")
    if (out / ckpt.WEIGHTS).exists():
        raise ConfigError(f"--out {out} already holds a run; choose another folder.")
    return out


def _overrides(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in ("lr", "batch_size", "max_iters", "max_seconds", "seed")}


def _task_meta(args: argparse.Namespace, data: Task) -> dict:
    """What every checkpoint of a run made from a parent records about where it comes from."""
    builtin = data.name in TASKS or data.name.startswith("mix")
    return {"corpus": data.name, "data_source": "task" if builtin else "conversations",
            "parent": Path(args.parent).name, "task": data.name}


def _train(model_cfg, train_cfg, objective, out: Path, meta: dict, on_eval):
    """The one trainer, resuming from the step 0 in `out`, with a progress bar; None (and the error) if it failed."""
    from tqdm import tqdm

    from ..train import Trainer

    bar = tqdm(total=train_cfg.max_iters, unit="step", dynamic_ncols=True)

    def on_step(p):
        bar.n = p["step"]
        bar.set_postfix(loss=f"{p['loss']:.3f}" if p["loss"] is not None else "-", refresh=p["step"] % 10 == 0)

    trainer = Trainer(model_cfg, train_cfg, objective, out, resume=True, on_eval=lambda r: tqdm.write(on_eval(r)),
                      on_step=on_step, meta=meta)
    state = trainer.run()
    bar.close()
    if state == "failed":
        print(f"error: {trainer.error}", file=sys.stderr)
        return None
    return trainer


# --- finetune ------------------------------------------------------------------------------------


def _finetune_setup(args: argparse.Namespace, limits: Limits):
    """Everything checked before a weight is written: the parent, the data, the configs, the limits, the fit."""
    out = _new_run_folder(args, "chat")
    device = _device(args.device)
    data = load_task(args.task, limits)
    parent = ckpt.load_checkpoint(args.parent, device="cpu", limits=limits)
    chat, _ = grown_tokenizer(parent.tokenizer, data)
    model_cfg, train_cfg = finetune_configs(parent.model_config, chat.vocab_size, _overrides(args), device)
    limits.check_run(model_cfg, train_cfg)
    finetune_objective(data, chat, model_cfg.block_size)  # some conversation fits the context, or a sentence now
    return out, data, parent, model_cfg, train_cfg


def finetune(args: argparse.Namespace) -> int:
    limits = Limits.from_env()
    out, data, parent, model_cfg, train_cfg = _finetune_setup(args, limits)
    meta = _task_meta(args, data)
    note = write_step_zero(out, parent, data, train_cfg, meta, limits)
    print(f"{Path(args.parent).name} -> chat model on {data.name}. {note}")
    saved = ckpt.load_checkpoint(out)
    objective = finetune_objective(data, saved.tokenizer, model_cfg.block_size)
    if objective.batches.note:
        print(objective.batches.note)
    trainer = _train(model_cfg, train_cfg, objective, out, {**meta, "grown": note}, lambda r: (
        f"step {r['step']:5d} | train {r['train_loss']:.4f} | val {r['val_loss']:.4f} | held-out "
        f"accuracy {r['val_accuracy']:.0%} | ended {r['val_ended']:.0%} | {r['elapsed_s']:.1f}s"))
    if trainer is None:
        return 1
    last = trainer.metrics[-1]
    print(f"done: step {trainer.step}, held-out accuracy {last['val_accuracy']:.0%}, ended "
          f"{last['val_ended']:.0%}, {trainer.elapsed:.1f}s; checkpoint in {out}")
    return 0


# --- rl ------------------------------------------------------------------------------------------


def _rl_setup(args: argparse.Namespace, limits: Limits):
    """Everything checked before a weight is written: the settings, the data, a chat parent that can write the
    task's answers, the configs, the limits, questions that fit the context."""
    out = _new_run_folder(args, "rl")
    device = _device(args.device)
    settings = rl.RLConfig.for_stage(args.samples, args.temperature)
    data = load_task(args.task, limits)
    parent = ckpt.load_checkpoint(args.parent, device="cpu", limits=limits)
    rl.check_parent(parent.tokenizer, data, Path(args.parent).name)
    model_cfg, train_cfg = rl.rl_configs(parent.model_config, _overrides(args), device)
    limits.check_run(model_cfg, train_cfg)
    rl.rl_objective(data, parent.tokenizer, model_cfg.block_size, settings)  # some question fits, or a sentence
    return out, data, settings, model_cfg, train_cfg


def reward(args: argparse.Namespace) -> int:
    limits = Limits.from_env()
    out, data, settings, model_cfg, train_cfg = _rl_setup(args, limits)
    meta = {**_task_meta(args, data), "samples": settings.samples, "temperature": settings.temperature}
    note = rl.write_step_zero(out, args.parent, data, Path(args.parent).name, train_cfg.to_dict(), limits, meta)
    print(f"RL on {data.name}: {train_cfg.batch_size} questions x {settings.samples} answers a step, temperature "
          f"{settings.temperature:g}. {note}")
    saved = ckpt.load_checkpoint(out)
    objective = rl.rl_objective(data, saved.tokenizer, model_cfg.block_size, settings)
    trainer = _train(model_cfg, train_cfg, objective, out, {**meta, "grown": note}, lambda r: (
        f"step {r['step']:5d} | mean reward {r['reward']:.3f}" if "reward" in r else f"step {r['step']:5d} | "
        "mean reward   -  ") + f" | held-out accuracy {r['val_accuracy']:.0%} | {r['elapsed_s']:.1f}s")
    if trainer is None:
        return 1
    first, last = trainer.metrics[0], trainer.metrics[-1]
    print(f"done: step {trainer.step}, held-out accuracy {first['val_accuracy']:.0%} at step {first['step']} -> "
          f"{last['val_accuracy']:.0%}, {trainer.elapsed:.1f}s; checkpoint in {out}\n"
          f"measure it: python -m gpt.chat eval {out} --task {args.task}")
    return 0


# --- eval and ask --------------------------------------------------------------------------------


def eval_run(args: argparse.Namespace) -> int:
    n = whole(args.n, "--n", 1, MAX_EVAL_QUESTIONS, error=DataError)
    task = load_task(args.task, Limits.from_env())
    run = load_chat_run(args.run, _device(args.device))
    t0 = time.monotonic()
    score = evaluate(run.model, run.tokenizer, task, n=n, split="val")
    seconds = time.monotonic() - t0
    if args.json:
        print(json.dumps({"run": Path(args.run).name, "task": task.name, "split": "val", **score.as_dict(),
                          "seconds": round(seconds, 2)}))
        return 0
    right = sum(g.correct for g in score.graded)
    print(f"{Path(args.run).name} on {score.n} held-out questions of {task.name} (greedy): accuracy "
          f"{score.accuracy:.1%} ({right}/{score.n}), ended with <|end|> {score.ended:.1%}, {seconds:.1f}s")
    for g in [g for g in score.graded if not g.correct][:SHOWN_WRONG]:
        ending = "" if g.ended else " (never ended)"
        print(f"  wrong: {g.question!r} -> {g.answer!r}{ending}; expected {g.expected!r}")
    return 0


def _settings(args: argparse.Namespace, vocab_size: int) -> SamplingSettings:
    settings = SamplingSettings.from_values(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed)
    for note in settings.validate(vocab_size, Limits.from_env().max_new_tokens):
        print(f"note: {note}", file=sys.stderr)
    return settings


def _answer(run: ckpt.Checkpoint, messages: list[dict], settings: SamplingSettings) -> str:
    """Stream the answer to stdout; notes (turns left out, an answer that never ended) to stderr."""
    shown, answer = 0, None
    for answer in ask_stream(run.model, run.tokenizer, messages, settings):
        if shown == 0:
            for note in answer.notes:
                print(f"note: {note}", file=sys.stderr)
        sys.stdout.write(answer.text[shown:])
        sys.stdout.flush()
        shown = len(answer.text)
    sys.stdout.write("\n")
    if not answer.ended:
        print(f"note: the answer did not end with <|end|> within {settings.max_new_tokens} tokens.", file=sys.stderr)
    return answer.text


def ask_run(args: argparse.Namespace) -> int:
    run = load_chat_run(args.run, _device(args.device))
    settings = _settings(args, run.tokenizer.vocab_size)
    system = [{"role": "system", "content": args.system}] if args.system else []
    if args.question is not None:
        _answer(run, system + [{"role": "user", "content": args.question}], settings)
        return 0
    return _conversation(run, settings, system)


def _conversation(run: ckpt.Checkpoint, settings: SamplingSettings, system: list[dict]) -> int:
    """A chat in the terminal: each line is your turn; /reset forgets the conversation, /exit or Ctrl-D ends."""
    print(f"Chatting with {Path(run.path).name}: type a message and press Enter; /reset starts over, "
          "/exit or Ctrl-D ends.", file=sys.stderr)
    messages = list(system)
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        if line.strip() in ("/exit", "/quit"):
            return 0
        if line.strip() == "/reset":
            messages = list(system)
            continue
        if not line.strip():
            continue
        try:
            sys.stdout.write("model> ")
            text = _answer(run, messages + [{"role": "user", "content": line}], settings)
        except GPTError as err:  # this turn is refused; the conversation goes on
            print(f"\nerror: {err}", file=sys.stderr)
            continue
        if text.strip():  # an empty answer is no turn to build on
            messages += [{"role": "user", "content": line}, {"role": "assistant", "content": text}]


# --- the command line ------------------------------------------------------------------------------


def _sampling_flags(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    ap.add_argument("--top-k", type=int, default=None, help="keep the k likeliest tokens (0 or omitted: off)")
    ap.add_argument("--top-p", type=float, default=None, help="nucleus sampling (1 or omitted: off)")
    ap.add_argument("--seed", type=int, default=None, help="a negative seed or none: random")
    ap.add_argument("--max-new-tokens", type=int, default=200)


def _run_flags(ap: argparse.ArgumentParser) -> None:
    """The training settings a run made from a parent may override (none given: the stage's)."""
    for flag in ("--max-iters", "--batch-size", "--seed"):
        ap.add_argument(flag, type=int, default=None)
    for flag in ("--max-seconds", "--lr"):
        ap.add_argument(flag, type=float, default=None)
    ap.add_argument("--device", default=None, help="auto (default), cpu, cuda, mps")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m gpt.chat", description="From a GPT to a chat model.")
    sub = ap.add_subparsers(dest="command", required=True)
    tasks = f"a built-in task ({', '.join(TASKS)}, mix:addition=4,count=1) or a JSONL/Alpaca file"
    ft = sub.add_parser("finetune", help="make a run a chat model and fine-tune it on conversations")
    ft.add_argument("--from", dest="parent", required=True, help="the run folder to start from")
    ft.add_argument("--task", required=True, help=tasks)
    ft.add_argument("--out", default=None, help="the new run's folder (default checkpoints/<parent>-chat)")
    _run_flags(ft)
    rw = sub.add_parser("rl", help="reward a chat model's right answers on a task with a grader (RL)")
    rw.add_argument("--from", dest="parent", required=True, help="the chat run to start from")
    rw.add_argument("--task", required=True, help=tasks + ": its grader gives the reward")
    rw.add_argument("--out", default=None, help="the new run's folder (default checkpoints/<parent>-rl)")
    lo, hi = rl.SAMPLES_RANGE
    rw.add_argument("-k", "--samples", type=int, default=None, help=f"answers per question, {lo}-{hi} (default 8)")
    rw.add_argument("--temperature", type=float, default=None, help="sampling temperature, above 0 (default 1)")
    _run_flags(rw)
    ev = sub.add_parser("eval", help="held-out questions of a task, answered greedily and graded")
    ev.add_argument("run", help="a chat model's run folder")
    ev.add_argument("--task", required=True, help=tasks)
    ev.add_argument("--n", type=int, default=100, help="questions (default 100)")
    ev.add_argument("--json", action="store_true", help="print one JSON object (accuracy and ended: fractions of 1)")
    ev.add_argument("--device", default=None)
    ask = sub.add_parser("ask", help="the answer to a question, or a conversation in the terminal")
    ask.add_argument("run", help="a chat model's run folder")
    ask.add_argument("question", nargs="?", default=None, help="omit it to chat in the terminal")
    ask.add_argument("--system", default=None, help="a system message before the conversation")
    _sampling_flags(ask)
    ask.add_argument("--device", default=None)
    return ap.parse_args(argv)


COMMANDS = {"finetune": finetune, "rl": reward, "eval": eval_run, "ask": ask_run}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GPTError as err:
        print(f"error: {err}" + (f"\n{err.details}" if err.details else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `| head` closed the pipe: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # a run folder that cannot be made or written
        print(f"error: {err.strerror or err}{f': {err.filename}' if err.filename else ''}.", file=sys.stderr)
        return 2
