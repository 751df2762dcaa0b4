"""Tests for genmodels.music: MIDI in/out, note-name seeds, tokenizer and grammar."""

import io
import random

import pretty_midi
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genmodels.core.errors import MidiError, SeedError
from genmodels.music import (
    MAX_MIDI_BYTES,
    PITCH_RANGE,
    SUPPORTED_METERS,
    Melody,
    Note,
    format_notes,
    melody_to_midi,
    midi_bytes,
    note_name,
    parse_note_prompt,
    read_midi,
    write_midi,
)
from genmodels.music.scales import to_key
from genmodels.tokenizers.melody import MelodyTokenizer
from genmodels.tokenizers.melody_grammar import GrammarState

TOK = MelodyTokenizer()


def mel(spec, meter=(4, 4), key=(0, "major"), tempo=120.0):
    return Melody([Note(p, s, d) for p, s, d in spec], meter=meter, key=key, tempo=tempo)


# Hand-built melodies: pickup (leading rest), tie across bar, triplets, sixteenths, rests, 6/8, 3/4.
MELODIES = [
    mel(
        [
            (67, 36, 12),
            (72, 48, 24),
            (74, 72, 36),
            (76, 108, 4),
            (74, 112, 4),
            (72, 116, 4),
            (71, 120, 3),
            (69, 123, 3),
            (67, 126, 6),
            (65, 138, 30),
        ],
        key=(0, "major"),
    ),
    mel([(64, 0, 18), (62, 18, 6), (60, 24, 12), (62, 48, 42), (55, 96, 3)], meter=(6, 8), key=(9, "minor")),
    mel(
        [(60, 24, 12), (62, 36, 48), (64, 90, 4), (65, 94, 4), (67, 98, 4), (108, 102, 1), (21, 103, 1)],
        meter=(3, 4),
        key=(7, "major"),
        tempo=96.0,
    ),
    mel([(70, 0, 200)], meter=(2, 2), key=(10, "minor"), tempo=60.0),
]


def _assert_same(a: Melody, b: Melody):
    assert a.notes == b.notes
    assert a.meter == b.meter and a.key == b.key


@pytest.mark.parametrize("m", MELODIES)
def test_token_round_trip(m):
    ids = TOK.encode(m)
    out = TOK.decode(ids)
    _assert_same(out, m)
    assert TOK.count_notes(ids) == len(m.notes)
    # every bar sums to bar_ticks
    bars, cur = [], None
    for i in ids[3:]:
        t = TOK.vocab[i]
        if t == "bar":
            cur = []
            bars.append(cur)
        elif t.startswith("d:"):
            cur.append(int(t[2:]))
    assert bars and all(sum(b) == m.bar_ticks for b in bars)
    assert len(bars) == m.n_bars
    # accepted step by step
    state = TOK.grammar_state(ids[:3])
    for i in ids[3:]:
        assert TOK.allowed(state)[i]
        state = TOK.advance(state, i)
    assert state.expecting == "done"


def test_encode_splits_ties_and_pickup():
    m = MELODIES[0]
    toks = [TOK.vocab[i] for i in TOK.encode(m)]
    assert toks[:5] == ["<bos>", "meter:4/4", "key:0:major", "bar", "rest"]
    assert "hold" in toks
    assert toks[-1] == "<eos>"


@pytest.mark.parametrize("m", MELODIES)
def test_midi_file_round_trip(m, tmp_path):
    path = tmp_path / "x.mid"
    write_midi(m, path, program=40)
    back = read_midi(path)
    _assert_same(back, m)
    assert back.tempo == pytest.approx(m.tempo)
    assert read_midi(midi_bytes(m)).notes == m.notes
    assert melody_to_midi(m).instruments[0].program == 0


def test_decode_tolerates_prefixes():
    ids = TOK.encode(MELODIES[0])
    for k in range(len(ids) + 1):
        out = TOK.decode(ids[:k])
        for n in out.notes:
            assert n in MELODIES[0].notes or any(n.start == o.start and n.pitch == o.pitch for o in MELODIES[0].notes)
    assert TOK.decode(ids[:-1] + [TOK.pad_id] * 3).notes == MELODIES[0].notes


