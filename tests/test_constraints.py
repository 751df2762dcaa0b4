"""Melody constraints on hand-built logits: no model involved."""

import math
import random

import pytest
import torch

from genmodels.core.errors import SettingsError
from genmodels.infer.constraints import EndOnTonic, KeepRhythm, MelodySteering, StayInKey, rhythm_template, total_bias
from genmodels.music import Melody, Note
from genmodels.tokenizers.melody import MelodyTokenizer

C_MAJOR = (0, 2, 4, 5, 7, 9, 11)


def random_walk(tok, header, bars, constraints, seed):
    """Sample ``bars`` bars after ``header`` from random logits under the grammar and the constraints."""
    rng = torch.Generator().manual_seed(seed)
    ids = list(header)
    state = tok.grammar_state(ids)
    while True:
        logits = torch.randn(tok.vocab_size, generator=rng) * 3
        allowed = tok.allowed(state)
        allowed[list(tok.id_sign)] = False  # tunes without repeats here: the form has tests of its own
        if state.expecting == "bar_or_eos":
            allowed[tok.bar_id if state.bars_completed >= bars else tok.eos_id] = False
        logits = logits.masked_fill(~allowed, -math.inf)
        b = total_bias(constraints, state)
        if b is not None:
            logits = logits + b
        assert torch.isfinite(logits).any(), f"constraints left no legal token at {state}"
        t = int(logits.argmax())
        ids.append(t)
        if t == tok.eos_id:
            return tok.decode(ids)
        state = tok.advance(state, t)
        for c in constraints:
            c.advance(t)


@pytest.fixture(scope="module")
def tok():
    return MelodyTokenizer()


def test_stay_in_key_strict_masks_and_gentle_penalises(tok):
    state = tok.grammar_state(tok.header((4, 4), (0, "major")) + [tok.bar_id])
    strict = StayInKey(tok, C_MAJOR, "strict").bias(state)
    gentle = StayInKey(tok, C_MAJOR, "gentle").bias(state)
    assert strict[tok.pitch_id(61)] == -math.inf and strict[tok.pitch_id(60)] == 0
    assert 0 > gentle[tok.pitch_id(61)] > -math.inf and gentle[tok.pitch_id(62)] == 0
    assert strict[tok.rest_id] == 0
    assert StayInKey(tok, C_MAJOR, "off").bias(state) is None
    with pytest.raises(SettingsError):
        StayInKey(tok, C_MAJOR, "sometimes")


def test_strict_key_random_tunes_stay_in_scale(tok):
    for seed in range(20):
        m = random_walk(tok, tok.header((3, 4), (0, "major")), 4, [StayInKey(tok, C_MAJOR, "strict")], seed)
        assert {n.pitch % 12 for n in m.notes} <= set(C_MAJOR)


@pytest.mark.parametrize("meter", [(4, 4), (6, 8), (3, 4)])
def test_end_on_tonic_always_ends_on_the_tonic_with_a_complete_bar(tok, meter):
    for seed in range(40):
        tonic = seed % 12
        m = random_walk(tok, tok.header(meter, (tonic, "major")), 3, [EndOnTonic(tok, tonic, last_bar=2)], seed)
        assert m.n_bars == 3 and m.end == 3 * m.bar_ticks, "the last bar is complete and ends on a note"
        assert m.notes[-1].pitch % 12 == tonic


def test_keep_rhythm_changes_only_pitches(tok):
    rhythm = Melody([Note(60, 0, 12), Note(62, 12, 6), Note(64, 24, 30), Note(65, 60, 36)], (4, 4), (0, "major"))
    template = rhythm_template(tok, tok.encode(rhythm))
    for seed in range(10):
        cons = [StayInKey(tok, C_MAJOR, "strict"), KeepRhythm(tok, template, tonic=0)]
        m = random_walk(tok, tok.header((4, 4), (0, "major")), rhythm.n_bars, cons, seed)
        assert [(n.start, n.duration) for n in m.notes] == [(n.start, n.duration) for n in rhythm.notes]
        assert {n.pitch % 12 for n in m.notes} <= set(C_MAJOR)
        assert m.notes[-1].pitch % 12 == 0


def test_rhythm_source_without_notes_is_refused(tok):
    with pytest.raises(SettingsError):
        rhythm_template(tok, tok.header((4, 4), (0, "major")) + [tok.bar_id, tok.rest_id, tok.dur_id(48)])


def test_steering_builds_what_was_asked(tok):
    assert MelodySteering().build(tok, C_MAJOR, 0, 3) == []
    kinds = [type(c) for c in MelodySteering("gentle", True).build(tok, C_MAJOR, 0, 3)]
    assert kinds == [StayInKey, EndOnTonic]
    with pytest.raises(SettingsError):
        MelodySteering("loud").checked()
    random.seed(0)
