"""Error types that carry a sentence a person can act on.

Everything the UI or the CLI may show to a user derives from `GPTError`,
so callers catch one type and print `str(err)` instead of a traceback.
"""


class GPTError(ValueError):
    """A problem with the user's input or files, explained in plain words."""


class ConfigError(GPTError):
    """A model or training setting that cannot work (e.g. n_embd % n_head != 0)."""


class DataError(GPTError):
    """A corpus that is missing, empty, too short, too large or not UTF-8 text."""


class TokenizerError(GPTError):
    """Text the tokenizer cannot encode, or a tokenizer that cannot be built."""


class CheckpointError(GPTError):
    """A run folder or checkpoint file that is missing, corrupt or unsafe."""


class SamplingError(GPTError):
    """Sampling settings out of range (temperature, top-k, top-p, length)."""


class TrainingError(GPTError):
    """A training run that had to stop (NaN loss, a second writer, ...)."""


class ConvertError(CheckpointError):
    """A model that cannot cross to or from another format (transformers, nanoGPT), with what is missing."""