def test_decode_rejects_bad_order():
    bad = TOK.header((4, 4), (0, "major")) + [TOK.bar_id, TOK.index["d:4"]]
    with pytest.raises(MidiError):
        TOK.decode(bad)
    with pytest.raises(MidiError):
        TOK.decode(TOK.header((4, 4), (0, "major")) + [TOK.bar_id, TOK.hold_id, TOK.index["d:4"]])
    with pytest.raises(MidiError):
        TOK.advance(TOK.grammar_state(TOK.header((3, 4), (0, "minor"))), TOK.eos_id)


def test_grammar_random_walks():
    rng = random.Random(0)
    for meter in SUPPORTED_METERS:
        for _ in range(5):
            ids = TOK.header(meter, (rng.randrange(12), rng.choice(["major", "minor"])))
            state = TOK.grammar_state(ids)
            for _ in range(rng.randrange(5, 120)):
                mask = TOK.allowed(state)
                assert mask.dtype == torch.bool and mask.shape == (TOK.vocab_size,)
                assert not mask[TOK.pad_id] and not mask[TOK.bos_id]
                legal = mask.nonzero().flatten().tolist()
                if not legal:
                    break
                choice = rng.choice(legal)
                ids.append(choice)
                state = TOK.advance(state, choice)
            out = TOK.decode(ids)
            bt = out.bar_ticks
            assert out.meter == meter
            # decoded notes are sorted, non-overlapping and inside the completed/partial bars, played out
            assert out.end <= (state.played_bars + 1) * bt
            if state.expecting in ("bar_or_eos", "done"):
                assert TOK.encode(out, add_eos=False)[3:] != [] or not out.notes
                if out.notes:
                    re_ids = TOK.encode(out)
                    assert TOK.decode(re_ids).notes == out.notes


def test_tokenizer_config():
    cfg = TOK.to_config()
    import json

    assert MelodyTokenizer.from_config(json.loads(json.dumps(cfg))) == TOK
    assert TOK.header_length == 3 and TOK.vocab[TOK.bar_id] == "bar"
    assert isinstance(TOK.grammar_state(TOK.header((6, 8), (2, "minor"))), GrammarState)


def test_melody_helpers():
    m = MELODIES[0]
    t = m.transpose(3)
    assert t.key == (3, "major") and [n.pitch for n in t.notes] == [n.pitch + 3 for n in m.notes]
    k = to_key(m, 11, "minor")
    assert k.key == (11, "minor") and k.notes[0].pitch == m.notes[0].pitch - 1
    assert to_key(m, 6).notes[0].pitch == m.notes[0].pitch + 6
    with pytest.raises(MidiError):
        MELODIES[2].transpose(1)  # pitch 108 leaves the range
    s = m.slice_bars(1, 2)
    assert s.n_bars == 1 and s.notes[0] == Note(72, 0, 24)
    assert m.n_bars == 4 and m.bar_ticks == 48
    c = m.slice_bars(0, 1).concat(m.slice_bars(1, 2))
    assert c.notes[-1] == Note(74, 72, 24) and c.n_bars == 2
    assert Melody([], meter=(6, 8)).bar_ticks == 36
    with pytest.raises(MidiError):
        Melody([Note(60, 0, 12), Note(62, 6, 12)])


def test_parse_note_prompt_examples():
    m = parse_note_prompt("C4 D#4/2 r/4 G4*3/2 Bb3 Eb5*2 c4", key=(0, "major"))
    assert [n.pitch for n in m.notes] == [60, 63, 67, 58, 75, 60]
    assert [n.start for n in m.notes] == [0, 12, 21, 39, 51, 75]
    assert [n.duration for n in m.notes] == [12, 6, 18, 12, 24, 12]
    assert note_name(60) == "C4" and note_name(70) == "A#4"
    t = parse_note_prompt("e4/3 f4/3 g4/3 a4*2/3 bb4/4", meter=(3, 4), key=(5, "major"), tempo=90)
    assert [n.duration for n in t.notes] == [4, 4, 4, 8, 3] and t.tempo == 90
    for m2 in [m, t] + MELODIES:
        text = format_notes(m2)
        assert parse_note_prompt(text, meter=m2.meter, key=m2.key).notes == m2.notes
    est = parse_note_prompt("A3 C4 E4 A4 E4 C4 A3/2 G#3/2 A3*2")
    assert est.key[1] in ("major", "minor") and 0 <= est.key[0] < 12


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("C4 D4 H4", "note 3 'H4'"),
        ("C4 D4/0", "note 2"),
        ("C4 D4/5", "not on the grid"),
        ("C4 C9", "note 2 'C9'"),
        ("C4 A0 Ab0", "note 3 'Ab0'"),
        ("", "empty"),
        ("   ", "empty"),
        ("r r/2", "only rests"),
        ("C4*100", "at most"),
    ],
)
def test_parse_note_prompt_errors(text, fragment):
    with pytest.raises(SeedError) as e:
        parse_note_prompt(text)
    assert fragment in str(e.value)


