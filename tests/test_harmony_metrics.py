"""harmony_report: bass and chord agreement at beats, fault rates beside the references'."""

from __future__ import annotations

import pytest
from harmony_build import chords

from genmodels.core.errors import NotationError
from genmodels.harmony.metrics import harmony_report

BACH = chords((72, 64, 55, 48), (72, 65, 57, 53), (71, 62, 55, 43), (72, 64, 55, 48))
CMAJ7, DMAJ7 = (71, 67, 64, 48), (73, 69, 66, 50)


def test_a_chorale_agrees_with_itself():
    r = harmony_report([BACH], [BACH])
    assert (r["pieces"], r["beats"]) == (1, 4)
    assert r["bass_agreement"] == r["chord_agreement"] == r["root_agreement"] == 1.0
    assert r["faults_per_100_beats"]["total"] == 0.0
    assert r["fault_ratio"] is None  # the reference has no faults to compare with


def test_agreement_counts_beats():
    # beat 2: F in first inversion (bass A, same chord); beat 3: G7 -> Em (other root, other bass)
    pred = chords((72, 64, 55, 48), (72, 65, 60, 57), (71, 64, 55, 52), (72, 64, 55, 48))
    r = harmony_report([pred], [BACH])
    assert r["bass_agreement"] == 0.5
    assert r["chord_agreement"] == 0.75
    assert r["root_agreement"] == 0.75


def test_pooled_over_pieces_and_faults_beside_the_reference():
    faulty = chords(CMAJ7, DMAJ7, CMAJ7, DMAJ7)  # 3 × 2 parallel fifths in 4 beats
    ref = chords(CMAJ7, (74, 69, 62, 38), CMAJ7, (74, 69, 62, 38))  # the bass falls to D: no parallels
    r = harmony_report([faulty, BACH], [ref, BACH])
    assert r["beats"] == 8
    assert r["faults_per_100_beats"]["parallel_fifths"] == 75.0
    assert r["reference_faults_per_100_beats"]["parallel_fifths"] == 0.0
    assert r["chord_agreement"] == 0.75  # Dmaj7 for an open D twice, of 8 beats


def test_mismatched_inputs_are_refused():
    with pytest.raises(NotationError):
        harmony_report([BACH], [BACH, BACH])
    with pytest.raises(NotationError):
        harmony_report([chords((72, 64, 55, 48))], [BACH])
