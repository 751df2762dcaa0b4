import math

import pytest

from genmodels.eval.music_stats import (
    NoveltyIndex,
    bar_completeness,
    compare,
    duration_histogram,
    longest_shared_run,
    pitch_class_entropy,
    pitch_range,
    scale_consistency,
    summarize,
)
from genmodels.music import Melody, Note

Q = 12  # ticks per quarter


def seq(pitches, dur=Q, meter=(4, 4), start=0):
    return Melody([Note(p, start + i * dur, dur) for i, p in enumerate(pitches)], meter=meter)


C_MAJOR = seq([60, 62, 64, 65, 67, 69, 71, 72])
CHROMATIC = seq(list(range(60, 72)))


def test_scale_consistency():
    assert scale_consistency(C_MAJOR) == 1.0
    assert scale_consistency(CHROMATIC) == pytest.approx(7 / 12)
    assert scale_consistency(seq([57, 59, 60, 62, 64, 65, 67])) == 1.0  # A natural minor
    # C D E F# : 4 of 4 in G major
    assert scale_consistency(seq([60, 62, 64, 66])) == 1.0
    # C C C C#: one scale holds all four
    m = Melody([Note(60, 0, 3), Note(60, 3, 3), Note(60, 6, 3), Note(61, 9, 48)])
    assert scale_consistency(m) == 1.0  # C# major holds both C (as B#) and C#
    # four consecutive semitones: no diatonic scale holds more than 3; counts notes, not durations
    m2 = Melody([Note(60, 0, 3), Note(61, 3, 3), Note(62, 6, 3), Note(63, 9, 96)])
    assert scale_consistency(m2) == pytest.approx(3 / 4)
    assert math.isnan(scale_consistency(Melody([])))


def test_pitch_class_entropy():
    assert pitch_class_entropy(C_MAJOR) == pytest.approx(-(6 / 8 * math.log2(1 / 8) + 2 / 8 * math.log2(2 / 8)))
    assert pitch_class_entropy(seq([60, 62, 64, 65, 67, 69, 71])) == pytest.approx(math.log2(7))
    assert pitch_class_entropy(CHROMATIC) == pytest.approx(math.log2(12))
    assert pitch_class_entropy(seq([60, 72, 48])) == 0.0  # one pitch class in three octaves
    assert pitch_class_entropy(seq([60, 67])) == pytest.approx(1.0)


def test_pitch_range():
    assert pitch_range(C_MAJOR) == 12
    assert pitch_range(seq([60])) == 0
    assert pitch_range(seq([55, 80, 62])) == 25
    assert pitch_range(Melody([])) == 0


def test_bar_completeness_complete_cases():
    assert bar_completeness(C_MAJOR) == 1.0  # two full 4/4 bars
    # gaps are rests: a half note, rest, quarter; a pickup bar then a tie across the inner bar line
    m = Melody([Note(60, 0, 24), Note(62, 36, 12), Note(64, 48 + 36, 24), Note(65, 2 * 48 + 12, 12)])
    assert bar_completeness(m) == 1.0
    assert bar_completeness(seq([60, 62, 64], dur=18, meter=(6, 8))) == 1.0  # dotted quarters in 6/8
    assert bar_completeness(Melody([Note(60, 3, 3), Note(62, 8, 4)])) == 1.0  # sixteenth / triplet onsets


