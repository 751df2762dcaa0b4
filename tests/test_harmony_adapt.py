"""Any melody as a soprano: the grid, range, mode, meter, chord rate, simplified line, and every bad input."""

from __future__ import annotations

import copy

import pytest

from genmodels.core.errors import NotationError, PitchRangeError, SettingsError
from genmodels.harmony import adapt
from genmodels.harmony.grid import HOLD, RANGES, REST, Chorale
from genmodels.music import parse_note_prompt
from genmodels.music.types import Melody, Note


def _prompt(text: str, meter=(4, 4), key=(0, "major")) -> Melody:
    return parse_note_prompt(text, meter=meter, key=key)


def test_a_plain_melody_becomes_the_soprano_and_comes_back():
    m = _prompt("C5 D5 E5/2 F5/2 G5 | A5*2 G5*2", key=(0, "major"))
    before = copy.deepcopy(m)
    a = adapt.soprano_from_melody(m)
    ch = a.chorale
    assert m == before  # the original melody is never changed
    assert ch.voices[0][:8] == (72, HOLD, HOLD, HOLD, 74, HOLD, HOLD, HOLD)
    assert ch.voices[0][8:12] == (76, HOLD, 77, HOLD)
    assert all(ch.voices[v] == (REST,) * ch.steps for v in (1, 2, 3))
    assert (ch.meter, ch.tonic, ch.mode, ch.offset, ch.steps) == ((4, 4), 0, "major", 0, 32)
    assert a.transposed == 0 and a.messages == []
    assert a.simplified == ch.voices[0] and ch.meta["simplified"] == list(ch.voices[0])
    assert ch.meta["chord_rate"] == "beat" and ch.meta["chord_positions"] == [0, 4, 8, 12]
    back = adapt.melody_from_chorale_voice(ch, 0)
    assert (back.notes, back.meter, back.key) == (m.notes, m.meter, m.key)


def test_a_pickup_becomes_the_offset_and_the_leading_rest_comes_back():
    m = _prompt("r*3 G4 | C5*2 E5 D5 | C5*4")  # a one-beat pickup written as a leading rest
    a = adapt.soprano_from_melody(m)
    assert a.chorale.offset == 12 and a.chorale.voices[0][0] == 67
    assert a.chorale.position(4) == 0  # the first downbeat
    assert adapt.melody_from_chorale_voice(a.chorale, 0).notes == m.notes


def test_triplets_move_to_the_nearest_sixteenth_without_losing_a_note():
    # Eighth triplets (4 ticks) and quarter triplets (8 ticks) on a 12-tick quarter.
    notes = [Note(72, 0, 4), Note(74, 4, 4), Note(76, 8, 4), Note(77, 12, 8), Note(76, 20, 8), Note(74, 28, 8)]
    a = adapt.soprano_from_melody(Melody(notes=notes))
    got = a.chorale.notes(0)
    assert [n.pitch for n in got] == [72, 74, 76, 77, 76, 74]
    assert [n.start for n in got] == [0, 1, 3, 4, 7, 9]
    assert any("off the sixteenth-note grid" in s for s in a.messages)


def test_notes_faster_than_a_sixteenth_merge_into_the_note_before_and_are_counted():
    # Sixteenth triplets: three notes in two sixteenths cannot all keep a step.
    notes = [Note(72, 0, 2), Note(74, 2, 2), Note(76, 4, 2), Note(77, 6, 6)]
    a = adapt.soprano_from_melody(Melody(notes=notes))
    assert len(a.chorale.notes(0)) == 3
    assert any("1 note faster than a sixteenth was merged" in s for s in a.messages)


@pytest.mark.parametrize(
    ("text", "shift", "words"),
    [
        ("C2 D2 E2 G2", 24, "up 2 octaves"),
        ("C6 D6 E6 G6", -12, "down an octave"),
        ("G3 C4 E4 G4 B4 D5 E5", 5, "up 5 semitones"),  # 55..76: no octave fits (67..88), +5 does
    ],
)
def test_a_melody_outside_the_soprano_range_moves_into_it_and_says_so(text, shift, words):
    m = _prompt(text)
    a = adapt.soprano_from_melody(m)
    lo, hi = RANGES["soprano"]
    assert a.transposed == shift
    assert all(lo <= n.pitch <= hi for n in a.chorale.notes(0))
    assert any(words in s and "soprano range" in s for s in a.messages)
    assert a.chorale.tonic == (m.key[0] + shift) % 12
    assert adapt.melody_from_chorale_voice(a.chorale, 0).notes == m.notes  # moved back on the way out
    assert [n.pitch for n in m.notes] == [n.pitch for n in _prompt(text).notes]  # the original kept


