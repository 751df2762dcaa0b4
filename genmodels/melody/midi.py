"""MIDI files in and out: bounded reading of any MIDI file into one Melody, and writing one back.

Reading follows pretty_midi's split: the bytes are checked with mido first (size, note count,
length) so that a hostile file cannot make pretty_midi allocate without bound; then the melody
instrument is reduced to a monophonic line by `skyline`, the one reduction the corpus builder uses too.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterable

import pretty_midi

from genmodels.errors import MidiError
from genmodels.melody.notation import estimate_key
from genmodels.melody.types import (
    MAX_NOTES,
    MODES,
    SUPPORTED_METERS,
    TICKS_PER_QUARTER,
    Melody,
    Note,
    bar_ticks_for,
    fold_into_range,
)

MAX_MIDI_BYTES = 2_000_000
MIDI_RESOLUTION = 480  # ticks per quarter written into MIDI files (a multiple of 12)
_MAX_BEATS = 100_000
_MAX_TICKS = 50_000_000


def skyline(events: Iterable[tuple[int, int, int]]) -> list[Note]:
    """(pitch, start, end) in grid ticks -> a monophonic line: the highest note at each onset, cut
    where the next onset starts. Pitches are folded into PITCH_RANGE first; events that do not
    end after they start (or start before 0) are dropped; of equal notes the shortest wins."""
    raw = sorted((s, -fold_into_range(p), e) for p, s, e in events if e > s >= 0)
    onsets: list[tuple[int, int, int]] = []
    for s, neg_pitch, e in raw:
        if not onsets or onsets[-1][0] != s:
            onsets.append((s, -neg_pitch, e))
    notes: list[Note] = []
    for i, (s, p, e) in enumerate(onsets):
        if i + 1 < len(onsets):
            e = min(e, onsets[i + 1][0])
        if e > s:
            notes.append(Note(p, s, e - s))
    return notes


# --------------------------------------------------------------------------------------------
# MIDI in
# --------------------------------------------------------------------------------------------


def read_midi(source: str | os.PathLike | bytes) -> Melody:
    """Extract one monophonic melody from any MIDI file (path or bytes).

    Rule: drum instruments are ignored; the non-drum instrument with the most notes is taken;
    at each onset only the highest note is kept (skyline) and every note is cut where the next
    one starts. Onsets and offsets are mapped through the file's tempo map to beats (MIDI ticks /
    resolution) and rounded to the 12-ticks-per-quarter grid; notes that round to zero length
    are dropped; pitches outside PITCH_RANGE are moved by octaves into it. Tempo = the first
    tempo (BPM); meter = the first time signature (4/4 if unsupported); key = the first key
    signature event, else estimated by music21's key analysis of the pitches.
    Pickup: if the first time signature lasts less than one of its bars and another follows
    (how notation programs export an anacrusis), or it is an unsupported meter (e.g. 1/4) lasting
    exactly one bar that is shorter than the next meter's bar, the second one is the meter and all
    notes are shifted right so the pickup ends on a bar line.
    Every problem (not MIDI, corrupt, too large, too many notes, drums only, no notes) raises
    MidiError.
    """
    pm = _load_pretty_midi(source)
    try:
        return _melody_from_pretty_midi(pm)
    except MidiError:
        raise
    except (Exception, RecursionError) as e:
        raise MidiError(f"Cannot extract a melody from this MIDI file ({type(e).__name__}: {e})"[:300]) from None


def _read_bytes(source: str | os.PathLike | bytes) -> bytes:
    """The file's bytes (at most MAX_MIDI_BYTES + 1 read from disk); MidiError if unreadable."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if not isinstance(source, (str, os.PathLike)):
        raise MidiError(f"read_midi needs a path or bytes, got {type(source).__name__}")
    try:
        size = os.path.getsize(source)
    except OSError as e:
        raise MidiError(f"Cannot open MIDI file {os.fspath(source)!r}: {e.strerror or e}") from None
    if size > MAX_MIDI_BYTES:
        raise MidiError(f"MIDI file is {size:,} bytes; the limit is {MAX_MIDI_BYTES:,}")
    try:
        with open(source, "rb") as f:
            return f.read(MAX_MIDI_BYTES + 1)
    except OSError as e:
        raise MidiError(f"Cannot read MIDI file {os.fspath(source)!r}: {e.strerror or e}") from None


