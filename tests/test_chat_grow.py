"""Growing a run into a chat model: new rows at the mean, every old token's logits exactly as before."""

import pytest
import torch

from gpt.bpe import BPETokenizer
from gpt.chat.grow import chat_model
from gpt.chat.tasks import task_from_name
from gpt.chat.tokenizer import SPECIALS, ChatTokenizer
from gpt.errors import ConfigError
from gpt.limits import Limits
from gpt.model import GPTConfig, build_model
from gpt.tokenizer import CharTokenizer

from helpers_chat import CORPUS, base_tokenizer, random_gpt

ARCHS = ("classic", "modern")  # tied and untied LM heads


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]))[0][0]  # (T, vocab)


def conversations(*pairs):
    return [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in pairs]


@pytest.mark.parametrize("arch", ARCHS)
def test_growing_keeps_every_old_tokens_logits_exactly_and_new_rows_are_the_mean(arch):
    tok = CharTokenizer.from_text(CORPUS)
    model = random_gpt(tok.vocab_size, arch, scale=4.0)
    grown = chat_model(model, tok, conversations(("What is 12 + 9?", "21")))
    new = grown.tokenizer
    assert new.base.chars == sorted(set(CORPUS) | set("What is 12 + 9?21"))  # W, 1, 2, 9, + are new here
    old_ids = tok.encode(CORPUS[:40])
    new_ids = new.encode(CORPUS[:40])
    moved = torch.tensor([new.base.stoi[ch] for ch in tok.chars])  # where each old token went
    assert new_ids == moved[old_ids].tolist()
    before, after = logits(model, old_ids), logits(grown.model, new_ids)
    assert torch.equal(after[:, moved], before)  # every old token's logit, bit for bit
    for table, old_table in [(grown.model.transformer.wte.weight, model.transformer.wte.weight),
                             (grown.model.lm_head.weight, model.lm_head.weight)]:
        fresh = [i for i in range(new.vocab_size) if i not in set(moved.tolist())]
        assert torch.equal(table[moved], old_table)
        assert torch.allclose(table[fresh], old_table.mean(0).expand(len(fresh), -1))
    assert grown.model.config.vocab_size == new.vocab_size
    assert (grown.model.lm_head.weight is grown.model.transformer.wte.weight) == (arch == "classic")


def test_the_note_names_the_characters_a_task_brings():
    tok = CharTokenizer.from_text(CORPUS)
    grown = chat_model(random_gpt(tok.vocab_size), tok, task_from_name("addition"))
    assert grown.note.startswith("Added 12 characters the conversations use: + 0 1 2 3 4 5 6 7 8 9 W.")
    assert "Added the chat tokens <|user|>, <|assistant|>, <|end|>, <|system|>." in grown.note
    for q in ("What is 59 + 5?", "What is 0 + 99?"):  # every example of the task now encodes
        grown.tokenizer.render([{"role": "user", "content": q}, {"role": "assistant", "content": "64"}])


@pytest.mark.parametrize("arch", ARCHS)
def test_a_compact_gpt2_vocabulary_grows_by_the_gpt2_tokens_the_data_needs(arch):
    tok = base_tokenizer("gpt2-compact")
    model = random_gpt(tok.vocab_size, arch, scale=4.0)
    grown = chat_model(model, tok, task_from_name("addition"))
    new = grown.tokenizer
    assert "GPT-2 tokens the conversations use" in grown.note
    for a in range(100):  # every question and answer of the task, without the fallback
        for text in (f"What is {a} + {a}?", str(a), str(a + 99)):
            assert new.base.unk_id not in new.encode(text)
    ids_old = tok.encode(CORPUS)
    ids_new = new.encode(CORPUS)
    position = {full: i for i, full in enumerate(new.base.kept)}
    moved = torch.tensor([position[f] for f in tok.kept] + [new.base.unk_id])
    assert ids_new == moved[ids_old].tolist()
    assert torch.equal(logits(grown.model, ids_new)[:, moved], logits(model, ids_old))


@pytest.mark.parametrize("kind", ["bpe", "gpt2"])
def test_byte_level_bpe_gets_only_the_chat_tokens(kind):
    tok = base_tokenizer(kind)
    model = random_gpt(tok.vocab_size, "modern")
    grown = chat_model(model, tok, task_from_name("addition"))
    assert grown.tokenizer.base is tok and grown.tokenizer.vocab_size == tok.vocab_size + len(SPECIALS)
    assert grown.note.startswith("Added the chat tokens")
    ids = tok.encode(CORPUS[:30])
    assert torch.equal(logits(grown.model, ids)[:, : tok.vocab_size], logits(model, ids))


@pytest.mark.parametrize("arch", ARCHS)
def test_growing_a_chat_run_adds_only_what_is_missing_and_moves_its_chat_rows_exactly(arch):
    tok = CharTokenizer.from_text(CORPUS)
    first = chat_model(random_gpt(tok.vocab_size, arch, scale=4.0), tok, conversations(("hear", "me")))
    assert first.note.startswith("Added the chat tokens")  # every character was there already
    again = chat_model(first.model, first.tokenizer, conversations(("hear", "me")))
    assert again.model is first.model and again.note == "The model already has every token these conversations need."
    more = chat_model(first.model, first.tokenizer, conversations(("What is 2 + 2?", "4")))
    assert more.note.startswith("Added 4 characters the conversations use: + 2 4 W.")
    assert "chat tokens" not in more.note
    old, new = first.tokenizer, more.tokenizer
    moved = torch.tensor([new.base.stoi[ch] for ch in old.base.chars] + [new.special_ids[s] for s in old.specials])
    prompt = old.render_prompt(conversations(("hear", "me"))[0][:1])
    assert new.render_prompt(conversations(("hear", "me"))[0][:1]) == moved[prompt].tolist()
    assert torch.equal(logits(more.model, moved[prompt].tolist())[:, moved], logits(first.model, prompt))
    assert [new.special_ids[s] for s in SPECIALS] == list(range(new.base.vocab_size, new.vocab_size))


def test_a_bigram_a_mismatched_tokenizer_and_the_vocabulary_limit_are_refused():
    tok = CharTokenizer.from_text(CORPUS)
    bigram = build_model(GPTConfig(vocab_size=tok.vocab_size, model_type="bigram"))
    with pytest.raises(ConfigError, match="bigram"):
        chat_model(bigram, tok, conversations(("a", "b")))
    with pytest.raises(ConfigError, match="do not belong together"):
        chat_model(random_gpt(tok.vocab_size + 1), tok, conversations(("a", "b")))
    with pytest.raises(ConfigError, match="GPT_MAX_VOCAB"):
        chat_model(random_gpt(tok.vocab_size), tok, conversations(("a", "b")), limits=Limits(max_vocab=tok.vocab_size))


def test_a_grown_model_keeps_device_dtype_and_mode():
    tok = CharTokenizer.from_text(CORPUS)
    model = random_gpt(tok.vocab_size).to(torch.bfloat16).train()
    grown = chat_model(model, tok, conversations(("a", "b")))
    assert grown.model.training and next(grown.model.parameters()).dtype == torch.bfloat16
    assert isinstance(grown.tokenizer, ChatTokenizer) and not isinstance(grown.tokenizer.base, BPETokenizer)
