"""gpt: learn how a GPT works by building one.

The package holds every decision; `app.py` only wires it to a web page.

Where things are:

    the tokenizer       gpt/tokenizer.py   CharTokenizer (BPE: gpt/bpe.py BPETokenizer)
    get_batch           gpt/data.py        Dataset.get_batch
    attention           gpt/model.py       CausalSelfAttention
    the block           gpt/model.py       Block
    the training step   gpt/train.py       Trainer.train_step
    sampling            gpt/engine.py      sample_next_token, generate_stream
    the KV cache        gpt/kv_cache.py    KVCache (one sequence), RowKVCache (a batch of requests)
    a class at once     gpt/batching.py    BatchDecoder (continuous batching)
    the run queue       gpt/jobs/manager.py  JobManager (and gpt/jobs/book.py RunBook)
    the page            app.py             build_demo, one tab per gpt/ui/*_tab.py

Layers point down (docs/architecture.md): core (everything below but `jobs`
and `ui`) -> `jobs` (the run service) -> `ui` (the only Gradio importer) ->
app.py. Modules, one idea each:

- `errors`      the error types the UI and CLI show as a sentence
- `validate`    one value's type and range at the boundary (`whole`, `number`, `text`, `choice`, `flag`)
- `device`      picks cuda > mps > cpu, autocast, thread count
- `tokenizer`   the shared tokenizer interface and the character tokenizer
- `bpe`         GPT-2 BPE through tiktoken (compact vocabulary) and BPE trained here
- `bpe_spec`    a trained BPE's description checked before tiktoken sees it; tiktoken's panics caught
- `tokcompare`  tokenizers side by side: pieces, counts, bits per character
- `data`        corpora, encoding once, the 90/10 split, `get_batch`
- `model`       `GPTConfig`, `BigramLanguageModel`, `GPT`
- `engine`      KV-cached sampling: temperature, top-k, top-p, streaming; one request is a `Row`
- `kv_cache`    the keys and values a model has seen: one sequence, or rows each at its own length
- `decode_view` the model as the decoder runs it: each row's arithmetic its own, no module overhead
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
- `train`       the training loop (`Trainer.train_step`), in the foreground or a background thread
- `train_config` `TrainConfig` and the one preset merge, `configs_from`
- `train_cli`   `python -m gpt.train`
- `distributed` data parallelism under torchrun
- `jobs`        the run service: queue, workers, run requests, run folders (no Gradio)
- `insight`     what the model does inside: attention, next token, anatomy
- `plots`       matplotlib figures for the insight views
- `ui`          the web page: one module per tab and per view (the only package besides app.py that knows Gradio)
"""

__version__ = "0.1.0"