def test_a_melody_wider_than_the_soprano_range_is_harmonised_with_the_outliers_read_inside():
    m = _prompt("C3 G4 C5 D5")  # 48..74: 26 semitones, the range holds 21
    a = adapt.soprano_from_melody(m)
    assert a.transposed == 0  # as written, one note (C3) is outside: no shift leaves fewer
    assert [n.pitch for n in a.chorale.notes(0)] == [48, 67, 72, 74]  # the soprano as written
    assert [x for x in a.simplified if x >= 0] == [60, 67, 72, 74]  # C3 read an octave (two) inside the range
    assert any("spans 26 semitones" in s and "1 note stays outside" in s for s in a.messages)
    high = adapt.soprano_from_melody(_prompt("G4 C5 G5 D6 A6"))  # 67..93: down an octave leaves one note (G3) out
    assert high.transposed == -12 and sum(1 for x in high.simplified if x >= 0) == 5
    assert any("moved down an octave" in s for s in high.messages)
    assert adapt.melody_from_chorale_voice(a.chorale, 0).notes == m.notes


def test_a_melody_wider_than_three_octaves_is_refused_clearly():
    with pytest.raises(PitchRangeError, match=rf"spans 38 semitones.*up to {adapt.MAX_SPAN}"):
        adapt.soprano_from_melody(_prompt("C2 D5"))


@pytest.mark.parametrize(("mode", "reads"), [("dorian", "minor"), ("mixolydian", "major")])
def test_modes_map_to_the_nearest_of_major_and_minor(mode, reads):
    a = adapt.soprano_from_melody(_prompt("D5 E5 F5 G5 A5*4", key=(2, mode)))
    assert a.chorale.mode == reads and a.chorale.tonic == 2
    assert any(f"D {mode}" in s and f"D {reads}" in s for s in a.messages)
    assert adapt.melody_from_chorale_voice(a.chorale, 0).key == (2, mode)


def test_a_meter_the_chorales_never_had_is_harmonised_by_its_beats():
    a = adapt.soprano_from_melody(_prompt("C5/2 D5/2 E5/2 F5/2 G5/2 A5/2 | G5*3", meter=(6, 8)))
    assert a.chorale.meter == (6, 8) and a.chorale.meta["chord_positions"] == [0, 6]
    assert any("6/8 was never seen in training" in s and "2 dotted quarters a bar" in s for s in a.messages)
    plain = adapt.soprano_from_melody(_prompt("C5 D5 E5", meter=(3, 4)))
    assert not any("never seen" in s for s in plain.messages)


def test_chord_positions_per_rate():
    assert adapt.chord_positions((4, 4), "beat") == [0, 4, 8, 12]
    assert adapt.chord_positions((4, 4), "half-bar") == [0, 8]
    assert adapt.chord_positions((3, 4), "half-bar") == [0]
    assert adapt.chord_positions((6, 8), "half-bar") == [0, 6]
    assert adapt.chord_positions((12, 8), "half-bar") == [0, 12]
    assert adapt.chord_positions((7, 8), "beat") == [0, 4, 8]
    with pytest.raises(SettingsError, match="chord_rate"):
        adapt.chord_positions((4, 4), "bar")
    with pytest.raises(SettingsError, match="chord_rate"):
        adapt.soprano_from_melody(_prompt("C5"), chord_rate="every note")


def test_the_simplified_line_merges_short_passing_notes_at_the_chord_rate():
    # Beat 1: C5 eighth, then two sixteenths D5 E5; beat 2 starts with a sixteenth F5 (on the beat).
    m = _prompt("C5/2 D5/4 E5/4 F5/4 G5/4 A5/2 G5*2")
    a = adapt.soprano_from_melody(m)
    assert a.simplified[:8] == (72, HOLD, HOLD, HOLD, 77, HOLD, 81, HOLD)
    assert a.chorale.voices[0][:8] == (72, HOLD, 74, 76, 77, 79, 81, HOLD)  # the melody keeps every note
    assert any("3 passing notes shorter than an eighth" in s for s in a.messages)
    half = adapt.soprano_from_melody(m, chord_rate="half-bar")
    assert half.simplified[4] == HOLD  # F5 is on a beat but not on a half bar: merged too
    # A short note after a rest starts something new: it stays.
    after_rest = adapt.soprano_from_melody(_prompt("C5/2 r/4 E5/4 G5"))
    assert after_rest.simplified == after_rest.chorale.voices[0]


