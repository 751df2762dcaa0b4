"""The form of a tune: repeats in Melody, the tokenizer's repeat signs and grammar, MIDI, the corpus builder."""

import io

import pretty_midi
import pytest
import torch

from genmodels.core.errors import MidiError
from genmodels.learn.melody_corpus import _tune_record
from genmodels.music import Melody, Note, melody_to_midi, midi_bytes, read_midi
from genmodels.music.form import play_written, written_order
from genmodels.music.types import Repeat
from genmodels.tokenizers.melody import MelodyTokenizer

TOK = MelodyTokenizer()
IMPLICIT = MelodyTokenizer(styles=False)  # the vocabulary before styles: a repeat from the first bar opens implicitly


def bars_melody(bars, meter=(2, 4), form=()):
    """A melody of eighth... quarter notes: each bar a list of pitches, equal lengths filling the bar."""
    bt = meter[0] * 48 // meter[1]
    notes = []
    for i, ps in enumerate(bars):
        d = bt // len(ps)
        notes += [Note(p, i * bt + k * d, d) for k, p in enumerate(ps)]
    return Melody(notes, meter, (0, "major"), form=tuple(form))


A1, A2, E1, E2, B1, B2 = [60, 62], [64, 65], [67, 67], [72, 72], [71, 69], [67, 60]
# |: A1 A2 [1 E1 :|[2 E2 | B1 B2 ||, played out
TUNE = bars_melody([A1, A2, E1, A1, A2, E2, B1, B2], form=[Repeat(0, 2, 1, 1)])


def labels(ids):
    return [TOK.vocab[i] for i in ids]


def test_new_signs_keep_every_older_token_id():
    old = MelodyTokenizer(form=False)
    assert TOK.vocab[: old.vocab_size] == old.vocab
    assert TOK.vocab[old.vocab_size : old.vocab_size + 4] == ["|:", ":|", "[1", "[2"]  # then the styles
    assert MelodyTokenizer.from_config(old.to_config()) == old
    assert MelodyTokenizer.from_config(TOK.to_config()) == TOK


def test_repeats_are_written_once_and_decoded_played_out():
    ids = TOK.encode(TUNE)
    signs = [t for t in labels(ids) if t in ("|:", ":|", "[1", "[2")]
    assert signs == ["|:", "[1", ":|", "[2"]
    assert labels(ids).count("bar") == 6  # 8 bars played, the body's 2 written once
    implicit = [IMPLICIT.vocab[i] for i in IMPLICIT.encode(TUNE)]
    assert [t for t in implicit if t in ("|:", ":|", "[1", "[2")] == ["[1", ":|", "[2"]  # as ABC writes it
    assert IMPLICIT.decode(IMPLICIT.encode(TUNE)) == TUNE
    back = TOK.decode(ids)
    assert back.notes == TUNE.notes and back.form == TUNE.form
    assert TOK.count_notes(ids) == 12  # notes as written
    # a tokenizer without signs writes the tune played out
    old = MelodyTokenizer(form=False)
    assert labels(old.encode(TUNE)).count("bar") == 8
    assert old.decode(old.encode(TUNE)).notes == TUNE.notes


def test_an_explicit_opening_sign_decodes_to_the_same_tune():
    ids = IMPLICIT.encode(TUNE)
    explicit = ids[: TOK.header_length] + [TOK.sign_ids["|:"]] + ids[TOK.header_length :]
    back = IMPLICIT.decode(explicit)
    assert back.notes == TUNE.notes and back.form == TUNE.form
    later = bars_melody([B1, A1, A2, A1, A2], form=[Repeat(1, 2)])  # a repeat after the first bar keeps its |:
    assert labels(TOK.encode(later)).count("|:") == 1 and TOK.decode(TOK.encode(later)).form == later.form


