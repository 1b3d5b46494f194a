"""The web app's logic, one idea per module; `app.py` at the root only wires it.

- `runtime`   what the page says about where training runs; the browser id's key
- `tokens`    tokens as coloured boxes (the preview and the tokenizers view)
- `frames`    loss curves as pandas frames, and the progress bar
- `library`   the runs table, checkpoint upload (safetensors only) and download
- `generate`  sampling a run, finished or still training, as a text stream
- `handlers`  the functions Gradio calls: component values in, updates out
- `api`       the named endpoints a `gradio_client` calls, plain JSON types

The run service that trains in the background is `gpt.jobs`; the corpus
choices, the cost estimate and the limits are core (`gpt.corpus`,
`gpt.estimate`, `gpt.limits`). This package is the only one that imports gradio.
"""
