"""Hostile input: arbitrary seeds and strange MIDI files give a result or a typed error, never another
exception; parsing stays bounded; repeated generation does not leak memory."""

import io
import random
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genmodels.core.errors import MidiError, SeedError
from genmodels.infer.decoding import Settings
from genmodels.infer.sampling import Sampler
from genmodels.music import MAX_NOTES, Melody, parse_note_prompt, read_midi

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def gen(tiny_text_ckpt):
    return Sampler(tiny_text_ckpt)


@FUZZ
@given(st.text(max_size=3000))
def test_any_unicode_text_seed_generates(gen, text):
    r = gen.complete(text, 3, Settings(temperature=1.0, seed=1))[0]
    assert isinstance(r.continuation, str)


@pytest.mark.parametrize("n", [0, 1, 99_999, 100_000])
def test_text_seed_lengths(gen, n):
    text = ("All the world's a stage, \n" * 4000)[:n]
    assert isinstance(gen.complete(text, 2)[0].continuation, str)
    assert gen.prompt_was_cut(text) == (n >= 99_999)  # the context window is 1,024 tokens


@FUZZ
@given(st.text(max_size=200))
def test_any_note_seed_string_parses_or_says_why(text):
    try:
        m = parse_note_prompt(text)
    except SeedError as e:
        assert str(e)
    else:
        assert isinstance(m, Melody) and m.notes


def _midi(tracks, type_=1, tpb=480) -> bytes:
    mid = mido.MidiFile(type=type_, ticks_per_beat=tpb)
    for msgs in tracks:
        t = mido.MidiTrack()
        t.extend(msgs)
        mid.tracks.append(t)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def _notes(pitches, dur=240, channel=0, velocity=80, gap=0):
    out = []
    for p in pitches:
        out.append(mido.Message("note_on", note=p, velocity=velocity, channel=channel, time=gap))
        out.append(mido.Message("note_off", note=p, velocity=0, channel=channel, time=dur))
    return out


def _read(data: bytes):
    try:
        return read_midi(data)
    except MidiError as e:
        assert str(e)
        return e


CASES = {
    "no notes": _midi([[mido.MetaMessage("set_tempo", tempo=500000)]]),
    "drums only": _midi([_notes([36, 38, 42] * 10, channel=9)]),
    "100,000 notes": _midi([_notes([60 + i % 12 for i in range(100_000)], dur=10)]),
    "1,000 tempo changes": _midi(
        [
            [mido.MetaMessage("set_tempo", tempo=300000 + 500 * i, time=60) for i in range(1000)]
            + _notes([60, 62, 64, 65, 67] * 20)
        ]
    ),
    "extreme pitches and velocities": _midi(
        [_notes([0, 127, 1, 126, 60], velocity=127) + _notes([64, 65], velocity=1)]
    ),
    "format 2": _midi([_notes([60, 62, 64]), _notes([67, 69, 71])], type_=2),
    "zero-length and overlapping": _midi(
        [
            [
                mido.Message("note_on", note=60, velocity=90, time=0),
                mido.Message("note_on", note=64, velocity=90, time=0),
                mido.Message("note_off", note=64, velocity=0, time=0),
                mido.Message("note_on", note=67, velocity=90, time=100),
                mido.Message("note_off", note=60, velocity=0, time=500),
                mido.Message("note_off", note=67, velocity=0, time=10),
            ]
        ]
    ),
    "huge delta time": _midi(
        [
            _notes([60])
            + [
                mido.Message("note_on", note=62, velocity=90, time=200_000_000),
                mido.Message("note_off", note=62, velocity=0, time=240),
            ]
        ]
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_strange_midi_files(name):
    out = _read(CASES[name])
    expect_error = {"no notes", "drums only", "100,000 notes", "huge delta time"}
    if name in expect_error:
        assert isinstance(out, MidiError), name
    else:
        assert isinstance(out, Melody) and out.notes and len(out.notes) <= MAX_NOTES, (name, out)
        assert all(21 <= n.pitch <= 108 and n.duration > 0 for n in out.notes)


@pytest.mark.parametrize("name", ["format 2", "1,000 tempo changes", "extreme pitches and velocities"])
def test_truncated_files_never_raise_anything_else(name):
    data = CASES[name]
    rng = random.Random(0)
    for cut in sorted({rng.randrange(1, len(data)) for _ in range(40)} | {1, 4, 14, len(data) - 1}):
        _read(data[:cut])


@FUZZ
@given(st.binary(max_size=400))
def test_midi_header_with_garbage_body(body):
    _read(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk" + len(body).to_bytes(4, "big") + body)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_2000_generations_do_not_grow_memory(gen):
    for i in range(200):  # warm-up: allocator pools, caches
        gen.complete("Enter", 4, Settings(temperature=1.0, seed=i))
    before = _rss_mb()
    for i in range(2000):
        gen.complete("Enter", 4, Settings(temperature=1.0, seed=i, n=1 + i % 4))
    growth = _rss_mb() - before
    print(f"resident memory growth over 2,000 generations: {growth:.1f} MB")
    assert growth < 50
