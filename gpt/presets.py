"""Named recipes: a model shape plus the training settings that suit it.

`small` is nanoGPT's documented CPU recipe shape (with a larger batch and
learning rate than nanoGPT's, which miss val 1.90 in 2000 steps), `medium`
its shakespeare_char GPU config. `fast` is the best character-level recipe
for ~2 minutes of CPU training. `two-minutes` (the default) is `fast` on a
512-token BPE trained on the corpus: each token carries ~2 characters, so
two minutes see ~2x the text and the context spans about twice the
characters; with a 128-token context (~260 characters) it reached 2.148
bits per character in ~115 s on two threads (a 1,024-token BPE memorises
Tiny Shakespeare's ~0.4M tokens sooner), and with Muon's weight decay and
batch 20 2.118 in 133 s (median of 6) on a slower 2-core host.
`ten-minutes` is the one to start before a lecture: 6 layers x 192 wide with
a 128-token context and dropout 0.1 on the same BPE (the small model, trained
ten minutes, only memorises), with the two-minutes recipe's cosine to zero and
Muon's weight decay (2.04 bits per character on a 2-core Zen 4), or the
two-minutes model and its training where this machine is too slow to train
6 x 192 on enough text in ten minutes (`shapes`, fitted by
`gpt.train.config.configs_from`). `tiny` is for tests:
it trains in seconds. docs/benchmarks.md says how each was found and measured.

A preset may name the tokenizer it was tuned with (`tokenizer`); the CLI
uses it unless `--tokenizer` is given (`preset_tokenizer`).
"""

from __future__ import annotations

from .model import ARCHITECTURES, MODEL_PRESETS

PRESETS: dict[str, dict] = {
    "tiny": {
        "model": dict(MODEL_PRESETS["tiny"]),
        # float32: at 32 wide the bf16 casts cost more than the bf16 matmuls save (~25% slower per step)
        "train": dict(batch_size=16, lr=3e-3, max_iters=300, eval_interval=100, eval_iters=10, warmup_iters=20,
                      dtype="float32"),
        "about": "2 layers x 32 wide: trains in seconds, for tests and synthetic tasks",
    },
    "small": {
        "model": dict(MODEL_PRESETS["small"]),
        # nanoGPT's shape; its batch 12 / lr 1e-3 reached val 1.905 in 2000 steps, batch 16 / lr 2e-3 about 1.76
        "train": dict(batch_size=16, lr=2e-3, max_iters=2000, eval_interval=250, eval_iters=20, warmup_iters=100),
        "about": "nanoGPT's CPU recipe shape: 4 layers, 4 heads, 128 wide, context 64 (about 0.8M parameters)",
    },
    "medium": {
        "model": dict(MODEL_PRESETS["medium"], dropout=0.2),
        "train": dict(batch_size=64, lr=1e-3, max_iters=5000, eval_interval=250, eval_iters=200, warmup_iters=100),
        "about": "nanoGPT's shakespeare_char GPU config: 6 layers, 6 heads, 384 wide, context 256 (10.7M parameters)",
    },
    "fast": {
        "model": dict(MODEL_PRESETS["small"], **ARCHITECTURES["modern"]),
        # bf16 autocast where the CPU has native bf16 (dtype 'auto'); evaluation counts in the 130 s,
        # so it runs every 400 steps rather than 250
        "train": dict(
            batch_size=24, lr=3e-3, optimizer="muon", muon_lr=0.02, max_iters=2000, max_seconds=130,
            eval_interval=400, eval_iters=20, warmup_iters=50,
        ),
        "about": "Default on CPU: the small shape with rotary, QK-norm, ReLU^2 and Muon; best loss in ~2 minutes",
    },
}

PRESETS["two-minutes"] = {
    # a 128-token context (~260 characters): 2.133 bits per character against 2.179 for context 64 at 2,000 steps
    # on one thread, for ~16% more time per step
    "model": dict(PRESETS["fast"]["model"], block_size=128),
    # 133 s: the last evaluation (~1.5 s) still ends within the 135 s budget. The cosine decays to zero (the
    # speedruns' warm-down): 2.128 against 2.141 bits per character, median of 3 interleaved (docs/benchmarks.md)
    # Muon's decoupled weight decay 0.3 (each step shrinks the hidden matrices by lr x 0.3): the run sees its
    # text ~3-6 times and the gap between train and val is the loss left; -0.016 bits per character, median of 3
    # interleaved at equal time (0.1: -0.005, 0.5 and 1.0 worse than 0.3 at equal steps; docs/benchmarks.md).
    # Not in `fast`: on characters a two-minute run sees its text under twice, and the same decay lost 0.048.
    # Batch 20 (2,560 tokens a step; it was 12): a step's optimizer costs the same at any batch (Muon's
    # Newton-Schulz, ~22 ms of ~100 on a 2-core CPU without AMX), so a bigger batch reads more text a second; at
    # equal time, median of 3 interleaved: 16 against 12 -0.028, then 20 against 16 -0.014, 24 against 20 +0.023
    # (docs/benchmarks.md)
    "train": dict(PRESETS["fast"]["train"], batch_size=20, max_seconds=133, min_lr_ratio=0.0, muon_weight_decay=0.3),
    "tokenizer": dict(kind="bpe", vocab_size=512),
    "about": "Default: the fast recipe on a 512-token BPE (~2 characters a token), context 128; lowest bits per character in ~2 minutes",
}

