import pytest
import torch

from gpt.engine import SamplingSettings
from gpt.errors import TokenizerError
from gpt.model import GPT, GPTConfig
from gpt.sample import StreamDecoder, prompt_to_ids, start_token, stream_text
from gpt.tokenizer import CharTokenizer

TOK = CharTokenizer.from_text("abc def\nghi")


def test_empty_prompt_starts_from_a_newline_and_says_so():
    ids, notes = prompt_to_ids(TOK, "", block_size=8)
    assert ids == [TOK.stoi["\n"]] and "empty" in notes[0]


def test_start_token_without_newline_or_space():
    assert start_token(CharTokenizer.from_text("xyz")) == 0


def test_unknown_characters_are_named():
    with pytest.raises(TokenizerError) as err:
        prompt_to_ids(TOK, "abZ!Z", block_size=8)
    assert "'Z'" in str(err.value) and "'!'" in str(err.value) and "2 character" in str(err.value)


def test_long_prompt_is_cropped_to_the_context_with_a_note():
    ids, notes = prompt_to_ids(TOK, "abcdefghi" * 3, block_size=8)
    assert ids == TOK.encode("abcdefghi" * 3)  # whole: the engine's window is the one place that crops
    assert "27 tokens" in notes[0] and "last 8" in notes[0]
    model = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    settings = SamplingSettings(max_new_tokens=5, temperature=0)
    from gpt.engine import generate

    assert generate(model, ids, settings) == generate(model, TOK.encode(("abcdefghi" * 3)[-8:]), settings)


def test_stream_text_pieces_join_to_the_decoded_sample():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    settings = SamplingSettings(max_new_tokens=30, temperature=1.0, seed=5)
    pieces = list(stream_text(model, TOK, TOK.encode("abc"), settings))
    assert len(pieces) == 30  # one character per token for the char tokenizer
    from gpt.engine import generate

    assert "".join(pieces) == TOK.decode(generate(model, TOK.encode("abc"), settings))


def test_stream_decoder_passes_char_tokens_straight_through():
    dec = StreamDecoder(TOK)
    assert [dec.push(i) for i in TOK.encode("abc")] == ["a", "b", "c"]
    assert dec.flush() == ""
