"""What every view of 'See inside the model' shares: the run service, the model cache, opening a run.

Only runs the asker may see (`RunBook.visible`) are ever opened; a run still
training is opened as a snapshot of its current weights.
"""

from __future__ import annotations

import gradio as gr

from ...jobs import JobManager
from ...jobs import sampling as gen
from ..pickers import pick_run, run_label, sampleable, short_label, with_metrics


class View:
    def __init__(self, manager: JobManager, models: gen.ModelCache | None = None):
        self.m = manager
        self.models = models or gen.ModelCache()

    def model_runs(self, owner, current=None) -> dict:
        """Runs a model can be opened from: a checkpoint on disk, or training now (its snapshot)."""
        return pick_run(self.m, owner, sampleable(self.m.runs.list_runs(owner)), current, run_label)

    def metric_runs(self, owner, current=None) -> dict:
        return pick_run(self.m, owner, with_metrics(self.m.runs.list_runs(owner)), current, short_label)

    def _open(self, owner, run) -> gen.Loaded:
        return gen.open_run(self.m, self.models, owner, run, self.m.device)

    def _at(self, run: str, loaded: gen.Loaded) -> str:
        """Which weights the view shows. A run training in GPU slices (ZeroGPU) has its live weights in the GPU's
        process: here they are the ones its last slice saved (step 0 until the first slice ends), and it says so."""
        if loaded.live:
            # the line stays on screen after the run moves on or ends: say when it was true and how to redraw
            return f"**{run}** (training when drawn: its weights at step {loaded.step:,}; draw again for its latest)"
        job = self.m.job(run)
        if job is not None and job.slice_number and job.state in ("running", "paused"):
            return (f"**{run}** (training in GPU slices: its weights as the last slice saved them, at step "
                    f"{loaded.step:,})")
        return f"**{run}** at step {loaded.step:,}"


def refresh_button(elem_id: str) -> gr.Button:
    return gr.Button("↻", scale=0, min_width=40, elem_id=elem_id)


def slider_update(count: int, value: int, noun: str) -> dict:
    """A 0-based picker sized to the model: 0..count-1. A slider needs two ends, so a model with one layer
    (or head) gets a locked 0..1 slider whose label says there is only 0."""
    label = f"{noun} (0..{count - 1})" if count > 1 else f"{noun} (this model has one: 0)"
    return gr.update(minimum=0, maximum=max(1, count - 1), value=value, interactive=count > 1, label=label)