def test_an_empty_melody_is_a_typed_error():
    with pytest.raises(NotationError, match="empty"):
        adapt.soprano_from_melody(Melody(notes=[]))
    with pytest.raises(NotationError, match="needs a Melody"):
        adapt.soprano_from_melody("C4 D4")


def test_a_melody_of_several_hundred_bars_is_refused_over_max_steps():
    bar = [Note(72, 0, 12), Note(74, 12, 12), Note(76, 24, 12), Note(77, 36, 12)]
    long = Melody(notes=[Note(n.pitch, n.start + 48 * b, n.duration) for b in range(300) for n in bar])
    with pytest.raises(NotationError, match=f"at most {adapt.MAX_STEPS} sixteenths"):
        adapt.soprano_from_melody(long)
    ok = Melody(notes=long.notes[: 4 * 250])  # 250 bars: harmonised in full
    assert adapt.soprano_from_melody(ok).chorale.steps == 250 * 16


def test_chords_in_a_midi_track_give_the_top_line_and_say_so():
    import io

    import pretty_midi

    from genmodels.music.midi import midi_bytes

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0, name="Piano")
    for i, top in enumerate((72, 74, 76, 77)):
        for p in (top, top - 4, top - 7):
            inst.notes.append(pretty_midi.Note(90, p, i * 0.5, (i + 1) * 0.5))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    a = adapt.soprano_from_midi(buf.getvalue())
    assert [n.pitch for n in a.chorale.notes(0)] == [72, 74, 76, 77]
    assert any("top line" in s and "3 notes at once" in s for s in a.messages)
    plain = adapt.soprano_from_midi(midi_bytes(_prompt("C5 D5 E5 F5")))
    assert not any("top line" in s or "tracks" in s for s in plain.messages)
    bass = pretty_midi.Instrument(32, name="Bass")
    bass.notes += [pretty_midi.Note(90, 36 + i, i * 0.5, (i + 1) * 0.5) for i in range(4)]
    inst.notes = [n for n in inst.notes if n.pitch == max(m.pitch for m in inst.notes if m.start == n.start)]
    pm.instruments.append(bass)
    buf = io.BytesIO()
    pm.write(buf)
    two = adapt.soprano_from_midi(buf.getvalue())
    assert [n.pitch for n in two.chorale.notes(0)] == [72, 74, 76, 77]
    assert any("2 tracks" in s and "Piano" in s for s in two.messages)


def test_a_corpus_chorale_voice_as_a_melody_keeps_its_pickup():
    row = (67, HOLD, HOLD, HOLD, 69, HOLD, HOLD, HOLD)
    ch = Chorale(voices=(row, row, row, row), meter=(3, 4), tonic=7, offset=8, meta={"transposed": 2})
    m = adapt.melody_from_chorale_voice(ch, 0)
    assert m.notes == [Note(65, 24, 12), Note(67, 36, 12)]  # moved back to the source key, pickup as a rest
    assert (m.meter, m.key) == ((3, 4), (5, "major"))
    assert adapt.melody_from_chorale_voice(ch, 3, untranspose=False).notes[0] == Note(67, 24, 12)
    with pytest.raises(SettingsError, match="voice"):
        adapt.melody_from_chorale_voice(ch, 4)


_JIG = """X:1
T:Test jig (hand-written, in the style of the melody corpus's Irish tunes)
M:6/8
L:1/8
K:Ador
E|A2A (3Bcd e|dBG GAB|c2A BAG|(3EFG A A2:|
|:e|a2a age|d2d dBG|c2c BAG|A3 A2:|
"""


