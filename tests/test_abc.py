"""ABC and MusicXML exports: the text written, and the melody music21 reads back from each."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from genmodels.core.errors import NotationError
from genmodels.music import Melody, Note
from genmodels.music.abc import abc_length, abc_pitch_name, to_abc
from genmodels.music.bars import bar_events, compare, read_back
from genmodels.music.musicxml import musicxml_bytes
from genmodels.music.roundtrip import check_abc, check_musicxml, roundtrip_report
from genmodels.music.scales import map_to_mode, with_key


def jig() -> Melody:
    """G-major 6/8 jig: a one-eighth pickup (D), a C# and C natural in one bar, a rest, a tie over the bar."""
    notes = [
        (62, 30, 6),
        (67, 36, 12),
        (71, 48, 6),
        (74, 54, 18),
        (72, 72, 6),
        (73, 78, 6),
        (72, 84, 6),
        (71, 90, 24),
        (69, 120, 6),
        (67, 126, 12),
    ]
    return Melody([Note(*n) for n in notes], meter=(6, 8), key=(7, "major"), tempo=100)


def dorian_reel() -> Melody:
    """A dorian 4/4 tune with a triplet, an F# (outside D dorian) and a long tied note."""
    notes = [
        (62, 0, 12),
        (65, 12, 6),
        (66, 18, 6),
        (69, 24, 12),
        (71, 36, 12),
        (74, 48, 4),
        (72, 52, 4),
        (71, 56, 4),
        (69, 60, 12),
        (65, 72, 6),
        (62, 84, 36),
    ]
    return with_key(Melody([Note(*n) for n in notes], meter=(4, 4), tempo=112), 2, "dorian")


def minor_waltz() -> Melody:
    """A C-major waltz mapped to A minor, with a rest at the start of a bar and a raised seventh."""
    notes = [
        (60, 0, 12),
        (64, 12, 12),
        (67, 24, 12),
        (72, 36, 24),
        (71, 60, 12),
        (69, 84, 12),
        (67, 96, 18),
        (66, 114, 6),
        (67, 120, 12),
        (60, 132, 12),
    ]
    return map_to_mode(Melody([Note(*n) for n in notes], meter=(3, 4), key=(0, "major")), 9, "minor")


MELODIES = {"jig": jig, "dorian_reel": dorian_reel, "minor_waltz": minor_waltz}


def parse_abc(text: str):
    from music21 import converter

    return converter.parse(text, format="abc")


def test_jig_abc_text():
    text = to_abc(jig(), title="A jig", number=3)
    head, body = text.split("K:G\n")
    assert head.splitlines() == ["X:3", "T:A jig", "M:6/8", "L:1/8", "Q:1/4=100"]
    bars = [b.strip() for b in body.replace("\n", " ").split("|") if b.strip()]
    assert bars[0] == "D"  # the pickup bar: only the upbeat, no leading rest
    assert bars[1] == "G2B d3"
    assert bars[2] == "c^c=c B3-"  # explicit C natural after C# in the bar; tied over the line
    assert bars[3] == "BzA G2"
    assert text.endswith("|]\n")


@pytest.mark.parametrize("name", sorted(MELODIES))
def test_abc_reads_back_the_same(name):
    mel = MELODIES[name]()
    back = read_back(parse_abc(to_abc(mel)))
    assert compare(mel, back) is None
    assert back.key == mel.key and back.meter == mel.meter and back.tempo == mel.tempo


@pytest.mark.parametrize("name", sorted(MELODIES))
def test_musicxml_reads_back_the_same(name):
    from music21 import converter

    mel = MELODIES[name]()
    data = musicxml_bytes(mel, title=name)
    assert data.startswith(b"<?xml")
    back = read_back(converter.parseData(data, format="musicxml"))
    assert compare(mel, back) is None and back.key == mel.key and back.tempo == mel.tempo


def test_musicxml_marks_pickup_mode_ties_and_colour():
    data = musicxml_bytes(jig(), prompt_notes=4).decode()
    assert '<measure implicit="yes" number="0">' in data
    assert "<mode>major</mode>" in data and "<fifths>1</fifths>" in data
    assert data.count('<tie type="start"') == 1 and data.count('<tie type="stop"') == 1
    assert len(re.findall(r'<note color="#', data)) == 7  # notes 5-10, the B tied over the bar twice
    assert "<mode>dorian</mode>" in musicxml_bytes(dorian_reel()).decode()


def test_dorian_key_field_and_triplet():
    text = to_abc(dorian_reel())
    assert "K:Ddor" in text
    assert "(3dcB" in text and "F^F" in text and "D2- | D4 |]" in text


def test_accidentals_are_explicit_after_any_accidental_of_that_letter_in_the_bar():
    pitches = [61, 60, 73, 72, 61, 60, 60, 61, 60, 61]
    mel = Melody([Note(p, i * 6, 6) for i, p in enumerate(pitches)], key=(0, "major"))
    text = to_abc(mel)
    assert "^C=C ^c=c ^C=C =C^C | C^C |]" in text  # the next bar starts clean
    back = read_back(parse_abc(text))
    assert [n[0] for n in back.notes] == mel.pitches


def test_leading_rest_without_pickup_and_long_rests():
    mel = Melody([Note(67, 60, 12), Note(69, 120, 6)], meter=(4, 4), key=(0, "major"))
    text = to_abc(mel)
    assert text.endswith("K:C\nz8 | z2 G2 z4 | z4 A |]\n")
    assert compare(mel, read_back(parse_abc(text))) is None