PRESETS["ten-minutes"] = {
    # Ten minutes of the small model only memorise Tiny Shakespeare's ~0.5M BPE tokens (val no better than two
    # minutes); a 3x wider-and-deeper model, a 128-token context (~260 characters) and a little dropout generalise.
    "model": dict(PRESETS["fast"]["model"], n_layer=6, n_head=6, n_embd=192, block_size=128, dropout=0.1),
    # 6 x 192 where this machine trains it on enough text in the ten minutes (2,800 steps on the 2-core CPU it was
    # tuned on), else the two-minutes model: on a CPU 4x slower 6 x 192 made ~250-380 steps and ended 0.19-0.26
    # bits per character behind 4 x 128 (`gpt.estimate.fitted_shape`, docs/benchmarks.md). 4 x 128 takes the
    # two-minutes recipe's training with it (no dropout, batch 20, Muon decay 0.3, cosine to zero): on one thread
    # beside another run, 2.106 bits per character against 2.218 with 6 x 192's settings, median of 3 pairs
    # (-0.100 to -0.126 a pair). 5 x 160, a shape between, lost to 4 x 128 with the old settings (2.237 against
    # 2.161, one run each at 0.8 tokens a parameter) and is no longer offered. Its head is tied to the embedding:
    # ten minutes read its text ~3-8 times, and 65K fewer parameters memorise less: -0.014, -0.017 and +0.017
    # bits per character at equal time (median -0.014), one thread each beside the untied; -0.013 at equal
    # steps. It still crosses to transformers (untied there: gpt/convert/qwen3.py).
    # Both shapes train with the two-minutes recipe's cosine to zero and Muon's weight decay 0.3: ten minutes of
    # 6 x 192 on two threads of a 2-core Zen 4 read the text ~11 times, and the two hold val back from memorising
    # (2.069 against 2.088 bits per character with dropout 0.1, one thread each in 590 s; without the dropout a lone
    # run memorised, 2.133; dropout 0.2 lost 0.034 to 0.1 at a lone run's steps: docs/benchmarks.md, 2026-12-04).
    "shapes": [dict(n_layer=6, n_head=6, n_embd=192),
               dict(n_layer=4, n_head=4, n_embd=128, dropout=0.0, tie_weights=True, train=dict(batch_size=20))],
    "train": dict(PRESETS["fast"]["train"], batch_size=16, max_iters=20000, max_seconds=590, eval_interval=500,
                  min_lr_ratio=0.0, muon_weight_decay=0.3),
    "tokenizer": dict(kind="bpe", vocab_size=512),
    "about": "Start it before a lecture: 6 x 192 where this machine trains it well in ten minutes, else the "
             "two-minutes model, context 128 BPE tokens (~260 characters)",
}

DEFAULT_PRESET = "two-minutes"

# The stages after pretraining start from a parent run and keep its shape (their model entry is empty). They are
# not recipes to train from scratch, so they are not in PRESETS (the Train tab's list).
FINETUNE_PRESET = "finetune"
RL_PRESET = "rl"
LATER_STAGES: dict[str, dict] = {
    # AdamW 1e-3 and batch 32 took the shipped model to 95% on held-out two-digit additions in ~75 s
    FINETUNE_PRESET: {
        "model": {},
        "train": dict(batch_size=32, lr=1e-3, optimizer="adamw", max_iters=5000, max_seconds=300,
                      eval_interval=100, eval_iters=8, warmup_iters=20, weight_decay=0.0, sample_tokens=0),
        "about": "Fine-tune a run on conversations: AdamW 1e-3, batch 32, five minutes at most",
    },
    # nanochat's chat RL shape (16 questions x k answers, temperature 1, no weight decay) at a tenth of SFT's
    # learning rate: AdamW 1e-4 took a 91% addition3 model to 98% in 240 s of a quiet 2-core CPU
    RL_PRESET: {
        "model": {},
        "train": dict(batch_size=16, lr=1e-4, optimizer="adamw", max_iters=5000, max_seconds=300,
                      eval_interval=10, eval_iters=2, warmup_iters=0, weight_decay=0.0, sample_tokens=0),
        "rl": dict(samples=8, temperature=1.0),  # answers per question (4-16), sampling temperature
        "about": "Reward right answers: 16 questions x 8 sampled answers a step, AdamW 1e-4, five minutes at most",
    },
}


def preset_tokenizer(name: str, kind: str | None = None, vocab_size: int | None = None) -> tuple[str, int | None]:
    """The tokenizer a run uses: the one asked for, else the preset's, else characters.

    A vocabulary size goes with the tokenizer it was given for: asking for
    another kind than the preset's drops the preset's size.
    """
    own = PRESETS.get(name, {}).get("tokenizer", {})
    if kind is None:
        kind = own.get("kind", "char")
        vocab_size = vocab_size or own.get("vocab_size")
    elif kind == own.get("kind"):
        vocab_size = vocab_size or own.get("vocab_size")
    return kind, vocab_size


def preset(name: str) -> dict:
    from .errors import ConfigError

    found = PRESETS.get(name) or LATER_STAGES.get(name)
    if found is None:
        raise ConfigError(f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}.")
    return {"model": dict(found["model"]), "train": dict(found["train"]),
            "shapes": [dict(shape) for shape in found.get("shapes", [])]}