def _load_pretty_midi(source: str | os.PathLike | bytes) -> pretty_midi.PrettyMIDI:
    data = _read_bytes(source)
    if len(data) > MAX_MIDI_BYTES:
        raise MidiError(f"MIDI file is {len(data):,} bytes; the limit is {MAX_MIDI_BYTES:,}")
    if not data.startswith(b"MThd"):
        raise MidiError("Not a MIDI file (it does not start with the 'MThd' header)")
    try:
        import mido

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mid = mido.MidiFile(file=io.BytesIO(data))
            _check_size(mid)
            return pretty_midi.PrettyMIDI(mido_object=mid)
    except MidiError:
        raise
    except (Exception, RecursionError) as e:  # mido/pretty_midi raise many types on bad bytes
        raise MidiError(f"Corrupt or unsupported MIDI file ({type(e).__name__}: {e})"[:300]) from None


def _check_size(mid) -> None:
    """Bounded parsing: pretty_midi allocates an array as long as the last tick, and builds every
    note, so check both before handing the file over."""
    n_notes, max_tick = 0, 0
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                n_notes += 1
        max_tick = max(max_tick, tick)
    if n_notes > MAX_NOTES:
        raise MidiError(f"MIDI file has {n_notes:,} notes; the limit is {MAX_NOTES:,}")
    if mid.ticks_per_beat <= 0 or max_tick / mid.ticks_per_beat > _MAX_BEATS or max_tick > _MAX_TICKS:
        raise MidiError("MIDI file is too long (more than 100,000 beats) or has an invalid resolution")


def _melody_from_pretty_midi(pm: pretty_midi.PrettyMIDI) -> Melody:
    inst = _melody_instrument(pm)
    if pm.resolution <= 0:
        raise MidiError("MIDI file has an invalid resolution")

    def grid(t: float) -> int:
        return math.floor(pm.time_to_tick(t) * TICKS_PER_QUARTER / pm.resolution + 0.5)

    notes = skyline((n.pitch, grid(n.start), grid(n.end)) for n in inst.notes)
    if not notes:
        raise MidiError("Every note of the melody instrument is shorter than the 1/48-note grid")
    meter, shift = _meter_and_pickup(pm, grid)
    if shift:
        notes = [Note(n.pitch, n.start + shift, n.duration) for n in notes]
    return Melody(notes=notes, meter=meter, key=_first_key(pm, notes), tempo=_first_tempo(pm))


def _melody_instrument(pm: pretty_midi.PrettyMIDI) -> pretty_midi.Instrument:
    """The non-drum instrument with the most notes (the first one wins ties)."""
    total = sum(len(inst.notes) for inst in pm.instruments)
    if total > MAX_NOTES:
        raise MidiError(f"MIDI file has {total:,} notes; the limit is {MAX_NOTES:,}")
    melodic = [inst for inst in pm.instruments if not inst.is_drum and inst.notes]
    if not melodic:
        if any(inst.is_drum and inst.notes for inst in pm.instruments):
            raise MidiError("Drum-only file: no melodic (non-drum) instrument has notes")
        raise MidiError("MIDI file has no notes")
    return max(melodic, key=lambda i: len(i.notes))


def _first_tempo(pm: pretty_midi.PrettyMIDI) -> float:
    _, tempi = pm.get_tempo_changes()
    tempo = round(float(tempi[0]), 2) if len(tempi) else 120.0
    return tempo if math.isfinite(tempo) and 1.0 <= tempo <= 1000.0 else 120.0


def _supported(ts: pretty_midi.TimeSignature) -> tuple[int, int]:
    meter = (ts.numerator, ts.denominator)
    return meter if meter in SUPPORTED_METERS else (4, 4)


