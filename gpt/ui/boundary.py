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
traceback. `Blocks` (the app's `gr.Blocks`) catches them there and raises
the sentence instead; what the request asked for still does not happen.
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


def _failing_field(block_fn, inputs: list) -> str:
    """The label of the first plain (file-less) input whose own preprocess refuses the value sent."""
    for block, value in zip(block_fn.inputs, inputs):
        if _takes_files(block) or getattr(block, "stateful", False):
            continue
        try:
            block.preprocess(value)
        except Exception:  # noqa: BLE001 - this is the search for the one that fails
            return _label(block)
    return ""


class Blocks(gr.Blocks):
    """gr.Blocks whose refusals before a handler runs are sentences."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except InvalidPathError:
            field = next((_label(b) for b in block_fn.inputs if _takes_files(b)), "The file")
            refuse(ConfigError(f"{field}: that file was not uploaded through this page, so the server does not "
                               "read it. Upload it with the file box."))
        except (ValueError, TypeError) as err:
            field = _failing_field(block_fn, list(inputs))
            where = f"{field} got" if field else "One of the fields got"
            refuse(ConfigError(f"{where} a value it cannot take ({type(err).__name__}); type it again, or reload "
                               "the page."))
