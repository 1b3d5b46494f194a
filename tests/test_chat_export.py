"""A chat model out to transformers: apply_chat_template gives our prompt ids, generate answers as our engine does.

transformers is the independent implementation: its Jinja chat template, its
tokenizer (special tokens from tokenizer.json) and its GPT-2 generate, greedy,
stopping at <|end|>. nanoGPT cannot hold the chat tokens and refuses by name.
"""

import json

import pytest
import torch

from gpt import checkpoint as ckpt
from gpt.chat.evaluate import ask, reply
from gpt.chat.grow import chat_model
from gpt.chat.tokenizer import END, SPECIALS
from gpt.convert import hf_to_run, run_to_hf, run_to_nanogpt
from gpt.engine import SamplingSettings
from gpt.errors import ConvertError

from helpers_chat import base_tokenizer, facts_file, memorise, random_gpt

transformers = pytest.importorskip("transformers")

DATA = [[{"role": "user", "content": "What is 12 + 30?"}, {"role": "assistant", "content": "42"}]]
PROMPT = [
    {"role": "system", "content": "Speak as First Citizen."},
    {"role": "user", "content": "Before we proceed?"},
    {"role": "assistant", "content": "hear me speak."},
    {"role": "user", "content": "What is 12 + 30?"},
]


def chat_run(tmp_path, kind, arch="classic", **change):
    """A random GPT over a `kind` tokenizer, made into a chat model (new rows moved in) and saved."""
    tok = base_tokenizer(kind)
    seen = DATA + [PROMPT + [{"role": "assistant", "content": "42"}],  # a compact vocabulary keeps all their tokens
                   [{"role": "user", "content": "hear<|end|>me"}, {"role": "assistant", "content": "42"}]]
    model = random_gpt(tok.vocab_size, arch, block_size=128, scale=12.0, **change)
    grown = chat_model(model, tok, seen)
    ckpt.save_checkpoint(tmp_path / "run", grown.model, grown.model.config, grown.tokenizer, step=5)
    return ckpt.load_checkpoint(tmp_path / "run")


def id_maps(tok):
    """Our id -> the exported id, and back: a compact vocabulary's ids are GPT-2's own there, its fallback any
    unused GPT-2 id (each has the fallback's row), and the chat tokens follow the full vocabulary."""
    base = tok.base
    if not getattr(base, "compact", False):
        return (lambda i: i), (lambda i: i)
    ours = {full: i for i, full in enumerate(base.kept)}
    shift = base.full_vocab_size - base.vocab_size

    def out(i):
        return base.kept[i] if i < len(base.kept) else i + shift

    def back(i):
        return i - shift if i >= base.full_vocab_size else ours.get(i, base.unk_id)

    return out, back


@pytest.mark.parametrize("kind, arch", [("char", "classic"), ("bpe", "classic"), ("gpt2-compact", "classic"),
                                        ("gpt2", "classic"), ("gpt2-compact", "modern-tied")])
def test_apply_chat_template_and_greedy_generate_match_ours_in_transformers(tmp_path, kind, arch):
    """modern-tied: ten-minutes' small shape (LayerNorm, a tied head) leaves as Qwen3 with the head untied, its
    rows for the full vocabulary and the chat tokens moved as the embedding's are."""
    run = chat_run(tmp_path, kind, "modern", tie_weights=True) if arch == "modern-tied" else chat_run(tmp_path, kind)
    ours = run.tokenizer
    run_to_hf(tmp_path / "run", tmp_path / "hf")
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    mapped, back = id_maps(ours)
    prompt = ours.render_prompt(PROMPT)
    theirs = hf_tok.apply_chat_template(PROMPT, add_generation_prompt=True)["input_ids"]
    assert theirs == [mapped(i) for i in prompt]
    assert hf_tok.apply_chat_template(PROMPT)["input_ids"] == [mapped(i) for i in ours.render(PROMPT)[0]]
    assert hf_tok.eos_token == END and hf_tok.eos_token_id == mapped(ours.end_id)
    out = model.generate(torch.tensor([theirs]), max_new_tokens=12, do_sample=False)[0, len(theirs):].tolist()
    mine = reply(run.model, ours, prompt, SamplingSettings(max_new_tokens=12, temperature=0))
    assert [back(i) for i in out] == mine.ids + ([ours.end_id] if mine.ended else [])  # generate stops at <|end|>
    if getattr(ours.base, "unk_id", None) not in mine.ids:
        assert hf_tok.decode(out, skip_special_tokens=True) == mine.text
    if arch == "modern-tied":  # the head reads the uncentred rows: every logit, not only the greedy choice
        assert json.loads((tmp_path / "hf" / "config.json").read_text())["tie_word_embeddings"] is False
        with torch.no_grad():
            mine_logits = run.model(torch.tensor([prompt]))[0][0]  # (T, our vocab)
            their_logits = model(torch.tensor([theirs])).logits[0]  # (T, exported vocab)
        columns = torch.tensor([mapped(i) for i in range(ours.vocab_size)])
        assert torch.allclose(their_logits[:, columns], mine_logits, atol=1e-4)


