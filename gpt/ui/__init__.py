"""The web page: the only package that imports Gradio. `app.py` at the root only assembles it.

- `page`             what every tab shares (the run service, the model cache, who is asking)
- `train_tab`, `lesson_tab`, `generate_tab`, `checkpoints_tab`: one module per tab, its handlers
                     (values in, updates out; tested without a browser) beside its layout
- `views`            the 'See inside the model' tab, one module per view
- `teacher`          the teacher's page at /teacher
- `api`              the named endpoints a `gradio_client` calls, plain JSON types
- `slice_timer`      on a ZeroGPU Space: the timer that runs a run's next GPU slice
- `identity`         who is asking: the signed id a browser holds, the client's address
- `runtime`          what the page says about where training runs
- `frames`           loss curves as pandas frames, and the progress bar
- `token_html`       tokens as coloured boxes (the preview and the tokenizers view)
- `figure_downloads` figures as PNG files to download
- `exchange`         models in and out of the Checkpoints tab (transformers, nanoGPT)
- `library`          the runs table, checkpoint upload (safetensors only) and download
- `messages`         every exception as one sentence

The run service that trains in the background is `gpt.jobs`; the corpus
choices, the cost estimate and the limits are core (`gpt.corpus`,
`gpt.estimate`, `gpt.limits`).
"""
