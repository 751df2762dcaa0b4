"""Keys and modes: names, ABC key strings, mapping between modes, transposition, key estimation."""

from __future__ import annotations

from pathlib import Path

import pytest

from genmodels.core.errors import GenmodelsError, NotationError, PitchRangeError
from genmodels.music import Melody, Note, note_name, parse_note_prompt
from genmodels.music.scales import (
    FOLK_MODES,
    MODE_STEPS,
    estimate_key,
    estimate_melody_key,
    key_name,
    key_signature,
    map_pitch_class,
    map_to_mode,
    parse_abc_key,
    parse_mode,
    scale_pitch_classes,
    spell_pitch_class,
    transpose,
    with_key,
)


def melody(pitches, ticks=12, key=(0, "major"), meter=(4, 4)) -> Melody:
    return Melody([Note(p, i * ticks, ticks) for i, p in enumerate(pitches)], meter=meter, key=key)


def names(m: Melody) -> list[str]:
    return [note_name(p) for p in m.pitches]


@pytest.mark.parametrize(
    "text,want",
    [
        ("Ador", (9, "dorian")),
        ("Gmix", (7, "mixolydian")),
        ("Em", (4, "minor")),
        ("D", (2, "major")),
        ("F#m", (6, "minor")),
        ("Bb", (10, "major")),
        ("E Minor", (4, "minor")),
        ("A Mixolydian", (9, "mixolydian")),
        ("AMix", (9, "mixolydian")),
        ("G Dorian % Aird uses two flats", (7, "dorian")),
        ("K:Eaeolian", (4, "minor")),
        ("Cion", (0, "major")),
        ("Bphr", (11, "phrygian")),
        ("Flyd", (5, "lydian")),
        ("Bloc", (11, "locrian")),
    ],
)
def test_parse_abc_key(text, want):
    assert parse_abc_key(text) == want


@pytest.mark.parametrize("text", ["HP", "none", "", "X", "Cfoo", "D exp ^f"])
def test_parse_abc_key_rejects_what_names_no_tonic(text):
    with pytest.raises(NotationError):
        parse_abc_key(text)


def test_mode_names_and_aliases():
    assert parse_mode("Aeolian") == "minor" and parse_mode("ionian") == "major" and parse_mode("dor") == "dorian"
    assert set(FOLK_MODES) <= set(MODE_STEPS) and len(MODE_STEPS) == 7
    with pytest.raises(NotationError, match="Unknown mode"):
        parse_mode("bebop")


def test_scales_and_signatures():
    assert scale_pitch_classes(2, "dorian") == (2, 4, 5, 7, 9, 11, 0)  # D dorian: the white keys
    assert scale_pitch_classes(7, "mixolydian") == (7, 9, 11, 0, 2, 4, 5)
    assert key_signature(9, "dorian") == 1 and key_signature(7, "mixolydian") == 0
    assert key_signature(0, "minor") == -3 and key_signature(2, "major") == 2
    assert [key_name(*k, abc=True) for k in [(9, "dorian"), (7, "mixolydian"), (4, "minor"), (10, "major")]] == [
        "Ador",
        "Gmix",
        "Em",
        "Bb",
    ]
    assert key_name(6, "minor") == "F# minor" and key_name(3, "major") == "Eb major"


def test_major_to_minor_lowers_third_sixth_seventh():
    scale = melody([60, 62, 64, 65, 67, 69, 71, 72])
    out = map_to_mode(scale, 0, "minor")
    assert out.key == (0, "minor")
    assert names(out) == ["C4", "D4", "D#4", "F4", "G4", "G#4", "A#4", "C5"]  # C D Eb F G Ab Bb C
    assert [n.start for n in out.notes] == [n.start for n in scale.notes]


def test_change_of_mode_moves_the_tonic_too():
    out = map_to_mode(melody([60, 64, 67, 72]), 9, "minor")  # C major arpeggio -> A minor arpeggio
    assert names(out) == ["A3", "C4", "E4", "A4"] and out.key == (9, "minor")


def test_dorian_tune_to_major():
    dorian = with_key(melody([62, 65, 69, 71, 72, 74]), 2, "dorian")  # D F A B C D
    assert dorian.key == (2, "dorian")
    out = map_to_mode(dorian, 2, "major")
    assert names(out) == ["D4", "F#4", "A4", "B4", "C#5", "D5"]


def test_chromatic_note_keeps_its_offset_from_the_nearest_degree():
    assert map_pitch_class(6, "major", "minor") == 6  # F#: raised 4th stays a raised 4th
    assert map_pitch_class(3, "major", "minor") == 3  # D#: D + 1 (D does not move) -> Eb's place
    assert map_pitch_class(1, "major", "dorian") == 1  # C#: raised tonic
    assert map_pitch_class(11, "minor", "major") == 11  # the leading tone is outside minor: stays B