def test_a_model_that_answers_and_ends_answers_the_same_in_transformers(tmp_path):
    """A tiny model that knows eight answers by heart: transformers writes each one and stops at <|end|> too."""
    task = facts_file()
    model, ours = memorise(task)
    ckpt.save_checkpoint(tmp_path / "run", model, model.config, ours, step=1)
    run_to_hf(tmp_path / "run", tmp_path / "hf")
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    for ex in task.examples("train"):
        mine = ask(model, ours, ex.prompt, SamplingSettings(max_new_tokens=10, temperature=0))
        assert mine.ended and mine.text == ex.answer
        ids = hf_tok.apply_chat_template(ex.prompt, add_generation_prompt=True, return_tensors="pt")["input_ids"]
        out = hf_model.generate(ids, max_new_tokens=10, do_sample=False)[0, ids.shape[1]:].tolist()
        assert out[-1] == ours.end_id and hf_tok.decode(out, skip_special_tokens=True) == ex.answer


def test_a_chat_model_made_from_the_shipped_model_answers_the_same_in_transformers_qwen3(tmp_path):
    """The shipped model is a modern run: a chat model grown from it leaves as Qwen3, its template and its
    greedy answer the same on both sides (our rows for the chat tokens are new, so the answer is the model's)."""
    from pathlib import Path

    shipped = ckpt.load_checkpoint(Path(__file__).resolve().parents[1] / "checkpoints" / "shakespeare-char")
    talk = [{"role": "user", "content": "Who art thou, and whence comest thou?"}]
    grown = chat_model(shipped.model, shipped.tokenizer, [talk + [{"role": "assistant", "content": "A citizen."}]])
    ckpt.save_checkpoint(tmp_path / "run", grown.model, grown.model.config, grown.tokenizer, step=1)
    run_to_hf(tmp_path / "run", tmp_path / "hf")
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["Qwen3ForCausalLM"]
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ours = grown.tokenizer
    prompt = ours.render_prompt(talk)
    assert hf_tok.apply_chat_template(talk, add_generation_prompt=True)["input_ids"] == prompt
    out = model.generate(torch.tensor([prompt]), max_new_tokens=30, do_sample=False)[0, len(prompt):].tolist()
    mine = reply(grown.model.eval(), ours, prompt, SamplingSettings(max_new_tokens=30, temperature=0))
    assert out == mine.ids + ([ours.end_id] if mine.ended else []) and len(mine.ids) > 0


def test_chat_tokens_are_real_special_tokens_and_a_typed_end_is_the_one_difference(tmp_path):
    run = chat_run(tmp_path, "char")
    ours = run.tokenizer
    run_to_hf(tmp_path / "run", tmp_path / "hf")
    data = json.loads((tmp_path / "hf" / "tokenizer.json").read_text())
    added = {t["content"]: t for t in data["added_tokens"]}
    assert {s: added[s]["id"] for s in SPECIALS} == ours.special_ids
    assert all(added[s]["special"] and not added[s]["normalized"] for s in SPECIALS)
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert set(SPECIALS) <= set(hf_tok.all_special_tokens)
    typed = [{"role": "user", "content": "hear<|end|>me"}]
    theirs = hf_tok.apply_chat_template(typed, add_generation_prompt=True)["input_ids"]
    mine = ours.render_prompt(typed)
    assert mine.count(ours.end_id) == 1 and theirs.count(ours.end_id) == 2  # transformers reads typed text as special
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "apply_chat_template" in card


def test_a_chat_export_imports_back_as_the_same_chat_model(tmp_path):
    run = chat_run(tmp_path, "char")
    hf_to_run(run_to_hf(tmp_path / "run", tmp_path / "hf"), tmp_path / "back")
    back = ckpt.load_checkpoint(tmp_path / "back")
    assert back.tokenizer.spec() == run.tokenizer.spec()
    ids = torch.tensor([run.tokenizer.render_prompt(PROMPT)])
    assert torch.equal(back.model(ids)[0], run.model(ids)[0])


@pytest.mark.parametrize("kind", ["char", "gpt2"])
def test_nanogpt_refuses_a_chat_model_and_says_why(tmp_path, kind):
    chat_run(tmp_path, kind)
    with pytest.raises(ConvertError, match="could never write this chat model's <\\|user\\|>"):
        run_to_nanogpt(tmp_path / "run", tmp_path / "ng")
    assert not (tmp_path / "ng").exists()
