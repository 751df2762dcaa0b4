"""Chord naming: the template matcher, beat chords, chord symbols and agreement."""

from __future__ import annotations

import pytest
from harmony_build import chords, row

from genmodels.core.errors import NotationError, SettingsError
from genmodels.harmony.chords import (
    Chord,
    beat_starts,
    chord_agreement,
    chord_of,
    chord_symbols,
    chords_at_beats,
)
from genmodels.harmony.grid import Chorale


@pytest.mark.parametrize(
    ("pitches", "name"),
    [
        ([48, 64, 67, 72], "C"),
        ([57, 60, 64, 69], "Am"),
        ([43, 59, 62, 65], "G7"),
        ([42, 57, 60, 66], "F#dim"),
        ([46, 62, 65, 69], "Bbmaj7"),
        ([45, 60, 64, 67], "Am7"),
        ([47, 62, 65, 69], "Bm7b5"),
        ([47, 62, 65, 68], "Bdim7"),
        ([48, 64, 68, 72], "Caug"),
        ([43, 59, 65, 67], "G7"),  # a seventh chord without its fifth
        ([52, 60, 67, 72], "C"),  # first inversion: the root is not the bass
    ],
)
def test_chord_of_names_common_chords(pitches, name):
    assert chord_of(pitches).name == name


def test_chord_of_needs_two_pitch_classes():
    assert chord_of([]) is None
    assert chord_of([60]) is None
    assert chord_of([48, 60, 72]) is None


def test_ties_between_templates():
    # C-E is C without its fifth (a sounding root beats Am without its root, and E augmented is rare)
    assert chord_of([48, 64]) == Chord(0, "major")
    assert chord_of([52, 60]).name == "C"
    # a diminished seventh is the same set from four roots: the bass names it
    assert chord_of([50, 59, 65, 68]).name == "Ddim7"
    assert chord_of([47, 62, 65, 68]).name == "Bdim7"


def test_spelling_follows_the_key():
    bb = Chord(10, "major")
    assert bb.spelled(tonic=5, mode="major") == "Bb"  # in F major
    assert Chord(10, "minor").spelled(tonic=11, mode="major") == "A#m"  # in B major
    assert Chord(8, "dominant seventh").pitch_classes() == {8, 0, 3, 6}


def test_chords_at_beats_in_4_4_with_a_pickup():
    # a one-beat pickup, then C F G7 C
    c = chords((67, 64, 60, 55), (72, 64, 55, 48), (72, 65, 57, 53), (71, 65, 62, 55), (72, 64, 55, 48), offset=12)
    assert beat_starts(c) == [0, 4, 8, 12, 16]
    assert [x.name if x else None for x in chords_at_beats(c)] == ["C", "C", "F", "G7", "C"]


def test_beats_in_6_8_are_dotted_quarters():
    c = chords((72, 67, 64, 48), (71, 67, 62, 43), steps=6, meter=(6, 8))
    assert beat_starts(c) == [0, 6]


def test_chord_symbols_only_where_the_chord_changes():
    c = chords((72, 64, 55, 48), (76, 67, 60, 48), (77, 65, 57, 53), (79, 65, 59, 55), tonic=0)
    assert chord_symbols(c) == [(0, "C"), (8, "F"), (12, "G7")]
    assert chord_symbols(c, every="bar") == [(0, "C")]
    assert chord_symbols(c, every="half-bar") == chord_symbols(c, every="half") == [(0, "C"), (8, "F")]
    with pytest.raises(SettingsError):
        chord_symbols(c, every="quaver")


def test_chord_symbols_skip_a_lone_melody():
    lone = Chorale(voices=(row((60, 8)), row((None, 8)), row((None, 8)), row((None, 8))))
    assert chord_symbols(lone) == []


def test_chord_agreement():
    bach = chords((72, 64, 55, 48), (72, 65, 57, 53), (71, 65, 62, 55), (72, 64, 55, 48))
    other = chords((72, 64, 55, 48), (72, 64, 57, 45), (71, 62, 55, 43), (72, 64, 55, 48))
    assert chord_agreement(bach, bach) == 1.0
    assert chord_agreement(other, bach) == 0.5  # Am for F, G for G7
    with pytest.raises(NotationError):
        chord_agreement(other, chords((72, 64, 55, 48)))


def test_half_bars_of_three_beats_fall_back_to_bars():
    waltz = chords((72, 64, 55, 48), (72, 65, 57, 53), (71, 62, 55, 43), (72, 65, 57, 53), meter=(3, 4))
    assert chord_symbols(waltz, every="half-bar") == chord_symbols(waltz, every="bar") == [(0, "C"), (12, "F")]
