"""What Gradio refuses before a handler runs, said as a sentence naming the field instead of `{"error": null}`.

Gradio converts every input before our handler sees it, in
`Blocks.preprocess_data`:
- a file input must point into its upload cache: a raw request naming any
  other path (`/etc/passwd`, the runs folder's key) makes
  `gradio.processing_utils._check_allowed` raise `InvalidPathError`, and
  nothing is read;
- each component converts its value (gr.Number's `float("abc")`, a data
  model's validation) and raises ValueError or TypeError on what it cannot.
Neither is a `gr.Error`, so Gradio answers `{"error": null}` and logs a
traceback. A slider or number box given a value outside its bounds raises a
`gr.Error` that names no field ("Value -3 is less than minimum value 0.").
`Blocks` (the app's `gr.Blocks`) catches them there and raises a sentence
naming the field instead; what the request asked for still does not happen.
"""

from __future__ import annotations

import gradio as gr
from gradio.data_classes import GradioModel, GradioRootModel
from gradio.exceptions import InvalidPathError

from ..errors import ConfigError
from .messages import refuse


def _label(block) -> str:
    return str(getattr(block, "label", None) or getattr(block, "elem_id", None) or "a field")


def _takes_files(block) -> bool:
    model = getattr(block, "data_model", None)
    return isinstance(model, type) and issubclass(model, (GradioModel, GradioRootModel))


def _failing_block(block_fn, inputs: list):
    """The first plain (file-less) input whose own preprocess refuses the value sent, or None."""
    for block, value in zip(block_fn.inputs, inputs):
        if _takes_files(block) or getattr(block, "stateful", False):
            continue
        try:
            block.preprocess(value)
        except Exception:  # noqa: BLE001 - this is the search for the one that fails
            return block
    return None


class Blocks(gr.Blocks):
    """gr.Blocks whose refusals before a handler runs are sentences."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error as err:  # a slider's or number box's bounds (Gradio's sentence names no field)
            block = _failing_block(block_fn, list(inputs))
            if block is None:
                raise
            low, high = getattr(block, "minimum", None), getattr(block, "maximum", None)
            within = f"a value from {low:g} to {high:g}" if low is not None and high is not None else "another value"
            refuse(ConfigError(f"{_label(block)}: {err.message.rstrip('.')}; type {within}."))
        except InvalidPathError:
            field = next((_label(b) for b in block_fn.inputs if _takes_files(b)), "The file")
            refuse(ConfigError(f"{field}: that file was not uploaded through this page, so the server does not "
                               "read it. Upload it with the file box."))
        except (ValueError, TypeError) as err:
            block = _failing_block(block_fn, list(inputs))
            where = f"{_label(block)} got" if block is not None else "One of the fields got"
            refuse(ConfigError(f"{where} a value it cannot take ({type(err).__name__}); type it again, or reload "
                               "the page."))
