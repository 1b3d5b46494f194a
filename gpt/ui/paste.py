"""Pasting a long text into the Train tab's box without freezing the page.

Where the time went (Chromium, this project's 2-core machine, `bench/bench_paste.py`): a
browser's own paste into a <textarea> inserts the text line by line through its
editing machinery, ~6 s per MB (1 MB: 6.0 s; 5 MB: 22 s), on a plain textarea as on
Gradio's, and the page is frozen meanwhile. Setting the box's value takes ~0.15 s for
1 MB. The server's part, once the box is left (statistics, the preview, a BPE trained
on the text), runs with the page responsive and its usual spinner.

So a paste of more than `FAST_PASTE_CHARS` characters is taken over: the text goes
into the box in one assignment (at the cursor, replacing the selection), Gradio hears
the usual 'input' event, and a line under the box says how much arrived and what to
do next. A paste over the server's upload limit (GPT_MAX_UPLOAD_MB) is refused at once,
with the sentence the server would give, and the box keeps what it had. A short paste
is left to the browser (its undo history stays). Nothing here reaches the server.
"""

from __future__ import annotations

import json

FAST_PASTE_CHARS = 100_000  # below this the browser's own paste takes well under a second
BOX = "corpus-paste"  # the Train tab's "Your text" box
NOTE = "paste-note"  # the line the script adds under it


def paste_script(max_bytes: int) -> str:
    """The page-load script that takes over long pastes into #corpus-paste (installed once per page)."""
    settings = json.dumps({"box": BOX, "note": NOTE, "fast": FAST_PASTE_CHARS, "max": max_bytes})
    return """() => {
  const s = %s;
  if (window.__gptPaste) return;
  window.__gptPaste = true;
  const mb = (n) => (n / 1048576).toFixed(1) + ' MB';
  const say = (box, text, bad) => {
    let note = document.getElementById(s.note);
    if (!note) { note = document.createElement('div'); note.id = s.note; box.closest('#' + s.box).appendChild(note); }
    note.className = bad ? 'msg-error' : 'paste-ok';
    note.textContent = text;
  };
  document.addEventListener('paste', (e) => {
    const box = e.target;
    if (!(box instanceof HTMLTextAreaElement) || !box.closest('#' + s.box)) return;
    const text = e.clipboardData ? e.clipboardData.getData('text/plain') : '';
    if (text.length <= s.fast) return;
    e.preventDefault();
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > s.max) {
      say(box, 'This text is ' + mb(bytes) + ', over this server\\'s ' + mb(s.max) + ' limit (GPT_MAX_UPLOAD_MB): '
          + 'paste or upload a shorter text.', true);
      return;
    }
    const v = box.value, a = box.selectionStart, b = box.selectionEnd;
    box.value = v.slice(0, a) + text + v.slice(b);
    box.selectionStart = box.selectionEnd = a + text.length;
    box.dispatchEvent(new Event('input', {bubbles: true}));
    say(box, 'Pasted ' + text.length.toLocaleString('en') + ' characters (' + mb(bytes) + '). Click outside the box: '
        + 'the statistics and the preview follow (a long text takes a few seconds; Upload a .txt file is the other '
        + 'way in).', false);
  }, true);
}""" % settings


PASTE_CSS = """
#paste-note { margin-top: 6px; font-size: 14px; }
#paste-note.paste-ok { color: #166534; }
"""
