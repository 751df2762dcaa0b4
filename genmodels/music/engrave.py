"""Sheet music as SVG, engraved on the server by Verovio from the melody's MusicXML.

Verovio's wheel carries its music fonts, so nothing is fetched from the network: the SVG draws
every glyph from definitions inside itself. The continuation (notes from index `prompt_notes` on)
is coloured through MusicXML's note `color`, which Verovio draws on note heads, stems and
accidentals. A long tune is laid out on one tall page; if Verovio still needs more, the pages'
SVGs are joined one under the other.
"""

from __future__ import annotations

import os
import re
import threading

from genmodels.core.errors import NotationError
from genmodels.music import Melody
from genmodels.music.musicxml import CONTINUATION_COLOR, musicxml_bytes

_OPTIONS = {
    "pageWidth": 2100,  # in Verovio's units (tenths of a mm at scale 100)
    "pageHeight": 60000,  # Verovio's maximum: one page for any tune the app makes
    "adjustPageHeight": True,
    "breaks": "auto",
    "scale": 40,
    "header": "none",
    "footer": "none",
    "svgViewBox": True,  # scales with the width of its container
    "xmlIdSeed": 1,  # the same melody gives the same SVG
}
_LOCK = threading.Lock()  # one toolkit at a time: Verovio keeps global state for its resources
_NOTE_RE = re.compile(r'<g\b[^>]*\bclass="note\b')
# A tie across a system break is drawn twice: its second half is a "spanning" copy, not another tie.
_TIE_RE = re.compile(r'<g\b[^>]*\bclass="tie(?![^"]*\bspanning\b)')


def render_svg_pages(
    melody: Melody,
    title: str | None = None,
    prompt_notes: int | None = None,
    color: str = CONTINUATION_COLOR,
    page_width: int = 2100,
) -> list[str]:
    """The score as one SVG document per Verovio page (normally one)."""
    data = musicxml_bytes(melody, title, prompt_notes=prompt_notes, color=color).decode("utf-8")
    return render_musicxml_pages(data, page_width)


def render_musicxml_pages(data: str, page_width: int = 2100) -> list[str]:
    """Any MusicXML document (a melody, a four-part harmony) engraved as one SVG per Verovio page."""
    import verovio

    with _LOCK:
        # The wheel sets its font folder on import, for the importing thread only: a Streamlit script
        # runs in other threads, where the toolkit would look for fonts in the wheel's build folder.
        verovio.setDefaultResourcePath(os.path.join(os.path.dirname(verovio.__file__), "data"))
        tk = verovio.toolkit()
        tk.setOptions({**_OPTIONS, "pageWidth": int(page_width)})
        if not tk.loadData(data):
            raise NotationError("Verovio could not read the MusicXML of the score")
        return [tk.renderToSVG(p) for p in range(1, tk.getPageCount() + 1)]


def render_svg(
    melody: Melody,
    title: str | None = None,
    prompt_notes: int | None = None,
    color: str = CONTINUATION_COLOR,
    page_width: int = 2100,
) -> str:
    """The score as SVG markup (pages joined one under the other, each in its own <svg>)."""
    return "\n".join(render_svg_pages(melody, title, prompt_notes, color, page_width))


def svg_note_count(svg: str) -> int:
    """Written notes in a Verovio SVG (`<g class="note">`); a note tied over a bar line counts twice."""
    return len(_NOTE_RE.findall(svg))


def svg_tie_count(svg: str) -> int:
    """Ties drawn in a Verovio SVG: svg_note_count - svg_tie_count is the melody's note count."""
    return len(_TIE_RE.findall(svg))


def svg_repeat_signs(svg: str) -> tuple[int, int]:
    """(volta brackets, repeat dots) drawn in a Verovio SVG: first and second endings, and the dots of repeat
    barlines (SMuFL's repeatDot glyph, E044)."""
    return len(re.findall(r'class="voltaBracket\b', svg)), len(re.findall(r'xlink:href="#E044-', svg))
