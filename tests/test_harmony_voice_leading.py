"""Voice-leading rules, each on a hand-built chorale with a known number of faults, and one with none."""

from __future__ import annotations

from harmony_build import chords, row

from genmodels.harmony.grid import Chorale
from genmodels.harmony.voice_leading import (
    RULES,
    Fault,
    all_faults,
    fault_report,
    fault_report_many,
    out_of_range,
    parallel_fifths,
    parallel_octaves,
    voice_crossings,
    wide_spacing,
)

# I IV V I in C, textbook voice leading: no faults of any kind
CLEAN = chords((72, 64, 55, 48), (72, 65, 57, 53), (71, 62, 55, 43), (72, 64, 55, 48))


def test_a_clean_progression_has_no_faults():
    report = fault_report(CLEAN)
    assert all(report[name]["count"] == 0 for name in RULES)
    assert report["total"] == {"count": 0, "per_100_beats": 0.0}
    assert report["beats"] == 4
    assert all_faults(CLEAN) == []


CMAJ7 = (71, 67, 64, 48)  # B4 G4 E4 C3: fifths soprano-tenor (B/E) and alto-bass (G/C), no octaves
DMAJ7 = (73, 69, 66, 50)  # the same a tone higher


def test_parallel_fifths():
    c = chords(CMAJ7, DMAJ7)
    assert parallel_fifths(c) == [Fault(4, "parallel_fifths", (0, 2)), Fault(4, "parallel_fifths", (1, 3))]
    assert parallel_octaves(c) == []
    # a twelfth counts as a fifth: soprano G5 over bass C3, both up a tone
    assert [f.voices for f in parallel_fifths(chords((79, 64, 60, 48), (81, 64, 60, 50)))] == [(0, 3)]


def test_fifths_by_contrary_or_oblique_motion_are_not_parallel():
    contrary = chords((72, 64, 55, 48), (71, 67, 62, 43))  # tenor-bass G/C up and down to D/G
    assert parallel_fifths(contrary) == []
    oblique = chords((72, 67, 60, 48), (72, 67, 60, 36))  # alto holds G over C3, the bass drops to C2
    assert parallel_fifths(oblique) == []


def test_parallel_octaves_and_unisons():
    # soprano and bass in octaves C->D (both up), alto and tenor in unison G->A (both up)
    c = chords((72, 67, 67, 48), (74, 69, 69, 50), (74, 67, 65, 50))
    faults = parallel_octaves(c)
    assert [f.voices for f in faults] == [(0, 3), (1, 2)]
    assert all(f.step == 4 for f in faults)  # the repeated D over D is oblique, not parallel


def test_parallels_skip_rests_and_see_passing_notes():
    # the tenor rests at the second chord: no pair with it can be parallel
    voices = (row((72, 4), (74, 4)), row((64, 4), (65, 4)), row((60, 4), (None, 4)), row((48, 4), (50, 4)))
    assert [f.voices for f in parallel_octaves(Chorale(voices=voices))] == [(0, 3)]
    # soprano and bass move in eighths from G/C to A/D off the beat: onset steps, not only beats, count
    voices = (row((67, 2), (69, 2)), row((64, 4)), row((60, 4)), row((48, 2), (50, 2)))
    assert parallel_fifths(Chorale(voices=voices)) == [Fault(2, "parallel_fifths", (0, 3))]


def test_voice_crossing():
    # alto above soprano at the second chord, bass above tenor at the third
    c = chords((72, 64, 55, 48), (67, 69, 60, 53), (67, 62, 55, 59))
    assert [(f.step, f.voices) for f in voice_crossings(c)] == [(4, (0, 1)), (8, (2, 3))]


def test_out_of_range_counts_notes():
    # a bass note held over two chords counts once; a tenor under C3 and a soprano over A5 once each
    voices = (row((84, 4), (72, 4)), row((64, 8)), row((47, 4), (55, 4)), row((65, 8)))
    faults = out_of_range(Chorale(voices=voices))
    assert [(f.step, f.voices) for f in faults] == [(0, (0,)), (0, (2,)), (0, (3,))]


def test_spacing_over_an_octave():
    # S-A is 15 semitones at the first chord; A-T 16 at the second; T-B 19 at the third is allowed
    c = chords((79, 64, 55, 48), (76, 64, 48, 48), (72, 64, 60, 41))
    assert [(f.step, f.voices) for f in wide_spacing(c)] == [(0, (0, 1)), (4, (1, 2))]


def test_report_rates_per_100_beats():
    c = chords(CMAJ7, DMAJ7, CMAJ7, CMAJ7)  # 4 beats
    report = fault_report(c)
    assert report["parallel_fifths"] == {"count": 4, "per_100_beats": 100.0}  # up and back down
    assert report["total"]["count"] == 4
    many = fault_report_many([c, CLEAN])
    assert many["beats"] == 8
    assert many["parallel_fifths"] == {"count": 4, "per_100_beats": 50.0}


def test_report_in_6_8_counts_dotted_quarter_beats():
    c = chords((72, 64, 55, 48), (72, 65, 57, 53), steps=6, meter=(6, 8))
    assert fault_report(c)["beats"] == 2


def test_an_empty_or_silent_chorale_has_no_faults_and_no_rate():
    empty = Chorale(voices=((), (), (), ()))
    assert fault_report(empty)["total"] == {"count": 0, "per_100_beats": 0.0}
    assert fault_report_many([])["beats"] == 0
    lone = Chorale(voices=(row((72, 8)), row((None, 8)), row((None, 8)), row((None, 8))))
    assert all_faults(lone) == []
