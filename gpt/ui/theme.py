"""The page's look: every module's CSS in one string for `launch(css=...)`, and the words at the top."""

from .frames import PROGRESS_CSS
from .projector import PROJECTOR_CSS
from .token_html import TOKENS_CSS
from .views import VIEWS_CSS

CSS = TOKENS_CSS + PROGRESS_CSS + VIEWS_CSS + PROJECTOR_CSS + """
#start-btn { font-size: 1.25rem; min-height: 3.2rem; }
.msg-error { color: #b91c1c; font-weight: 600; }
"""
INTRO = """# Build a GPT
Train a small GPT from scratch on a text, watch it learn, then make it write.
**Start training** works as it is (Tiny Shakespeare, the two-minute recipe); the **Generate** tab
already holds a trained model, and your run joins it as soon as it saves its first checkpoint."""
