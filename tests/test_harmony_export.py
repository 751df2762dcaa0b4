"""Exports of a four-part harmony: MIDI with one track per voice, MusicXML in four parts, the Verovio score on
two staves with chord symbols, and audio. Checked by reading every export back."""

from __future__ import annotations

import io
import wave

import numpy as np
import pretty_midi
import pytest

from genmodels.core.errors import NotationError, SettingsError
from genmodels.harmony import export
from genmodels.harmony.grid import Chorale, VoiceNote, row_from_notes
from genmodels.music.engrave import svg_note_count, svg_tie_count

STEPS = 44  # a one-beat pickup, two full bars of 4/4 and a bar of three beats


def voice(*notes: tuple[int, int, int]) -> tuple[int, ...]:
    return row_from_notes([VoiceNote(p, s, n) for p, s, n in notes], STEPS)


def pickup_chorale() -> Chorale:
    """G major, 4/4, a one-beat pickup (offset 12); notes held over bar lines, a rest in the tenor, a fermata,
    an F natural (a chromatic note) in the alto after an F sharp."""
    soprano = voice((67, 0, 4), (69, 4, 4), (71, 8, 4), (69, 12, 4), (67, 16, 4), (66, 20, 8), (67, 28, 16))
    alto = voice((62, 0, 4), (62, 4, 4), (66, 8, 4), (65, 12, 4), (64, 16, 12), (62, 28, 16))
    tenor = voice((59, 0, 4), (55, 4, 8), (57, 16, 6), (57, 22, 6), (59, 28, 16))
    bass = voice((43, 0, 4), (43, 4, 10), (48, 14, 2), (50, 16, 12), (43, 28, 16))
    return Chorale((soprano, alto, tenor, bass), meter=(4, 4), tonic=7, offset=12, fermatas=(28,), id="test")


@pytest.fixture
def fake_chords(monkeypatch):
    """Fixed chord symbols in place of the chord namer's: a B flat chord over a B natural (spelling is the export's
    job, whatever the names)."""
    symbols = [(0, "G"), (4, "G"), (8, "Bbdim"), (12, "D7"), (16, "Bm"), (20, "D"), (28, "G")]
    monkeypatch.setattr(export, "chord_symbols", lambda chorale, every="beat": symbols)
    return ["G", "Bbdim", "D7", "Bm", "D", "G"]  # repeats left out