def test_parse_note_prompt_limits():
    with pytest.raises(SeedError):
        parse_note_prompt(" ".join(["C4"] * 513))
    with pytest.raises(SeedError):
        parse_note_prompt("C4", meter=(5, 16))


# ---------------------------------------------------------------------------------------------
# read_midi on user-style files
# ---------------------------------------------------------------------------------------------


def _save(pm: pretty_midi.PrettyMIDI, path):
    pm.write(str(path))
    return path


def test_read_midi_multitrack_drums_chords(tmp_path):
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=100)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for i in range(64):
        drums.notes.append(pretty_midi.Note(100, 36, i * 0.15, i * 0.15 + 0.1))
    piano = pretty_midi.Instrument(program=0)
    q = 0.6  # quarter at 100 BPM
    melody = [72, 74, 76, 77, 79, 77, 76, 74]
    for i, p in enumerate(melody):
        for c in (p, p - 4, p - 7):  # chords: melody on top
            piano.notes.append(pretty_midi.Note(80, c, i * q, (i + 1) * q))
    bass = pretty_midi.Instrument(program=33)
    for i in range(4):
        bass.notes.append(pretty_midi.Note(80, 36, i * 2 * q, (i + 1) * 2 * q))
    pm.instruments += [drums, bass, piano]
    m = read_midi(_save(pm, tmp_path / "multi.mid"))
    assert [n.pitch for n in m.notes] == melody
    assert [n.duration for n in m.notes] == [12] * 8
    assert m.tempo == pytest.approx(100)
    assert m.meter == (4, 4)  # no time signature -> default


def test_read_midi_tempo_and_meter_changes(tmp_path):
    pm = pretty_midi.PrettyMIDI(resolution=96)
    mid = pm  # build via mido for an explicit tempo change
    import mido

    f = mido.MidiFile(ticks_per_beat=96)
    tr = mido.MidiTrack()
    f.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90), time=0))
    tr.append(mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0))
    tr.append(mido.MetaMessage("key_signature", key="Em", time=0))
    pitches = [64, 66, 67, 69, 71, 72, 71, 69]
    for i, p in enumerate(pitches):
        if i == 4:
            tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(150), time=0))
            tr.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
        tr.append(mido.Message("note_on", note=p, velocity=80, time=0))
        tr.append(mido.Message("note_off", note=p, velocity=0, time=48 if i % 2 else 96))
    buf = io.BytesIO()
    f.save(file=buf)
    m = read_midi(buf.getvalue())
    assert m.tempo == pytest.approx(90)
    assert m.meter == (3, 4)
    assert m.key == (4, "minor")
    assert [n.pitch for n in m.notes] == pitches
    assert [n.duration for n in m.notes] == [12, 6] * 4  # beats, regardless of the tempo change
    del mid


@pytest.mark.parametrize("first", [(1, 4), (3, 4)])
def test_read_midi_pickup_short_first_time_signature(tmp_path, first):
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    pm.time_signature_changes += [pretty_midi.TimeSignature(*first, 0.0), pretty_midi.TimeSignature(3, 4, 0.5)]
    inst = pretty_midi.Instrument(program=0)
    for i, p in enumerate([67, 72, 71, 72, 74]):  # one-beat pickup, then 3/4 bars
        inst.notes.append(pretty_midi.Note(90, p, i * 0.5, (i + 1) * 0.5))
    pm.instruments.append(inst)
    m = read_midi(_save(pm, tmp_path / "pickup.mid"))
    assert m.meter == (3, 4)
    assert [n.start for n in m.notes] == [24, 36, 48, 60, 72]  # pickup ends on the bar line at 36
    toks = [TOK.vocab[i] for i in TOK.encode(m)]
    assert toks[3:7] == ["bar", "rest", "d:24", "p:67"]