def test_a_colon_bar_before_any_sign_repeats_from_the_start():
    """Without styles, in the open phase the tune may close a repeat of everything so far, or open one, or end;
    with styles every repeat opens with "|:"."""
    state = IMPLICIT.grammar_state(IMPLICIT.encode(bars_melody([A1, A2]), add_eos=False))
    allowed = {IMPLICIT.vocab[i] for i in IMPLICIT.allowed(state).nonzero().flatten().tolist()}
    assert {":|", "[1", "|:", "<eos>", "bar"} <= allowed
    no_bars = IMPLICIT.grammar_state(IMPLICIT.header((4, 4), (0, "major")))
    assert ":|" not in {IMPLICIT.vocab[i] for i in IMPLICIT.allowed(no_bars).nonzero().flatten().tolist()}
    state = TOK.grammar_state(TOK.encode(bars_melody([A1, A2]), add_eos=False))
    allowed = {TOK.vocab[i] for i in TOK.allowed(state).nonzero().flatten().tolist()}
    assert {"|:", "<eos>", "bar"} <= allowed and not {":|", "[1"} & allowed


def test_a_form_that_does_not_repeat_its_bars_is_refused():
    wrong = bars_melody([A1, A2, E1, A1, B1, E2, B1, B2])
    with pytest.raises(MidiError, match="does not play bar 2 again"):
        TOK.encode(Melody(wrong.notes, wrong.meter, wrong.key, form=(Repeat(0, 2, 1, 1),)))
    with pytest.raises(MidiError):
        Melody(wrong.notes, wrong.meter, wrong.key, form=(Repeat(0, 2, 1, 0),))  # one ending only
    with pytest.raises(MidiError):
        Melody(wrong.notes, wrong.meter, wrong.key, form=(Repeat(4, 3),))  # past the end


def step(state, label):
    return TOK.advance(state, TOK.index[label])


def allowed(state):
    return {TOK.vocab[i] for i in TOK.allowed(state).nonzero().flatten().tolist()}


def test_grammar_keeps_repeats_well_formed():
    st = TOK.grammar_state(TOK.header((2, 4), (0, "major")))
    assert "|:" in allowed(st) and ":|" not in allowed(st)
    st = step(st, "|:")
    assert allowed(st) == {"bar"}  # a body needs a bar
    for t in ["bar", "p:60", "d:24"]:
        st = step(st, t)
    assert {"bar", ":|", "[1"} == allowed(st)  # no <eos> while the repeat is open
    with pytest.raises(MidiError):
        step(st, "<eos>")
    st = step(st, "[1")
    for t in ["bar", "p:62", "d:24"]:
        st = step(st, t)
    st = step(st, ":|")
    assert allowed(st) == {"[2"}  # the second ending comes next
    st = step(st, "[2")
    assert allowed(st) == {"bar"}
    for t in ["bar", "p:64", "d:24"]:
        st = step(st, t)
    assert {"bar", "|:", "<eos>"} == allowed(st)
    assert st.played_bars == 4


def test_no_note_is_tied_into_a_repeat():
    st = TOK.grammar_state(TOK.header((2, 4), (0, "major")))
    for t in ["bar", "p:60", "d:24", "|:", "bar"]:
        st = step(st, t)
    assert "hold" not in allowed(st)


def test_second_ending_may_hold_the_body_s_last_note():
    st = TOK.grammar_state(TOK.header((2, 4), (0, "major")))
    for t in ["|:", "bar", "p:60", "d:24", "[1", "bar", "rest", "d:24", ":|", "[2", "bar"]:
        st = step(st, t)
    assert "hold" in allowed(st)  # played after the body, whose last event is a note
    ids = TOK.header((2, 4), (0, "major")) + [
        TOK.index[t] for t in ["|:", "bar", "p:60", "d:24", "[1", "bar", "rest", "d:24", ":|", "[2"]
    ]
    ids += [TOK.index[t] for t in ["bar", "hold", "d:12", "rest", "d:12", "<eos>"]]
    m = TOK.decode(ids)
    assert m.notes == [Note(60, 0, 24), Note(60, 48, 36)]


