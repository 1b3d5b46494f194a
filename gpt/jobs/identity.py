"""Moved to `gpt.jobs.signing` (what it is: signed owner tokens); this name stays until the scheduler imports that."""

from .signing import IdentityError, Signer, account_owner  # noqa: F401