def test_read_midi_drum_only(tmp_path):
    pm = pretty_midi.PrettyMIDI()
    d = pretty_midi.Instrument(program=0, is_drum=True)
    d.notes.append(pretty_midi.Note(100, 38, 0, 0.5))
    pm.instruments.append(d)
    with pytest.raises(MidiError, match="(?i)drum"):
        read_midi(_save(pm, tmp_path / "drums.mid"))
    empty = pretty_midi.PrettyMIDI()
    with pytest.raises(MidiError):
        read_midi(_save(empty, tmp_path / "empty.mid"))


def test_read_midi_size_and_garbage(tmp_path):
    big = tmp_path / "big.mid"
    big.write_bytes(b"MThd" + b"\0" * (MAX_MIDI_BYTES + 10))
    with pytest.raises(MidiError, match="limit"):
        read_midi(big)
    with pytest.raises(MidiError, match="limit"):
        read_midi(b"MThd" + b"\0" * (MAX_MIDI_BYTES + 10))
    with pytest.raises(MidiError):
        read_midi(tmp_path / "missing.mid")
    with pytest.raises(MidiError):
        read_midi(b"hello world")
    with pytest.raises(MidiError):
        read_midi(12345)
    good = midi_bytes(MELODIES[0])
    for cut in (10, 14, 22, 30, len(good) // 2, len(good) - 3):
        try:
            read_midi(good[:cut])
        except MidiError:
            pass


_GOOD = midi_bytes(MELODIES[0])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda b: b"MThd" + b),
        st.tuples(st.integers(0, len(_GOOD)), st.binary(max_size=20)).map(lambda t: _GOOD[: t[0]] + t[1]),
        st.tuples(st.integers(0, len(_GOOD) - 1), st.integers(0, 255)).map(
            lambda t: _GOOD[: t[0]] + bytes([t[1]]) + _GOOD[t[0] + 1 :]
        ),
    )
)
def test_read_midi_arbitrary_bytes_only_midierror(data):
    try:
        m = read_midi(data)
    except MidiError:
        return
    assert isinstance(m, Melody)


def test_pitch_range_constant():
    assert PITCH_RANGE == (21, 108)
    assert TOK.vocab_size == len(set(TOK.vocab))


def test_read_midi_bounded(tmp_path):
    import mido

    f = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    f.tracks.append(tr)
    tr.append(mido.Message("note_on", note=60, velocity=80, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=2**27))  # absurd length
    buf = io.BytesIO()
    f.save(file=buf)
    with pytest.raises(MidiError, match="too long"):
        read_midi(buf.getvalue())
    f = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    f.tracks.append(tr)
    for _ in range(20_001):
        tr.append(mido.Message("note_on", note=60, velocity=80, time=0))
        tr.append(mido.Message("note_off", note=60, velocity=0, time=10))
    buf = io.BytesIO()
    f.save(file=buf)
    with pytest.raises(MidiError, match="limit"):
        read_midi(buf.getvalue())


# ---------------------------------------------------------------------------------------------
# The package: one skyline, one pitch-name table, torch only for the tokenizer
# ---------------------------------------------------------------------------------------------


def test_skyline_keeps_the_highest_note_of_each_onset_cut_at_the_next():
    from genmodels.music import skyline

    events = [(60, 0, 24), (67, 0, 12), (64, 12, 36), (130, 36, 48), (50, 48, 48), (70, 60, 60)]
    assert skyline(events) == [Note(67, 0, 12), Note(64, 12, 24), Note(106, 36, 12)]
    assert skyline([(60, 5, 5), (60, -3, 2)]) == []  # zero length, negative start


def test_key_names_and_note_names_share_one_table():
    from genmodels.music import KEY_NAMES, PITCH_CLASS_NAMES

    assert [note_name(60 + pc)[:-1] for pc in range(12)] == list(PITCH_CLASS_NAMES)
    assert list(KEY_NAMES) == ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    for pc, name in enumerate(KEY_NAMES):
        assert parse_note_prompt(f"{name}4", key=(0, "major")).notes[0].pitch == 60 + pc


@pytest.mark.parametrize(
    "module", ["genmodels.music.types", "genmodels.music", "genmodels.music.notation", "genmodels.music.midi"]
)
def test_note_types_midi_and_notation_do_not_import_torch(module):
    import subprocess
    import sys

    code = f"import {module}, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_music_needs_no_torch():
    """Reading and writing notes, MIDI and note names never loads torch (the tokenizers live a layer up)."""
    import subprocess
    import sys

    code = "import sys, genmodels.music, genmodels.music.abc, genmodels.harmony.adapt; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