def test_same_mode_map_is_a_transposition():
    m = melody([60, 62, 64, 61, 67])
    assert map_to_mode(m, 7, "major").pitches == [p - 5 for p in m.pitches]  # the nearer G: down a fourth


def test_transpose_out_of_range_names_the_note():
    m = melody([60, 100, 120, 64])
    with pytest.raises(PitchRangeError, match=r"note 3 \(C9, bar 1, beat 3\) to MIDI pitch 130") as err:
        transpose(m, 10)
    assert isinstance(err.value, GenmodelsError) and isinstance(err.value, ValueError)
    with pytest.raises(PitchRangeError, match="below the lowest allowed pitch 21"):
        transpose(m, -40, low=21, high=108)
    up = transpose(m, 7)
    assert up.pitches == [67, 107, 127, 71] and up.key == (7, "major")


def test_transpose_rejects_a_fraction():
    with pytest.raises(NotationError):
        transpose(melody([60]), 1.5)


def test_map_to_mode_out_of_range():
    with pytest.raises(PitchRangeError):
        map_to_mode(melody([0, 127]), 6, "major")


G_JIG = [62, 67, 67, 71, 67, 71, 74, 72, 71, 69, 66, 67, 62, 67, 71, 74, 76, 74, 72, 71, 69, 67, 66, 67]


def test_g_major_jig_is_g_major():
    """A G-major jig typed by hand was labelled D major."""
    assert estimate_key(G_JIG) == (7, "major")


@pytest.mark.parametrize(
    "key,pitches",
    [
        ((9, "dorian"), [69, 71, 72, 74, 76, 78, 76, 74, 72, 71, 69, 67, 69, 76, 74, 72, 71, 69]),
        ((7, "mixolydian"), [67, 71, 74, 77, 76, 74, 72, 71, 69, 67, 65, 67, 71, 74, 77, 74, 71, 67]),
        ((9, "minor"), [69, 72, 76, 77, 76, 74, 72, 71, 69, 68, 69, 72, 71, 69]),
        ((2, "major"), [62, 66, 69, 74, 73, 71, 69, 66, 64, 62, 61, 62]),
    ],
)
def test_estimate_key_with_modes(key, pitches):
    assert estimate_key(pitches) == key


def test_estimate_key_edge_cases():
    assert estimate_key([]) == (0, "major")
    assert estimate_key([60])[0] == 0
    assert estimate_melody_key(melody(G_JIG, ticks=6, meter=(6, 8))) == (7, "major")
    assert estimate_key(G_JIG, modes=("major", "minor"))[1] in ("major", "minor")


TYPED_OPENINGS = Path(__file__).parent / "data" / "typed_openings.tsv"


def typed_openings() -> list[tuple[str, tuple[int, str], str, tuple[int, int]]]:
    """(title, written key, notes, meter) of the openings of well-known tunes, typed as note names."""
    rows = []
    for line in TYPED_OPENINGS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, meter, notes, title = line.split("\t")
            n, d = meter.split("/")
            rows.append((title, parse_abc_key(key), notes, (int(n), int(d))))
    return rows


def test_typed_openings_are_read_in_their_keys():
    """A typed prompt is an opening: "E4 D4 C4 D4 E4 E4 E4*2" is C major (it outlines C-E and stays on E, the
    third), not E minor. Exact keys on the typed set: 14/28 before the opening terms, 23/28 with them."""
    rows = typed_openings()
    assert len(rows) >= 20
    read = {title: parse_note_prompt(notes, meter=meter).key for title, _, notes, meter in rows}
    assert read["Mary Had a Little Lamb"] == (0, "major") and read["Jingle Bells"] == (0, "major")
    exact = sum(read[title] == key for title, key, _, _ in rows)
    tonic = sum(read[title][0] == key[0] for title, key, _, _ in rows)
    assert exact >= 22 and tonic >= 23, {t: (read[t], k) for t, k, _, _ in rows if read[t] != k}


def test_a_typed_b_flat_is_engraved_as_b_flat():
    """A chromatic note is spelled nearest its key: B♭ in G major (a borrowed third of C), not A♯."""
    from music21 import converter

    from genmodels.music.musicxml import musicxml_bytes

    prompt = parse_note_prompt("G4 A4 B4 C5 B♭4 A4 G4*2")
    assert prompt.key == (7, "major")
    xml = converter.parse(musicxml_bytes(prompt), format="musicxml")
    assert [p.nameWithOctave for p in xml.flatten().pitches] == ["G4", "A4", "B4", "C5", "B-4", "A4", "G4"]
    assert [spell_pitch_class(pc, 0) for pc in (10, 3, 6, 1)] == [("B", -1), ("E", -1), ("F", 1), ("C", 1)]
