"""gpt: learn how a GPT works by building one.

The package holds every decision; `app.py` only wires it to a web page.
Modules, one idea each:

- `errors`      the error types the UI and CLI show as a sentence
- `device`      picks cuda > mps > cpu, autocast, thread count
- `tokenizer`   character, GPT-2 BPE (tiktoken) and trained BPE tokenizers
- `data`        corpora, encoding once, the 90/10 split, `get_batch`
- `model`       `GPTConfig`, `BigramLanguageModel`, `GPT`
- `engine`      KV-cached sampling: temperature, top-k, top-p, streaming
- `optim`       optimizer groups (AdamW, Muon) and the learning-rate schedule
- `checkpoint`  run folders: safetensors weights, config.json, metrics.jsonl
- `train`       the training loop, in the foreground or a background thread
"""

__version__ = "0.1.0"