def test_bar_completeness_incomplete_cases():
    # a note overlapping the next one (Melody refuses to build it, so set the notes afterwards)
    m = seq([60, 62, 64, 65, 67, 69, 71, 72])
    m.notes = [
        Note(60, 0, 12),
        Note(62, 12, 24),
        Note(64, 24, 12),
        Note(65, 36, 12),
        Note(67, 48, 12),
        Note(69, 60, 12),
        Note(71, 72, 12),
        Note(72, 84, 12),
    ]
    assert bar_completeness(m) == 0.5  # bar 0 is over-full, bar 1 fine
    # an overlong final note: starts on beat 4 of bar 1 and rings two beats past the last bar line
    m = Melody([Note(60, 0, 48), Note(62, 48, 36), Note(64, 84, 36)])
    assert bar_completeness(m) == 0.5
    # the same with the tune's length given as 3 bars is complete (the tie lands inside bar 2)
    assert bar_completeness(m, n_bars=3) == 1.0
    # ... and with 1 bar, the notes after bar 0 spoil the final bar
    assert bar_completeness(m, n_bars=1) == 0.0
    # off-grid onset (1 tick after the beat) spoils its bar only: 3 bars, one bad
    m = Melody([Note(60, 0, 48), Note(62, 49, 47), Note(64, 96, 48)])
    assert bar_completeness(m) == pytest.approx(2 / 3)
    assert math.isnan(bar_completeness(Melody([])))
    # bars counted from the first note's bar: a tune starting in bar 2
    assert bar_completeness(seq([60, 62, 64, 65], start=96)) == 1.0


def test_duration_histogram():
    m = Melody([Note(60, 0, 12), Note(62, 12, 6), Note(64, 18, 6), Note(65, 24, 24)])
    assert duration_histogram(m) == {6: 0.5, 12: 0.25, 24: 0.25}
    assert list(duration_histogram(m)) == [6, 12, 24]
    assert duration_histogram(Melody([])) == {}


def test_longest_shared_run():
    train = [seq([60, 62, 64, 65, 67, 65, 64, 62, 60]), seq([60, 60, 67, 67, 69, 69, 67], dur=6)]
    index = NoveltyIndex(train, max_n=16)
    # an exact copy shares all its 8 (interval, duration) pairs
    assert longest_shared_run(train[0], index) == 8
    # transposed copy: intervals are what count
    assert longest_shared_run(seq([p + 5 for p in [60, 62, 64, 65, 67, 65, 64, 62, 60]]), index) == 8
    # first 4 notes of tune 0 (3 pairs), then a leap never seen: longest run = 3
    assert longest_shared_run(seq([60, 62, 64, 65, 77, 78]), index) == 3
    # same intervals, other durations: no pair shared (durations of tune 0 are all 12)
    assert longest_shared_run(seq([60, 62, 64, 65], dur=24), index) == 0
    assert longest_shared_run(seq([60]), index) == 0
    # the index caps the run at max_n
    long = seq([60 + (i % 5) for i in range(40)])
    assert longest_shared_run(long, NoveltyIndex([long], max_n=6)) == 6


def test_summarize_and_compare():
    held = [C_MAJOR, seq([60, 64, 67, 72], dur=24)]
    gen = [CHROMATIC, seq([48, 84])]
    s = summarize(held)
    assert s["tunes"] == 2 and s["notes"] == 12
    assert s["scale_consistency"] == 1.0
    assert s["pitch_range"] == 12 and (s["min_pitch"], s["max_pitch"]) == (60, 72)
    assert s["in_range_fraction"] == 1.0
    assert s["complete_bar_fraction"] == 1.0
    assert s["duration_histogram"] == {12: 8 / 12, 24: 4 / 12}
    rows = {r["statistic"]: r for r in compare(gen, held, index=NoveltyIndex(held))}
    assert rows["in_range_fraction"]["generated"] == pytest.approx(12 / 14)
    assert rows["scale_consistency"]["generated"] == pytest.approx((7 / 12 + 1) / 2)
    assert rows["pitch_range"]["difference"] == pytest.approx((11 + 36) / 2 - 12)
    assert rows["duration distribution distance (TV)"]["generated"] == pytest.approx(1 / 3)
    assert rows["longest_shared_run"]["held_out"] == (7 + 3) / 2  # each held-out tune is in the index
    assert all(set(r) == {"statistic", "generated", "held_out", "difference"} for r in rows.values())
