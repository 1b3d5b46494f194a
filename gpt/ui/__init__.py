"""The web app's logic, one idea per module; `app.py` at the root only wires it.

- `runtime`   where training runs (CPU, GPU, ZeroGPU) and the server's limits
- `corpus`    the corpus and tokenizer choices, statistics, the coloured token preview
- `estimate`  parameter count, memory and time of a run before it starts
- `plots`     loss curves and the progress bar, as plain data
- `library`   the runs table, checkpoint upload (safetensors only) and download
- `generate`  sampling a run, finished or still training, as a text stream
- `handlers`  the functions Gradio calls: component values in, updates out
- `api`       the named endpoints a `gradio_client` calls, plain JSON types

The job manager that trains in the background lives in `gpt.runs`, with
`gpt.runrequest` (settings -> configs, limits) and `gpt.runfolder` (owner,
lock, status of a run folder). Only `handlers` and `api` import gradio;
everything else is tested without it.
"""
