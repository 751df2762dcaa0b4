"""Text as the pages show it: Markdown that shows exactly what a stranger typed (``plain``), the prompt and its
continuation as HTML, tokens coloured by probability, the engraved score as an image, safe file names."""

from __future__ import annotations

import base64
import html
import re

from genmodels.music.notation import KEY_NAMES

CONTINUATION_COLOUR = "#b3135b"


PROMPT_COLOUR = "#8a8a8a"


def plain(text: object) -> str:
    """Markdown that shows ``text`` exactly as written: every ASCII punctuation mark is backslash-escaped
    (CommonMark allows that for each one), so a link, an image, HTML, a colour directive, an emoji shortcode
    or LaTeX from a link, a file or a track name is shown as characters, never rendered. Line breaks stay."""
    s = re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", str(text))
    return s.replace("  ", "\u00a0\u00a0").replace("\n", "  \n")


def sanitise_filename(name: str) -> str:
    """A safe file name: letters, digits, dot, dash, underscore; '#' becomes 'sharp'."""
    name = name.replace("#", "sharp")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return (name or "melody")[:120]


def key_label(key: tuple[int, str]) -> str:
    return f"{KEY_NAMES[key[0] % 12]} {key[1]}"


def show_piece(piece: str) -> str:
    """A token as a chart label: spaces and newlines made visible."""
    return piece.replace("\n", "⏎").replace(" ", "·") or "∅"


# ---------------------------------------------------------------------------------------------
# Text as HTML (always escaped)
# ---------------------------------------------------------------------------------------------
_BOX = (
    "font-family: Georgia, 'Times New Roman', serif; font-size: 1.05rem; line-height: 1.6; "
    "white-space: pre-wrap; word-wrap: break-word; margin: 0;"
)


def prompt_tail(prompt: str, chars: int = 600) -> str:
    return prompt if len(prompt) <= chars else "…" + prompt[-chars:]


def text_html(prompt: str, continuation: str) -> str:
    """Seed in grey, continuation bold and coloured; everything HTML-escaped."""
    return (
        f'<div class="gm-text" style="{_BOX}">'
        f'<span class="gm-prompt" style="color:{PROMPT_COLOUR}">{html.escape(prompt_tail(prompt))}</span>'
        f'<span class="gm-cont" style="color:{CONTINUATION_COLOUR};font-weight:600">'
        f"{html.escape(continuation)}</span></div>"
    )


def prob_colour(p: float) -> str:
    """Background for a token of probability ``p``: red (surprising) → yellow → green (expected)."""
    p = min(max(p, 0.0), 1.0)
    hue = int(120 * p**0.5)
    return f"hsl({hue}, 75%, 82%)"


def tokens_html(prompt: str, tokens: list[tuple[str, float]]) -> str:
    """The continuation with every token's background coloured by its probability (hover for the value)."""
    spans = "".join(
        f'<span title="p = {p:.3f}" style="background:{prob_colour(p)};border-radius:3px;'
        f'color:#111">{html.escape(piece)}</span>'
        for piece, p in tokens
    )
    return (
        f'<div class="gm-text" style="{_BOX}">'
        f'<span style="color:{PROMPT_COLOUR}">{html.escape(prompt_tail(prompt, 200))}</span>{spans}</div>'
    )


PROB_LEGEND = (
    '<div style="font-size:0.8rem;color:#666">Colour = the model\'s probability of the token it picked: '
    f'<span style="background:{prob_colour(0.02)};padding:0 4px">unlikely</span> '
    f'<span style="background:{prob_colour(0.25)};padding:0 4px">possible</span> '
    f'<span style="background:{prob_colour(0.9)};padding:0 4px">expected</span> '
    "(hover a word for its probability).</div>"
)


SCORE_PREFIX = "data:image/svg+xml;base64,"


def score_html(svg: str, alt: str = "score") -> str:
    """The engraved score as an image in the page. ``st.html`` sanitises its HTML and drops inline
    ``<svg>``; an ``<img>`` with the SVG as a data URI is shown as drawn (fonts embedded, nothing fetched).
    ``alt``: the image's text (the harmony's score is "harmony score")."""
    data = base64.b64encode(svg.encode()).decode()
    img = f'<img alt="{html.escape(alt)}" src="{SCORE_PREFIX}{data}" style="max-width:100%">'
    return f'<div class="gm-score" style="overflow-x:auto;background:white">{img}</div>'


def score_svg(html: str) -> str:
    """The SVG inside ``score_html``'s output (tests read the score back this way)."""
    return base64.b64decode(html.split(SCORE_PREFIX, 1)[1].split('"', 1)[0]).decode()