# -- MIDI -------------------------------------------------------------------------------------------
def test_midi_has_one_named_instrument_per_voice_with_its_notes():
    c = pickup_chorale()
    pm = export.to_pretty_midi(c, programs=export.INSTRUMENT_SETS["strings"], tempo=90)
    assert [i.name for i in pm.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [i.program for i in pm.instruments] == [40, 41, 42, 43]
    step = 60 / 90 / 4
    for v, inst in enumerate(pm.instruments):
        got = [(n.pitch, round(n.start / step), round(n.end / step)) for n in inst.notes]
        assert got == [(n.pitch, 12 + n.start, 12 + n.end) for n in c.notes(v)]  # after the pickup's silence
    assert pm.time_signature_changes[0].numerator == 4
    assert pm.key_signature_changes[0].key_number == 7  # G major


def test_midi_file_reads_back_with_four_parts_of_the_same_length():
    c = pickup_chorale()
    pm = pretty_midi.PrettyMIDI(io.BytesIO(export.midi_bytes(c, export.INSTRUMENT_SETS["organ"], 80)))
    assert len(pm.instruments) == 4 and {i.program for i in pm.instruments} == {19}
    ends = {round(max(n.end for n in i.notes), 3) for i in pm.instruments}
    assert ends == {round((12 + STEPS) * 60 / 80 / 4, 3)}


def test_midi_lasts_through_closing_rests():
    c = pickup_chorale()
    longer = Chorale(tuple(v + (-2,) * 8 for v in c.voices), meter=c.meter, tonic=c.tonic, offset=c.offset)
    pm = export.to_pretty_midi(longer, tempo=60)
    assert pm.get_end_time() == pytest.approx((12 + STEPS + 8) * 0.25)


@pytest.mark.parametrize("name", list(export.INSTRUMENT_SETS))
def test_instrument_sets_are_four_general_midi_programs(name):
    progs = export.INSTRUMENT_SETS[name]
    assert len(progs) == 4 and all(0 <= p <= 127 for p in progs)
    assert [i.program for i in export.to_pretty_midi(pickup_chorale(), progs).instruments] == list(progs)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"programs": (40, 41, 42)}, "4 General MIDI programs"), ({"programs": (0, 0, 0, 128)}, "between 0 and 127"),
     ({"tempo": 0}, "tempo must be"), ({"tempo": 2000}, "tempo must be"), ({"tempo": "fast"}, "tempo must be")],
)  # fmt: skip
def test_midi_settings_out_of_range_are_typed_errors(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        export.to_pretty_midi(pickup_chorale(), **kwargs)


# -- MusicXML ---------------------------------------------------------------------------------------
def onsets(part) -> list[int]:
    """MIDI pitches of the notes that start in a parsed part (tied continuations and chord symbols left out)."""
    from music21 import note

    return [n.pitch.midi for n in part.recurse().getElementsByClass(note.Note) if not n.tie or n.tie.type == "start"]


def written_length(part) -> float:
    from music21 import note

    return float(sum(n.quarterLength for n in part.recurse().getElementsByClass((note.Note, note.Rest))))


def test_musicxml_has_four_parts_with_the_voices_pitches_and_length():
    from music21 import converter, key, meter

    c = pickup_chorale()
    score = converter.parse(export.to_musicxml(c), format="musicxml")
    assert [p.partName for p in score.parts] == ["Soprano", "Alto", "Tenor", "Bass"]
    for v, part in enumerate(score.parts):
        assert onsets(part) == [n.pitch for n in c.notes(v)]
        assert written_length(part) == STEPS / 4
    first = score.parts[0].getElementsByClass("Measure")[0]
    assert first.number == 0 and first.duration.quarterLength == 1  # the pickup
    assert score.recurse().getElementsByClass(key.Key)[0].sharps == 1
    assert score.recurse().getElementsByClass(meter.TimeSignature)[0].ratioString == "4/4"
    assert [n.pitch.midi for n in score.parts[0].recurse().notes if n.expressions] == [67]  # the fermata


def test_two_staves_hold_soprano_alto_and_tenor_bass():
    from music21 import note

    c = pickup_chorale()
    score = export.to_music21(c, chords=False, two_staves=True)
    assert len(score.parts) == 2
    for staff, (upper, lower) in enumerate([(0, 1), (2, 3)]):
        bar = score.parts[staff].getElementsByClass("Measure")[1]
        voices = [list(vo.getElementsByClass(note.Note)) for vo in bar.voices]
        assert voices[0][0].pitch.midi == c.notes(upper)[1].pitch and voices[0][0].stemDirection == "up"
        assert voices[1][0].pitch.midi == c.notes(lower)[1].pitch and voices[1][0].stemDirection == "down"


def test_chord_symbols_over_the_soprano_without_changing_its_accidentals(fake_chords):
    from music21 import converter, harmony

    xml = export.to_musicxml(pickup_chorale())
    score = converter.parse(xml, format="musicxml")
    figures = [cs.figure for cs in score.parts[0].recurse().getElementsByClass(harmony.ChordSymbol)]
    assert figures == [f.replace("Bb", "B-") for f in fake_chords]
    assert not any(score.parts[v].recurse().getElementsByClass(harmony.ChordSymbol) for v in (1, 2, 3))
    assert xml.count(b"<accidental>natural</accidental>") == 1  # the alto's F natural, and nothing else


def test_empty_harmony_is_a_notation_error():
    with pytest.raises(NotationError, match="empty"):
        export.to_musicxml(Chorale(((), (), (), ())))


# -- the engraved score ------------------------------------------------------------------------------
def test_score_svg_draws_every_note_on_two_staves_with_the_chord_symbols(fake_chords):
    c = pickup_chorale()
    svg = export.score_svg(c)
    assert svg.lstrip().startswith("<svg")
    assert svg_note_count(svg) - svg_tie_count(svg) == sum(len(c.notes(v)) for v in range(4))
    assert svg.count('class="staff"') == 2 * svg.count('class="measure"') == 2 * 4  # two staves, four bars
    assert export.svg_chord_symbols(svg) == fake_chords


def test_score_with_the_real_chord_names():
    symbols = export.svg_chord_symbols(export.score_svg(pickup_chorale()))
    assert symbols and symbols[0].startswith("G")


# -- audio ----------------------------------------------------------------------------------------------
def test_audio_plays_every_voice():
    c = pickup_chorale()
    rest = (-2,) * STEPS
    for v in range(4):
        alone = Chorale(tuple(c.voices[u] if u == v else rest for u in range(4)), offset=c.offset)
        with wave.open(io.BytesIO(export.wav_bytes(alone, tempo=120))) as w:
            audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768
        assert np.sqrt(np.mean(audio**2)) > 0.01, v


def test_ties_across_a_system_break_count_once():
    """Verovio draws a tie over a line break twice (the second a "spanning" copy): svg_tie_count counted both,
    so a long score seemed to lack notes."""
    steps = 16 * 24
    # Every note lasts a bar and starts on beat 3: each is tied over a bar line, some over a line break.
    notes = [(72, 0, 8)] + [(72 if i % 2 else 74, 8 + 16 * i, 16) for i in range(23)] + [(72, 8 + 16 * 23, 8)]
    row = row_from_notes([VoiceNote(p, s, n) for p, s, n in notes], steps)
    c = Chorale((row, row, row, row))
    svg = export.score_svg(c, chords=False, page_width=900)
    assert "spanning" in svg and svg.count('class="system"') > 2
    assert svg_note_count(svg) - svg_tie_count(svg) == 4 * len(notes)


def test_voice_bars_split_and_tie_notes_at_bar_lines():
    """A one-beat pickup in 3/4; a note over two bar lines is written in three tied pieces; rests are not tied."""
    row = voice((60, 0, 4), (62, 4, 28), (64, 40, 4))[:44]
    c = Chorale((row, row, row, row), meter=(3, 4), offset=8)
    assert bar_starts_and_events(c) == [
        (0, [(60, 0, 4, False, False)]),
        (4, [(62, 0, 12, False, True)]),
        (16, [(62, 0, 12, True, True)]),
        (28, [(62, 0, 4, True, False), (None, 4, 8, False, False)]),
        (40, [(64, 0, 4, False, False)]),
    ]


def bar_starts_and_events(c: Chorale) -> list:
    bars = export.voice_bars(c, 0)
    return [
        (s, [(e.pitch, e.start, e.steps, e.tied_from, e.tied_on) for e in b])
        for s, b in zip(export.bar_starts(c), bars, strict=True)
    ]


def test_audio_at_the_synthesizers_level_is_quieter_than_normalised():
    from genmodels.music.audio import render

    pm = export.to_pretty_midi(pickup_chorale(), tempo=120)
    raw, played = render(pm, 22050, normalise=False), render(pm, 22050)
    assert 0 < np.abs(raw).max() < np.abs(played).max() == pytest.approx(0.89, abs=0.01)
