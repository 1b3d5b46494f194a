"""`python -m gpt.train`, as nanoGPT's train.py is run (the CLI is `gpt.train.cli`)."""

import sys

from .cli import main

sys.exit(main())
