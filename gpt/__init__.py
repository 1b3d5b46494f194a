"""gpt: learn how a GPT works by building one.

The package holds every decision; `app.py` only wires it to a web page.

Where things are (the lecture's own version first, then the one the app runs):

    the tokenizer       gpt/tokenizer.py      CharTokenizer (BPE: gpt/bpe.py BPETokenizer; any kind: gpt/tokenizers.py)
    get_batch           gpt/data.py           Dataset.get_batch
    the bigram + loop   gpt/lesson/bigram.py  train_bigram, generate   (app: model.py BigramLanguageModel)
    one head            gpt/lesson/heads.py   Head                     (app: model.py CausalSelfAttention)
    the block           gpt/model.py          Block
    the training step   gpt/train/trainer.py  Trainer.train_step       (what it trains on: train/objective.py)
    sampling            gpt/engine.py         sample_next_token, generate_stream
    the KV cache        gpt/kv_cache.py       KVCache (one sequence), RowKVCache (a batch of requests)
    a class at once     gpt/batching.py       BatchDecoder (continuous batching; in its own process: decode_process.py)
    the run service     gpt/jobs/manager.py   JobManager (runners: thread_runner.py, slice_runner.py; runs: book.py)
    the page            app.py                build_demo, one tab per gpt/ui/*_tab.py

Layers point down (docs/architecture.md): core (everything below but `jobs`
and `ui`) -> `jobs` (the run service) -> `ui` (the only Gradio importer) ->
app.py. Modules, one idea each:

- `errors`      the error types the UI and CLI show as a sentence
- `validate`    one value's type and range at the boundary (`whole`, `number`, `text`, `choice`, `flag`)
- `device`      picks cuda > mps > cpu, autocast, thread count
- `tokenizer`   the shared tokenizer interface and the character tokenizer
- `bpe`         GPT-2 BPE through tiktoken (compact vocabulary) and BPE trained here
- `tokenizers`  every kind by name: build one for a text, rebuild one from its saved description
- `bpe_spec`    a trained BPE's description checked before tiktoken sees it; tiktoken's panics caught
- `tokcompare`  tokenizers side by side: pieces, counts, bits per character
- `data`        corpora, encoding once, the 90/10 split, `get_batch`
- `model`       `GPTConfig`, `BigramLanguageModel`, `GPT`
- `engine`      KV-cached sampling: temperature, top-k, top-p, streaming; one request is a `Row`
- `kv_cache`    the keys and values a model has seen: one sequence, or rows each at its own length
- `decode_view` the model as the decoder runs it: each row's arithmetic its own, no module overhead
- `compiled_step` the decode step captured once by torch.compile (in the background; eager until ready)
- `decode_process` the decode loops in a process of their own, beside a web server (one core each)
- `batching`    continuous batching: every request on one model in one decode loop
- `sample`      prompts, streaming text, the sampling CLI
- `optim`       optimizer groups (AdamW, Muon) and the learning-rate schedule
- `corpus`      the corpus a person picks (Shakespeare, synthetic, a file, pasted), encoded datasets cached
- `estimate`    parameter count, memory and time of a run before it starts
- `limits`      what one server allows a single request (GPT_MAX_* variables)
- `presets`     named recipes: a model shape plus its training settings
- `checkpoint`  run folders: safetensors weights, config.json, metrics.jsonl
- `checkpoint_check` a checkpoint's config, limits and shapes, checked before its weights are read
- `safetensors_header` a safetensors header read by hand, every entry checked
- `train`       the one training loop (`Trainer.train_step`), what a kind of run hands it (`objective`),
                `TrainConfig` and the one preset merge (`config`), `python -m gpt.train` (`cli`)
- `history`     a run's whole curve: `steps.jsonl`'s one writer and reader, and the copy a checkpoint carries
- `lesson`      the lecture step by step on any text, with its own `Head`, bigram loop and `generate`
- `distributed` data parallelism under torchrun
- `jobs`        the run service: one manager, its runners (a thread per run, or slices of a lent GPU), run requests,
                run folders, where runs are stored (no Gradio)
- `insight`     what the model does inside: attention, next token, anatomy
- `plots`       matplotlib figures for the insight views
- `ui`          the web page: one module per tab and per view (the only package besides app.py that knows Gradio)
"""

__version__ = "0.1.0"