def test_forced_pickup_off_writes_the_silence():
    mel = jig()
    assert to_abc(mel, pickup=False).split("K:G\n")[1].startswith("z4zD | G2B d3 |")
    assert compare(mel, read_back(parse_abc(to_abc(mel, pickup=False)))) is None


def test_lengths_and_octaves():
    assert [abc_length(t) for t in (6, 12, 3, 9, 18, 24, 36)] == ["", "2", "/2", "3/2", "3", "4", "6"]
    assert [abc_pitch_name(p, letter) for p, letter in ((60, "C"), (72, "C"), (84, "C"), (48, "C"), (71, "B"))] == [
        "C",
        "c",
        "c'",
        "C,",
        "B",
    ]


def test_odd_triplet_lengths_are_tied_values_inside_the_group():
    """5 + 7 ticks (a triplet eighth and 16th, tied) and 1-tick notes (triplet 32nds) from the corpus."""
    odd = Melody(
        [Note(60, 0, 5), Note(62, 5, 7), Note(64, 12, 1), Note(65, 13, 1), Note(67, 14, 10), Note(69, 24, 24)],
        key=(0, "major"),
    )
    text = to_abc(odd)
    assert "(3:2:4C-C/4D3/2-D/4" in text and "(3:2:4E/4F/4G2-G/2" in text
    assert compare(odd, read_back(parse_abc(text))) is None


def test_triplet_over_the_bar_line_is_a_typed_error():
    mel = Melody([Note(60, 0, 44), Note(62, 44, 8)], meter=(4, 4), key=(0, "major"))
    with pytest.raises(NotationError, match="ABC cannot express the triplet lengths from bar 2, beat 1"):
        to_abc(mel)


def test_header_text_is_one_line():
    text = to_abc(jig(), title="Two\nlines 100%")
    assert "T:Two lines 100\\%" in text.splitlines()


def test_bar_events_split_at_bar_lines():
    bars = bar_events(jig())
    assert [(e.pitch, e.start, e.ticks, e.tie, e.tied) for e in bars[2]][-1] == (71, 18, 18, True, False)
    assert [(e.pitch, e.start, e.ticks, e.tie, e.tied) for e in bars[3]][0] == (71, 0, 6, False, True)


def test_roundtrip_report_counts_and_explains_failures():
    odd = Melody([Note(60, 0, 44), Note(62, 44, 8)], meter=(4, 4), key=(0, "major"))
    report = roundtrip_report([("jig", jig()), ("odd", odd)])
    assert report.checked == {"abc": 2, "musicxml": 2}
    assert report.passed["abc"] == 1 and report.failures["abc"][0][0] == "odd"
    assert "NotationError" in report.failures["abc"][0][1]
    assert "abc: 1/2" in report.summary()
    assert check_abc(jig()) is None and check_musicxml(jig()) is None


def rest_bars_at_the_end() -> list[Melody]:
    """Melodies whose rests after the last note (``length``) fill whole bars and part of a bar."""
    return [
        Melody([Note(60, 0, 48), Note(62, 48, 48)], meter=(4, 4), key=(0, "major"), length=4 * 48),
        Melody([Note(67, 0, 12), Note(69, 12, 24)], meter=(3, 4), key=(7, "major"), length=3 * 36),
        Melody([Note(62, 0, 12), Note(64, 12, 6)], meter=(6, 8), key=(2, "minor"), length=3 * 36),
    ]


def abc_measures(text: str) -> int:
    return len(parse_abc(text).parts[0].getElementsByClass("Measure"))


@pytest.mark.parametrize("k", range(3))
def test_rests_after_the_last_note_are_written_and_read_back(k):
    """Bars of rest at the end are written as rests, so music21 reads as many bars as MusicXML keeps."""
    from music21 import converter

    mel = rest_bars_at_the_end()[k]
    text = to_abc(mel)
    xml = converter.parseData(musicxml_bytes(mel), format="musicxml")
    assert abc_measures(text) == len(xml.parts[0].getElementsByClass("Measure")) == mel.n_bars
    assert compare(mel, read_back(parse_abc(text))) is None
    body = text.split("\nK:")[1].split("\n", 1)[1]
    assert all(bar.strip() for bar in body.replace("|]", "").replace("\n", "").split("|")), "no empty bars"


@pytest.mark.skipif(not shutil.which("abc2midi"), reason="abc2midi is not installed")
@pytest.mark.parametrize("k", range(3))
def test_abc2midi_plays_the_melody_and_its_closing_rests(k, tmp_path):
    import mido
    import pretty_midi

    mel = rest_bars_at_the_end()[k]
    (tmp_path / "t.abc").write_text(to_abc(mel))
    subprocess.run(["abc2midi", "t.abc", "-o", "t.mid"], cwd=tmp_path, check=True, capture_output=True)
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "t.mid"))
    sec = 60 / mel.tempo / 12
    played = sorted((n.start, n.pitch) for i in pm.instruments for n in i.notes)
    assert [p for _, p in played] == mel.pitches
    assert [round(s / sec) for s, _ in played] == [n.start for n in mel.notes]
    assert mido.MidiFile(str(tmp_path / "t.mid")).length == pytest.approx(mel.end * sec, abs=0.1), "the rests play"