def _meter_and_pickup(pm: pretty_midi.PrettyMIDI, grid) -> tuple[tuple[int, int], int]:
    """(meter, ticks to shift every note right so a pickup ends on a bar line); see read_midi."""
    tss = sorted(pm.time_signature_changes, key=lambda ts: ts.time)
    if not tss:
        return (4, 4), 0
    meter = _supported(tss[0])
    if len(tss) == 1:
        return meter, 0
    first_bar = tss[0].numerator * 4 * TICKS_PER_QUARTER // max(tss[0].denominator, 1)
    pickup = grid(tss[1].time) - grid(tss[0].time)
    second_bar = bar_ticks_for(_supported(tss[1]))
    odd_first = (tss[0].numerator, tss[0].denominator) not in SUPPORTED_METERS
    if 0 < pickup < first_bar or (odd_first and pickup == first_bar and pickup < second_bar):
        meter = _supported(tss[1])
        return meter, (-grid(tss[1].time)) % bar_ticks_for(meter)
    return meter, 0


KEY_TEXT = "key: "  # a text event naming the key with its mode ("key: 2 dorian"): MIDI key signatures
# know only major and minor, so a dorian or mixolydian tune carries its mode in this event too.


def _written_mode_key(pm: pretty_midi.PrettyMIDI) -> tuple[int, str] | None:
    for ev in sorted(pm.text_events, key=lambda e: e.time):
        parts = ev.text[len(KEY_TEXT) :].split() if ev.text.startswith(KEY_TEXT) else []
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) < 12 and parts[1] in MODES:
            return int(parts[0]), parts[1]
    return None


def _first_key(pm: pretty_midi.PrettyMIDI, notes: list[Note]) -> tuple[int, str]:
    written = _written_mode_key(pm)
    if written:
        return written
    if pm.key_signature_changes:
        kn = min(pm.key_signature_changes, key=lambda k: k.time).key_number
        return (kn % 12, "major" if kn < 12 else "minor")
    return estimate_key([n.pitch for n in notes], [n.duration / TICKS_PER_QUARTER for n in notes])


# --------------------------------------------------------------------------------------------
# MIDI out
# --------------------------------------------------------------------------------------------


def melody_to_midi(melody: Melody, program: int = 0, velocity: int = 90) -> pretty_midi.PrettyMIDI:
    """One-instrument PrettyMIDI with tempo, time-signature and key-signature events."""
    if not (0 <= int(program) <= 127):
        raise MidiError(f"GM program must be 0-127, got {program}")
    if not (1 <= int(velocity) <= 127):
        raise MidiError(f"Velocity must be 1-127, got {velocity}")
    pm = pretty_midi.PrettyMIDI(resolution=MIDI_RESOLUTION, initial_tempo=melody.tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(melody.meter[0], melody.meter[1], 0.0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(_signature_key_number(*melody.key), 0.0))
    if melody.key[1] not in ("major", "minor"):
        pm.text_events.append(pretty_midi.Text(f"{KEY_TEXT}{melody.key[0]} {melody.key[1]}", 0.0))
    inst = pretty_midi.Instrument(program=int(program), name="melody")
    sec_per_tick = 60.0 / melody.tempo / TICKS_PER_QUARTER
    for n in melody.notes:
        inst.notes.append(
            pretty_midi.Note(
                velocity=int(velocity), pitch=n.pitch, start=n.start * sec_per_tick, end=n.end * sec_per_tick
            )
        )
    pm.instruments.append(inst)
    return pm


def _signature_key_number(tonic: int, mode: str) -> int:
    """pretty_midi's key number (0-11 major, 12-23 minor) for a key: the key itself when it is major or
    minor, else the major key with the same signature (A dorian is written with G major's one sharp)."""
    if mode in ("major", "minor"):
        return tonic + (12 if mode == "minor" else 0)
    from genmodels.melody.scales import key_signature

    return 7 * key_signature(tonic, mode) % 12


def midi_bytes(melody: Melody, program: int = 0) -> bytes:
    """The melody as Standard MIDI File bytes (for download buttons)."""
    buf = io.BytesIO()
    melody_to_midi(melody, program=program).write(buf)
    return buf.getvalue()


def write_midi(melody: Melody, path: str | os.PathLike, program: int = 0) -> None:
    """Write the melody as a .mid file (deterministic bytes)."""
    data = midi_bytes(melody, program=program)
    with open(path, "wb") as f:
        f.write(data)
