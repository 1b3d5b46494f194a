"""The projector view: bigger type, and what the class watches first, for a room behind a 1366x768 beamer.

One checkbox at the top of the page toggles a `projector` class on the
page's <body>; the CSS below does the rest, so nothing is re-rendered and no
server round trip is needed. The choice is kept in the browser's
localStorage (per browser, like the page's id), and read back when the page
loads.

What changes with it on:
- body text 18 px and up (labels, inputs, tables, the progress line);
- the intro and the runtime line fold away;
- on the Train tab, Start, the progress line and the live curve come first,
  the settings below them, so Start and the curve fit a 768-pixel screen;
- tables wrap instead of cutting columns off (the Tokenizers and Compare
  tables did at 1366 px).
"""

from __future__ import annotations

import gradio as gr

from .page import PRIVATE, Page

STORAGE_KEY = "gpt-projector"
APPLY = f"""(on) => {{
  document.body.classList.toggle('projector', !!on);
  try {{ localStorage.setItem('{STORAGE_KEY}', on ? '1' : ''); }} catch (e) {{}}
  return on;
}}"""
READ = f"""() => {{
  let on = false;
  try {{ on = localStorage.getItem('{STORAGE_KEY}') === '1'; }} catch (e) {{}}
  document.body.classList.toggle('projector', on);
  return on;
}}"""

PROJECTOR_CSS = """
body.projector .gradio-container {
  --text-xs: 15px; --text-sm: 17px; --text-md: 18px; --text-lg: 20px; --text-xl: 24px; --text-xxl: 28px;
  --block-label-text-size: 17px; --block-info-text-size: 16px; --input-text-size: 18px;
  --section-header-text-size: 20px; --button-large-text-size: 22px; --button-medium-text-size: 19px;
  font-size: 18px;
}
body.projector .gradio-container .prose, body.projector .gradio-container .prose p,
body.projector .gradio-container .prose li, body.projector .gradio-container .prose td,
body.projector .gradio-container .prose th { font-size: 18px; }
body.projector .gradio-container [data-testid="block-info"], body.projector .gradio-container label > span,
body.projector .gradio-container .label-wrap span { font-size: 17px; }
body.projector #intro, body.projector #runtime, body.projector #display-name-row { display: none; }
/* the Chat tab: the message box and Send on the first screen (its intro is the Lesson's to say) */
body.projector #chat-intro { display: none; }
body.projector #chatbot { height: 250px !important; max-height: 250px !important; }
body.projector #train-tab { display: flex; flex-direction: column; }
body.projector #watch-area { order: -1; }
body.projector #train-settings { order: 1; }
body.projector .run-line, body.projector .run-message { font-size: 19px; }
body.projector #loss-plot, body.projector #compare-plot { min-height: 0; }
body.projector textarea { font-size: 19px; line-height: 1.4; }
/* tables wrap: a column is never cut off */
.tok-compare { table-layout: auto; }
.tok-compare td:nth-child(2) { overflow-wrap: anywhere; }
#tok-table { overflow-x: auto; }
#cmp-table table { table-layout: auto !important; width: 100% !important; }
#cmp-table th, #cmp-table td { min-width: max-content; white-space: nowrap; }
#cmp-table .table-wrap, #cmp-table .table-container { overflow-x: auto; }
"""


def build_projector_toggle(page: Page) -> gr.Checkbox:
    """The checkbox (place it where it should appear); its state is read back from the browser on load."""
    toggle = gr.Checkbox(False, label="Projector view (bigger type, the curve first)", container=False,
                         elem_id="projector-toggle")
    toggle.input(None, toggle, None, js=APPLY, **PRIVATE)
    page.on_load.append(dict(fn=None, inputs=None, outputs=toggle, js=READ, **PRIVATE))
    return toggle
