"""The page's look: its theme and fonts, every module's CSS in one string for `launch(css=...)`, and the words at the top.

Fonts. Gradio's default theme asks for Source Sans Pro and IBM Plex Mono at
weights 400 and 600, served from its own package (no Google Fonts, so an
offline room loses nothing). But the 600 files Gradio 6.31 ships are stubs:
SourceSansPro-SemiBold.woff2 holds 55 glyphs (space, 'A', 'B' and their
variants), IBMPlexMono-SemiBold.woff2 75 (space, 'a', 'b'). Every semibold
heading and label drew its 'A' and 'B' from the stub and every other letter
from whatever sans-serif the system had: "ʙuild a GPT", "ᴀpply limits". The
400 and 700 files are whole (1,615 and 750 glyphs), so `THEME` asks for 400
and 700 only; text at 600 is drawn with the 700 face (CSS picks the nearest
heavier weight), the same family as the rest. `tests/test_page_look.py` checks
every face the page asks for against the letters it must draw.
"""

import gradio as gr

from .frames import PROGRESS_CSS
from .paste import PASTE_CSS
from .projector import PROJECTOR_CSS
from .token_html import TOKENS_CSS
from .views import VIEWS_CSS

WHOLE_WEIGHTS = (400, 700)  # the weights whose font files Gradio ships complete
THEME = gr.themes.Default(
    font=(gr.themes.LocalFont("Source Sans Pro", weights=WHOLE_WEIGHTS), "ui-sans-serif", "system-ui", "sans-serif"),
    font_mono=(gr.themes.LocalFont("IBM Plex Mono", weights=WHOLE_WEIGHTS), "ui-monospace", "Consolas", "monospace"),
)

CSS = TOKENS_CSS + PROGRESS_CSS + PASTE_CSS + VIEWS_CSS + PROJECTOR_CSS + """
#start-btn { font-size: 1.25rem; min-height: 3.2rem; }
/* a slider's label keeps one line and its number box moves under it when the column is narrow (three sliders
   in a row at the projector's 18 px broke "Top-p (1 = off)" over three lines) */
#gen-controls .head, #settings .head { flex-wrap: wrap; row-gap: 2px; }
#gen-controls .head label, #settings .head label { white-space: nowrap; }
.msg-error { color: #b91c1c; font-weight: 600; }
/* a 768-pixel-high screen shows the Chat tab's message box and Send without scrolling */
@media (max-height: 820px) { #chatbot { height: 280px !important; max-height: 280px !important; } }
"""
INTRO = """# Build a GPT
Train a small GPT from scratch on a text, watch it learn, then make it write.
**Start training** works as it is (Tiny Shakespeare, the two-minute recipe); the **Generate** tab
already holds a trained model, and your run joins it as soon as it saves its first checkpoint."""
