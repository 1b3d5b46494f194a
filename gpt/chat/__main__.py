"""`python -m gpt.chat finetune | rl | eval | ask` (the command line is `gpt.chat.cli`)."""

import sys

from .cli import main

sys.exit(main())
