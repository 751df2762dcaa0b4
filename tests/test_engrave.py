"""The engraved score: Verovio SVG from the melody's MusicXML, offline, with the continuation coloured."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("verovio")

from genmodels.music import Melody, Note  # noqa: E402
from genmodels.music.engrave import render_svg, render_svg_pages, svg_note_count, svg_tie_count  # noqa: E402
from genmodels.music.musicxml import CONTINUATION_COLOR  # noqa: E402
from tests.test_abc import dorian_reel, jig, minor_waltz  # noqa: E402


@pytest.fixture(scope="module")
def jig_svg() -> str:
    return render_svg(jig(), title="A jig", prompt_notes=4)


def test_svg_counts_every_note(jig_svg):
    mel = jig()
    assert jig_svg.lstrip().startswith("<svg")
    assert svg_tie_count(jig_svg) == 1  # the B held over the bar line
    assert svg_note_count(jig_svg) - svg_tie_count(jig_svg) == len(mel.notes)


@pytest.mark.parametrize("make", [dorian_reel, minor_waltz])
def test_svg_note_count_other_tunes(make):
    mel = make()
    svg = render_svg(mel)
    assert svg_note_count(svg) - svg_tie_count(svg) == len(mel.notes)


def test_continuation_is_coloured(jig_svg):
    coloured = re.findall(r'<g\b[^>]*class="note"[^>]*color="' + CONTINUATION_COLOR, jig_svg)
    assert len(coloured) == 7  # notes 5-10, the tied B drawn twice
    assert svg_note_count(jig_svg) - len(coloured) == 4


def test_score_marks(jig_svg):
    for cls in ("clef", "keySig", "meterSig", "barLine", "rest", "tie", "accid"):
        assert f'class="{cls}"' in jig_svg, cls


def test_svg_loads_nothing_from_outside(jig_svg):
    refs = re.findall(r'(?:href|src)="([^"]*)"', jig_svg) + re.findall(r"url\(([^)]*)\)", jig_svg)
    assert all(r.startswith(("#", "data:")) for r in refs), [r[:40] for r in refs]  # glyphs, embedded font
    assert not re.findall(r"https?://(?!www\.w3\.org/)", jig_svg)
    assert "<image" not in jig_svg and "@import" not in jig_svg


def test_long_tune_is_one_document():
    mel = Melody([Note(60 + (i * 5) % 12, i * 12, 12) for i in range(400)], meter=(4, 4))
    pages = render_svg_pages(mel)
    svg = "\n".join(pages)
    assert len(pages) == 1
    assert svg_note_count(svg) == 400


def test_same_melody_same_svg():
    assert render_svg(minor_waltz()) == render_svg(minor_waltz())