def test_a_folk_tune_through_the_corpus_path():
    """A jig with a pickup, dorian mode, 6/8 and eighth triplets, read the way the melody corpus reads tunes."""
    from music21 import converter

    from genmodels.learn.melody_corpus import _tune_record, tune_key

    rec = _tune_record(converter.parse(_JIG, format="abc"), "oneills1850")
    notes = [Note(*n) for n in rec["notes"]]
    key, _ = tune_key(rec["signature"], notes)
    m = Melody(notes=notes, meter=tuple(rec["meter"]), key=key)
    a = adapt.soprano_from_melody(m)
    ch = a.chorale
    assert ch.meter == (6, 8) and ch.offset == 10  # the pickup eighth is the last eighth of a 6/8 bar
    assert ch.mode == "minor" and ch.tonic == 9
    assert len(ch.notes(0)) == len(m.notes)  # eighth triplets keep every note
    lo, hi = RANGES["soprano"]
    assert all(lo <= n.pitch <= hi for n in ch.notes(0))
    text = " ".join(a.messages)
    assert "6/8 was never seen" in text and "A dorian" in text
    back = adapt.melody_from_chorale_voice(ch, 0)
    assert [n.pitch for n in back.notes] == [n.pitch for n in m.notes]
    assert all(abs(b.start - n.start) <= 1 for b, n in zip(back.notes, m.notes, strict=True))
    assert Chorale.from_dict(ch.to_dict()) == ch


def test_a_harmony_moved_by_semitones_goes_back_to_the_melodys_key():
    """A new user's G major tune (A3 to D5) fits the soprano range only 3 semitones up: the harmony was
    written and delivered in B flat. It is written there and moved back; octave moves stay."""
    from genmodels.harmony.adapt import in_melody_key, key_shift_back
    from genmodels.music.notation import parse_note_prompt

    assert [key_shift_back(t) for t in (0, 3, -3, 9, 12, 15, -14)] == [0, -3, 3, 3, 0, -3, 2]
    melody = parse_note_prompt("E4 G4 A4/2 B4/2 A4 G4 E4 D4 A3 G4*2", meter=(3, 4), key=(7, "major"))
    adapted = adapt.soprano_from_melody(melody)
    assert adapted.transposed == 3
    lower = tuple(x - 12 if x >= 0 else x for x in adapted.chorale.voices[0])
    harmony = adapted.chorale.with_voice(1, lower).with_voice(2, lower).with_voice(3, lower)
    back, said = in_melody_key(harmony, adapted.transposed)
    assert [n.pitch for n in back.notes(0)] == melody.pitches and back.tonic == 7
    assert said and "G major, like the melody" in said
    assert in_melody_key(harmony, 12) == (harmony, None)


# The beats of meters in eighths: the message, the chord symbols and the encoder's beat feature agree.
EIGHTHS_METERS = {
    (3, 8): ([0], "1 dotted quarter a bar"),
    (6, 8): ([0, 6], "2 dotted quarters a bar"),
    (9, 8): ([0, 6, 12], "3 dotted quarters a bar"),
    (5, 8): ([0, 4], "2 beats a bar (2+3 eighths)"),
    (7, 8): ([0, 4, 8], "3 beats a bar (2+2+3 eighths)"),
}


def _chords_every_eighth(meter: tuple[int, int], bars: int) -> Chorale:
    """Four voices changing chord on every eighth, C F G Am in turn (any two beats apart differ)."""
    chords = [(72, 67, 64, 48), (72, 69, 65, 41), (71, 67, 62, 43), (72, 69, 64, 45)]
    eighths = bars * meter[0]
    voices = tuple(sum(((chords[k % 4][v], HOLD) for k in range(eighths)), ()) for v in range(4))
    return Chorale(voices, meter=meter)


@pytest.mark.parametrize("meter", sorted(EIGHTHS_METERS))
def test_one_beat_for_the_message_the_chord_symbols_and_the_encoder(meter):
    from genmodels.harmony.chords import chord_symbols
    from genmodels.tokenizers.harmony import strength

    beats, text = EIGHTHS_METERS[meter]
    tune = Melody([Note(72 + (k % 3), 6 * k, 6) for k in range(4 * meter[0])], meter, (0, "major"))
    a = adapt.soprano_from_melody(tune)
    assert any(f"harmonised by its beats ({text})" in s for s in a.messages), a.messages
    assert a.chorale.meta["chord_positions"] == beats
    ch = _chords_every_eighth(meter, 4)
    assert [ch.position(t) for t, _ in chord_symbols(ch, "beat")] == beats * 4
    assert [t for t in range(ch.steps) if strength(ch, t) <= 1] == [t for t, _ in chord_symbols(ch, "beat")]