def test_written_order_and_play_written_are_inverse():
    for form, n in [((Repeat(0, 2, 1, 1),), 8), ((Repeat(1, 4), Repeat(9, 3, 1, 1)), 17), ((), 3)]:
        items = written_order(form, n)
        played, back = play_written(items)
        assert played == list(range(n)) or sorted(played) != played  # each written bar's played position
        assert back == form


def test_a_prefix_plays_what_it_has():
    played, form = play_written(["|:", 0, 1])
    assert played == [0, 1] and form == ()
    played, form = play_written(["|:", 0, "[1", 1, ":|"])
    assert played == [0, 1, 0] and form == ()
    played, form = play_written(["|:", 0, "[1", 1, ":|", "[2", 2])
    assert played == [0, 1, 0, 2] and form == (Repeat(0, 1, 1, 1),)


def test_midi_keeps_the_form_and_ignores_a_stale_one():
    back = read_midi(midi_bytes(TUNE))
    assert back.notes == TUNE.notes and back.form == TUNE.form
    edited = Melody(bars_melody([A1, A2, E1, B1, A2, E2, B1, B2]).notes, (2, 4), (0, "major"))
    assert read_midi(midi_bytes(edited)).form == ()
    # a form event that no longer matches the notes (edited elsewhere): read as played, without it
    pm = melody_to_midi(edited)
    pm.text_events.append(pretty_midi.Text("form: 0 2 1 1", 0.0))
    buf = io.BytesIO()
    pm.write(buf)
    m = read_midi(buf.getvalue())
    assert m.notes == edited.notes and m.form == ()


def test_slice_and_concat_keep_the_repeats_inside():
    assert TUNE.slice_bars(0, 6).form == TUNE.form
    assert TUNE.slice_bars(1).form == ()
    assert TUNE.concat(TUNE).form == (Repeat(0, 2, 1, 1), Repeat(8, 2, 1, 1))


def abc_record(abc):
    from music21 import converter

    return _tune_record(converter.parse(abc, format="abc"), "oneills1850")


def test_builder_plays_repeats_as_abc2midi_and_keeps_them():
    # The second part ends in :| without |:, so it goes back to the end of the first part (music21's
    # expandRepeats would go back to the start of the tune).
    rec = abc_record("X:1\nM:2/4\nL:1/8\nK:C\n|:CDEF|GABc:|\ncBAG|FEDC:|\n")
    played = [p for p, _, _ in rec["notes"]]
    a, b = [60, 62, 64, 65, 67, 69, 71, 72], [72, 71, 69, 67, 65, 64, 62, 60]
    assert played == a + a + b + b
    assert rec["form"] == [[0, 2, 0, 0], [4, 2, 0, 0]]


def test_builder_turns_a_pickup_into_one_bar_endings():
    rec = abc_record("X:1\nM:2/4\nL:1/8\nK:C\nG|:c2 e2|g2 ge|c2 B2|c3 :|e|d2 B2|c4|]\n")
    # bar 0: the pickup; the passes differ in their last bar, which ends with the pickup into the
    # next pass (G) or into the next part (e)
    assert rec["form"] == [[1, 3, 1, 1]]
    m = Melody([Note(*n) for n in rec["notes"]], (2, 4), form=tuple(Repeat(*r) for r in rec["form"]))
    assert TOK.decode(TOK.encode(m)).notes == m.notes


def test_builder_reads_written_endings():
    rec = abc_record("X:1\nM:2/4\nL:1/8\nK:C\n|:CDEF|GABc|[1 d2 d2:|[2 e2 e2|]\n")
    assert rec["form"] == [[0, 2, 1, 1]]
    played = [p for p, _, _ in rec["notes"]]
    assert played == [60, 62, 64, 65, 67, 69, 71, 72, 74, 74, 60, 62, 64, 65, 67, 69, 71, 72, 76, 76]


def test_grammar_masks_are_fresh_tensors():
    st = TOK.grammar_state(TOK.header((2, 4), (0, "major")))
    m = TOK.allowed(st)
    m[:] = True
    assert not TOK.allowed(st)[TOK.eos_id]
    assert isinstance(m, torch.Tensor)
