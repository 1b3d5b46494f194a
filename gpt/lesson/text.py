"""Lesson steps 1-5: from raw text to batches of (context, target) pairs.

The functions without `step_` are the lecture's cells, kept small because the
page shows their source next to what they printed; the `step_` functions run
them on the lesson's corpus and say where the lecture's numbers hold.
"""

from __future__ import annotations

import torch

from .. import bpe
from ..data import Dataset
from ..errors import GPTError
from ..tokenizer import CharTokenizer
from .base import Lesson, Step, source

LECTURE_HII = [46, 47, 47, 1, 58, 46, 43, 56, 43]
LECTURE_GPT2_HII = [71, 4178, 612]


def vocabulary(text: str) -> tuple[list[str], int]:
    # here are all the unique characters that occur in this text
    chars = sorted(list(set(text)))
    vocab_size = len(chars)
    return chars, vocab_size


def step_data(lesson: Lesson) -> Step:
    text = lesson.corpus.text
    chars, vocab_size = vocabulary(text)
    output = (f"length of dataset in characters:  {len(text)}\n\n{text[:1000]}\n\n"
              f"{''.join(chars)}\n{vocab_size}")
    lecture = ("The lecture: 1115394 characters, 65 distinct ones. "
               + ("Yours match: this is Tiny Shakespeare." if lesson.corpus.source == "shakespeare" else
                  f"Your text has {len(text):,} characters and {vocab_size} distinct ones."))
    return Step("data", "", "A language model only ever sees its training text, so first look at it: how long it "
                "is, how it starts, and which characters it uses (the character tokenizer's vocabulary).",
                source(vocabulary), output, lecture, dict(length=len(text), vocab_size=vocab_size, chars=chars))


def _try(fn, *args) -> tuple[object, str | None]:
    try:
        return fn(*args), None
    except GPTError as err:
        return None, str(err)


def _pieces(tok, ids: list[int]) -> str:
    return " ".join(repr(tok.decode([i])) for i in ids)


def step_tokenize(lesson: Lesson) -> Step:
    sentence, tok, text = lesson.settings.sentence, lesson.dataset.tokenizer, lesson.corpus.text
    chars = CharTokenizer.from_text(text)
    lines = [f"stoi (the first 20): {dict(list(chars.stoi.items())[:20])}",
             f"itos (the first 20): {dict(list(chars.itos.items())[:20])}", ""]
    ids, err = _try(chars.encode, sentence)
    lines.append(f"characters ({chars.vocab_size} tokens): " + (
        f"encode({sentence!r}) = {ids}\ndecode(...) = {chars.decode(ids)!r}" if err is None else err))
    gpt2, gpt2_err = _try(bpe.load_encoding, "gpt2")
    gpt2_ids = gpt2.encode(sentence) if gpt2 is not None else None
    lines.append("GPT-2 BPE via tiktoken: " + (f"{gpt2.n_vocab:,} tokens, encode = {gpt2_ids}" if gpt2 is not None
                                               else f"not available here: {gpt2_err}"))
    trained = tok if tok.name == "bpe" else bpe.train(text[:200_000], 512)
    tids, terr = _try(trained.encode, sentence)
    where = "" if tok.name == "bpe" else " (512 tokens, trained here on the first 200,000 characters)"
    lines.append(f"BPE trained on your text{where}: " + (
        f"{trained.vocab_size:,} tokens, encode = {tids}, pieces {_pieces(trained, tids)}" if terr is None else terr))
    if tok.name != "char":
        mine, merr = _try(tok.encode, sentence)
        lines.append(f"the lesson's tokenizer, {tok.describe()}: " + (f"{mine}" if merr is None else merr))
    lines.append("\nsmall vocabulary, long sequences; large vocabulary, short sequences")
    lecture = (f"The lecture: encode('hii there') = {LECTURE_HII} with characters and {LECTURE_GPT2_HII} with "
               "GPT-2 (50,257 tokens). " + ("Yours match." if ids == LECTURE_HII and sentence == "hii there" else
                                              "Character ids depend on the corpus's characters, so yours differ."))
    return Step("tokenize", "", "A network reads numbers, not text: a tokenizer maps text to integer ids and back. "
                "Characters give a tiny vocabulary and long sequences; BPE merges frequent pieces into one token.",
                source(CharTokenizer.__init__, CharTokenizer.encode, CharTokenizer.decode), "\n".join(lines), lecture,
                dict(char_ids=ids, gpt2_ids=gpt2_ids, gpt2_error=gpt2_err, bpe_ids=tids,
                     stoi=chars.stoi, itos=chars.itos))


