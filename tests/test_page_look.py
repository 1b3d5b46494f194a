"""Every font face the page asks for draws every letter and digit (issue 24, 11: "ʙuild a GPT", "ᴀpply limits").

Gradio's default theme asked for weight 600 of Source Sans Pro and IBM Plex Mono, whose files in Gradio
6.31 hold only a few dozen glyphs; every other letter of a semibold heading came from another font.
The theme (gpt/ui/theme.py) asks for the whole weights only; this reads each face's file, as the
browser would fetch it from Gradio's static folder, and checks its character map.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import gradio
import pytest

from gpt.ui.theme import THEME

TTFont = pytest.importorskip("fontTools.ttLib").TTFont
pytest.importorskip("brotli")  # woff2 is brotli-compressed
FRONTEND = Path(gradio.__file__).parent / "templates" / "frontend"
FACE = re.compile(r"src: url\('([^']+)'\).*?font-weight: (\d+)", re.S)
MUST_DRAW = string.ascii_letters + string.digits + ".,:;!?()'-"


def faces() -> list[tuple[str, int, Path]]:
    """(family, weight, file) of each @font-face the theme's fonts declare."""
    found = []
    for font in (*THEME._font, *THEME._font_mono):
        sheet = font.stylesheet() if hasattr(font, "stylesheet") else None
        for url, weight in FACE.findall((sheet or {}).get("css") or ""):
            found.append((font.name, int(weight), FRONTEND / url))
    return found


def test_the_page_asks_for_its_two_families_at_whole_weights_only():
    assert {(family, weight) for family, weight, _ in faces()} == {
        ("Source Sans Pro", 400), ("Source Sans Pro", 700), ("IBM Plex Mono", 400), ("IBM Plex Mono", 700)}


@pytest.mark.parametrize("family, weight, path", faces(), ids=lambda v: str(v) if not isinstance(v, Path) else "")
def test_each_face_draws_every_letter(family, weight, path):
    assert path.is_file(), f"{family} {weight}: {path} is not shipped"
    cmap = TTFont(path).getBestCmap()
    missing = [c for c in MUST_DRAW if ord(c) not in cmap]
    assert not missing, f"{family} {weight} ({path.name}) cannot draw {''.join(missing)!r}"
