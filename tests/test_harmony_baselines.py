"""The per-beat lookup and the chord HMM: harmonising, and a proper likelihood on the models' tokens."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from harmony_build import chords

from genmodels.core.errors import DataError
from genmodels.eval.harmony_baselines import (
    HIGH,
    LOW,
    N_LABELS,
    BackoffTable,
    baseline_report,
    fit_baselines,
    folk_faults,
    lower_onsets,
    segments,
    soprano_only,
    token_events,
)
from genmodels.harmony.grid import HOLD, RANGES, REST, VOICES, Chorale
from genmodels.learn.chorales import load_split, small_corpus
from genmodels.music.types import Melody, Note


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chorales")
    small_corpus(folder, n=8)
    return folder


@pytest.fixture(scope="module")
def baselines(corpus):
    return fit_baselines(load_split(corpus, "train"), load_split(corpus, "valid"))


@pytest.fixture(scope="module")
def held_out(corpus):
    return load_split(corpus, "test")[0]


def test_segments_cut_at_beats_and_at_a_pickup_between_beats():
    c = chords((72, 64, 55, 48), (72, 65, 57, 53), offset=12)
    assert [(s.start, s.end, s.beat) for s in segments(c)] == [(0, 4, 3), (4, 8, 0)]
    eighth_pickup = chords((72, 64, 55, 48), (72, 65, 57, 53), offset=14)
    assert [(s.start, s.end) for s in segments(eighth_pickup)] == [(0, 2), (2, 6), (6, 8)]
    assert segments(c)[0].events == (0,)  # C over tonic C


def test_backoff_table_is_a_distribution():
    t = BackoffTable(5, 2)
    t.add(("fine", "coarse"), 2)
    t.add(("other", "coarse"), 3)
    for keys in (("fine", "coarse"), ("unseen", "coarse"), ("unseen", "nothing")):
        p = np.exp(t.log_probs(keys))
        assert p.sum() == pytest.approx(1.0) and (p > 0).all()
    assert np.argmax(t.log_probs(("fine", "coarse"))) == 2


def test_every_token_distribution_sums_to_one(baselines, held_out):
    lower = baselines["hmm"].lower
    assert not np.allclose(lower.weights, 1.0)  # the experts' weights were set on the valid split
    events = token_events(held_out, segments(held_out))
    for e in events[:40] + events[100:160:7]:
        dist = lower.token_distribution(e, held_out.tonic)
        assert dist.shape == (N_LABELS, 2 + HIGH - LOW + 1)
        assert np.allclose(dist.sum(axis=1), 1.0) and (dist > 0).all()


def test_hmm_forward_equals_the_sum_over_chord_paths(baselines, held_out):
    hmm = baselines["hmm"]
    cut = segments(held_out)[1].end  # two segments: 109² chord paths
    short = replace(held_out, voices=tuple(v[:cut] for v in held_out.voices))
    segs = segments(short)
    assert len(segs) == 2
    lower = hmm.lower.segment_logliks(short, segs)
    soprano, m = hmm._emissions(short, segs), 1 if short.mode == "minor" else 0
    joint, alone = [], []
    for path in itertools.product(range(N_LABELS), repeat=len(segs)):
        prior = hmm.log_start[m][path[0]] + sum(hmm.log_trans[m][a, b] for a, b in itertools.pairwise(path))
        s = prior + sum(soprano[i, c] for i, c in enumerate(path))
        alone.append(s)
        joint.append(s + sum(lower[i, c] for i, c in enumerate(path)))
    brute = np.logaddexp.reduce(joint) - np.logaddexp.reduce(alone)
    assert hmm.log_likelihood(short, segs, lower) == pytest.approx(brute)


def test_nll_per_lower_note(baselines, held_out):
    for b in baselines.values():
        total, notes = b.nll(held_out)
        assert notes == lower_onsets(held_out) > 0
        assert 0 < total / notes < math.log(HIGH - LOW + 3) * 3  # better than uniform guessing


def test_harmonise_writes_three_voices_in_range_under_the_soprano(baselines, held_out):
    given = soprano_only(held_out)
    for b in baselines.values():
        out = b.harmonise(given)
        assert out.voices[0] == held_out.voices[0] and out.steps == held_out.steps
        assert (out.meter, out.tonic, out.offset) == (held_out.meter, held_out.tonic, held_out.offset)
        for v in (1, 2, 3):
            lo, hi = RANGES[VOICES[v]]
            notes = out.notes(v)
            assert len(notes) > out.steps // 16 and all(lo <= n.pitch <= hi for n in notes)
            assert out.voices[v][0] != HOLD


def test_harmonise_is_deterministic_and_handles_other_meters(baselines):
    waltz = chords((67, 60, 52, 48), (69, 60, 53, 41), (71, 62, 55, 43), (72, 64, 55, 48), meter=(3, 4), offset=8)
    for b in baselines.values():
        first = b.harmonise(soprano_only(waltz))
        assert first == b.harmonise(soprano_only(waltz))
        assert all(len(first.notes(v)) >= 1 for v in (1, 2, 3))


def test_fitting_on_nothing_is_refused():
    with pytest.raises(DataError):
        fit_baselines([])


def test_empty_and_silent_sopranos(baselines):
    empty = Chorale(voices=((), (), (), ()))
    silent = soprano_only(chords((72, 64, 55, 48), (72, 64, 55, 48)))
    silent = replace(silent, voices=((REST,) * 8, *silent.voices[1:]))
    for b in baselines.values():
        assert b.harmonise(empty) == empty and b.nll(empty) == (0.0, 0)
        assert b.harmonise(silent) == silent  # nothing to harmonise: the lower voices rest
        total, notes = b.nll(silent)
        assert notes == 0 and total >= 0


def test_baseline_report_on_a_small_corpus(corpus):
    r = baseline_report(corpus)
    assert r["split"] == "test" and r["chorales"] >= 1 and r["lower_notes"] > 0
    for name in ("lookup", "hmm"):
        b = r[name]
        assert 0 < b["nats_per_lower_note"] < 10
        assert 0 <= b["bass_agreement"] <= 1 and 0 <= b["chord_agreement"] <= 1
        assert b["reference_faults_per_100_beats"] == r["bach_faults_per_100_beats"]
    best = min(r[name]["nats_per_lower_note"] for name in ("lookup", "hmm"))
    assert r["test_nats_per_note"] == best and r["value"] == round(best, 4)
    assert r["units"] == "nats per lower-voice note"


def test_folk_tunes_are_harmonised_with_their_own_soprano(baselines):
    # a 6/8 tune in running eighths, and an empty melody the adapter refuses
    jig = [Note(67, 0, 6)] + [Note(p, 6 + 6 * i, 6) for i, p in enumerate([72, 74, 76, 74, 72, 71, 72, 67, 64, 60, 62])]
    tunes = [Melody(notes=jig, meter=(6, 8), key=(0, "major")), Melody(notes=[])]
    for b in baselines.values():
        r = folk_faults(b, tunes)
        assert (r["tunes"], r["refused"]) == (1, 1)
        assert r["beats"] > 0 and r["faults_per_100_beats"]["total"] >= 0