def step_tensor(lesson: Lesson) -> Step:
    data = lesson.dataset.data
    output = f"{data.shape} {data.dtype}\n{data[:1000]}"
    lecture = ("The lecture: torch.Size([1115394]) torch.int64, starting tensor([18, 47, 56, 57, 58,  1, 15, 47, 58, "
               "47, ...])." + (" Yours match." if lesson.lecture_setup else " Your ids come from your tokenizer."))
    return Step("tensor", "", "The whole corpus, encoded once, becomes one long 1-D tensor of token ids: every "
                "batch is a slice of it, so nothing is tokenized twice.",
                source(Dataset.__init__), output, lecture,
                dict(shape=tuple(data.shape), dtype=str(data.dtype), first=data[:10].tolist()))


def step_split(lesson: Lesson) -> Step:
    ds = lesson.dataset
    n = int(0.9 * len(ds.data))
    output = (f"n = int(0.9 * len(data)) = {n}\ntrain_data: {len(ds.train_data):,} tokens\n"
              f"val_data: {len(ds.val_data):,} tokens")
    lecture = ("The lecture: 1,003,854 train and 111,540 validation characters."
               + (" Yours match." if lesson.lecture_setup else ""))
    return Step("split", "", "The last 10% is held out: the validation loss on text the model never trained on is "
                "how we see memorising (overfitting) rather than learning.",
                source(Dataset.__init__), output, lecture, dict(n_train=len(ds.train_data), n_val=len(ds.val_data)))


def first_block(train_data: torch.Tensor, block_size: int) -> list[str]:
    x = train_data[:block_size]
    y = train_data[1:block_size+1]
    lines = []
    for t in range(block_size):
        context = x[:t+1]
        target = y[t]
        lines.append(f"when input is {context} the target: {target}")
    return lines


def batch_pairs(xb: torch.Tensor, yb: torch.Tensor) -> list[str]:
    lines = []
    for b in range(xb.shape[0]):  # batch dimension
        for t in range(xb.shape[1]):  # time dimension
            context = xb[b, :t+1]
            target = yb[b, t]
            lines.append(f"when input is {context.tolist()} the target: {target}")
    return lines


def lecture_batch(lesson: Lesson) -> tuple[torch.Tensor, torch.Tensor]:
    """The lecture's first batch: seed, then one get_batch('train') (the same randint call as its notebook)."""
    s = lesson.settings
    lesson.dataset.check_block_size(s.block_size)
    torch.manual_seed(s.seed)
    return lesson.dataset.get_batch("train", s.batch_size, s.block_size)


def step_batches(lesson: Lesson) -> Step:
    s, ds = lesson.settings, lesson.dataset
    xb, yb = lecture_batch(lesson)
    out = [f"{ds.train_data[:s.block_size+1]}", *first_block(ds.train_data, s.block_size), "",
           "inputs:", f"{xb.shape}", f"{xb}", "targets:", f"{yb.shape}", f"{yb}", "----", *batch_pairs(xb, yb)]
    exact = lesson.lecture_setup and (s.seed, s.batch_size, s.block_size) == (1337, 4, 8)
    lecture = ("The lecture, seed 1337, batch 4, block 8: xb = [[24, 43, 58, 5, 57, 1, 46, 43], [44, 53, 56, 1, 58, "
               "46, 39, 58], [52, 58, 1, 58, 46, 39, 58, 1], [25, 17, 27, 10, 0, 21, 1, 54]]. "
               + ("Yours is the same batch: check your notebook against it." if exact else
                  "That holds on Tiny Shakespeare + characters with seed 1337, batch 4, block 8 only."))
    return Step("batches", "", f"The model never sees the whole text at once: it trains on random windows of "
                f"block_size={s.block_size} tokens, and each window holds {s.block_size} examples, one per prefix, "
                "so it learns to predict from 1 token of context up to block_size.",
                source(first_block, lecture_batch, Dataset.get_batch, batch_pairs), "\n".join(out), lecture,
                dict(xb=xb.tolist(), yb=yb.tolist(), first_block=first_block(ds.train_data, s.block_size)))
