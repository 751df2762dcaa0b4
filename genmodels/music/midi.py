"""MIDI files in and out: bounded reading of any MIDI file into one Melody, and writing one back.

Reading follows pretty_midi's split: the bytes are checked with mido first (size, note count,
length) so that a hostile file cannot make pretty_midi allocate without bound; then the melody
instrument is reduced to a monophonic line by `skyline`, the one reduction the corpus builder uses too.

Articulation: a player (or a sequencer's "legato 90%") releases each note a little before the next.
On the 12-ticks-per-quarter grid, a gap between two notes is absorbed into the note before it when it is
shorter than a sixteenth (at most 2 ticks) AND shorter than a quarter of that note's length. A sixteenth
is the shortest rest in written folk music (sixteenth triplets aside), so no written rest is lost,
while half or quarter notes held 80-95% of their length read as the notes they are. Longer silences
(a staccato eighth's eighth rest, a dotted eighth + sixteenth rest) stay rests. The same rule applies
to the silence between the last note and the end of the file (or, when the file ends with that note, the
next bar line).

Length: rests after the last note are part of the music. A file's length is the end of its longest
track (the end-of-track event), kept as `Melody.length` up to the end of the bar the last note ends
in; writing puts a text event "end" at `Melody.end` so the end-of-track (and pretty_midi's
get_end_time) falls there, without a silent note.
"""

from __future__ import annotations

import dataclasses
import heapq
import io
import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import mido
import pretty_midi

from genmodels.core.errors import MidiError
from genmodels.music.form import check_form
from genmodels.music.notation import estimate_key
from genmodels.music.scales import estimate_key_in_signature, key_signature
from genmodels.music.types import (
    MAX_NOTES,
    MODES,
    SUPPORTED_METERS,
    TICKS_PER_QUARTER,
    Melody,
    Note,
    Repeat,
    bar_ticks_for,
    fold_into_range,
)

MAX_MIDI_BYTES = 2_000_000
MIDI_RESOLUTION = 480  # ticks per quarter written into MIDI files (a multiple of 12)
_MAX_BEATS = 100_000
_MAX_TICKS = 50_000_000
ARTICULATION_GAP_TICKS = 2  # gaps of at most this many grid ticks (less than a sixteenth) ...
ARTICULATION_GAP_SHARE = 0.25  # ... and less than this share of the note before belong to that note
END_TEXT = "end"  # text event written at the end of a melody with trailing rests
_LEGATO_OVERLAP_TICKS = 3  # in max_polyphony, a note ending within a sixteenth after an onset is not counted


@dataclass(frozen=True)
class TrackInfo:
    """One instrument track of a MIDI file, as `list_tracks` describes it (pitches are MIDI numbers)."""

    index: int  # the `track` argument of read_midi
    name: str
    program: int  # General MIDI program 0-127
    instrument: str  # GM instrument name ("Flute"), or "Drums"
    n_notes: int
    lowest: int
    highest: int
    max_polyphony: int  # most notes sounding at once (legato overlaps under a sixteenth not counted)
    is_drum: bool = False


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


def close_articulation_gaps(notes: list[Note], end: int | None = None) -> tuple[list[Note], int | None]:
    """Absorb articulation gaps into the note before them (see the module docstring for the rule):
    (notes, end) with the gaps closed; `end` (the music's end, rests included) is returned as given
    unless the gap before it was articulation, then it is the last note's new end."""
    out: list[Note] = []
    for i, n in enumerate(notes):
        nxt = notes[i + 1].start if i + 1 < len(notes) else end
        if nxt is not None and _is_articulation(nxt - n.end, n.duration):
            n = Note(n.pitch, n.start, nxt - n.start)
        out.append(n)
    return out, end


def _is_articulation(gap: int, duration: int) -> bool:
    return 0 < gap <= ARTICULATION_GAP_TICKS and gap < ARTICULATION_GAP_SHARE * duration


# --------------------------------------------------------------------------------------------
# MIDI in
# --------------------------------------------------------------------------------------------


def list_tracks(source: str | os.PathLike | bytes) -> list[TrackInfo]:
    """The instrument tracks of a MIDI file that have notes, drums included (as pretty_midi splits them:
    one per track, program and channel); `index` is what read_midi's `track` takes. MidiError as read_midi."""
    pm, _ = _load_pretty_midi(source)
    try:
        return _track_infos(pm)
    except MidiError:
        raise
    except (Exception, RecursionError) as e:
        raise MidiError(f"Cannot list this MIDI file's tracks ({type(e).__name__}: {e})"[:300]) from None


def _grid_fn(pm: pretty_midi.PrettyMIDI):
    if pm.resolution <= 0:
        raise MidiError("MIDI file has an invalid resolution")

    def grid(t: float) -> int:
        return math.floor(pm.time_to_tick(t) * TICKS_PER_QUARTER / pm.resolution + 0.5)

    return grid


def _max_polyphony(spans: list[tuple[int, int]]) -> int:
    """Most notes sounding at one onset: those starting there plus earlier ones ending more than a
    sixteenth later (so a legato overlap does not make a melody look like chords)."""
    best, ends, i = 0, [], 0
    spans = sorted(spans)
    while i < len(spans):
        t = spans[i][0]
        j = i
        while j < len(spans) and spans[j][0] == t:
            j += 1
        while ends and ends[0] <= t + _LEGATO_OVERLAP_TICKS:
            heapq.heappop(ends)
        best = max(best, len(ends) + j - i)
        for _, e in spans[i:j]:
            heapq.heappush(ends, e)
        i = j
    return best


def _track_infos(pm: pretty_midi.PrettyMIDI) -> list[TrackInfo]:
    grid = _grid_fn(pm)
    infos = []
    for index, inst in enumerate(pm.instruments):
        if not inst.notes:
            continue
        pitches = [n.pitch for n in inst.notes]
        infos.append(
            TrackInfo(
                index=index,
                name=(inst.name or "").strip(),
                program=int(inst.program),
                instrument="Drums" if inst.is_drum else pretty_midi.program_to_instrument_name(int(inst.program)),
                n_notes=len(inst.notes),
                lowest=min(pitches),
                highest=max(pitches),
                max_polyphony=_max_polyphony([(grid(n.start), grid(n.end)) for n in inst.notes]),
                is_drum=bool(inst.is_drum),
            )
        )
    return infos


def read_midi(source: str | os.PathLike | bytes, track: int | None = None) -> Melody:
    """Extract one monophonic melody from any MIDI file (path or bytes).

    Track: `track` is an index from list_tracks. By default drum instruments are ignored and the
    melody track is the one with the fewest simultaneous notes (a monophonic line beats a chord
    track), then the most notes, then the highest top note; tracks with fewer than a quarter of the
    busiest track's notes (a pedal bass, a few accents) are passed over unless nothing else is left.
    Then at each onset only the highest note is kept (skyline) and every note is cut where the next
    one starts. Onsets and offsets are mapped through the file's tempo map to beats (MIDI ticks /
    resolution) and rounded to the 12-ticks-per-quarter grid; notes that round to zero length
    are dropped; pitches outside PITCH_RANGE are moved by octaves into it. Tempo = the first
    tempo (BPM); meter = the first time signature (4/4 if unsupported); key = the "key: " text event
    this module writes; else, under the first key signature event, the key of that signature the notes
    fit best (its major/minor flag is not trusted); else estimated from the notes alone.
    Pickup: if the first time signature lasts less than one of its bars and another follows
    (how notation programs export an anacrusis), or it is an unsupported meter (e.g. 1/4) lasting
    exactly one bar that is shorter than the next meter's bar, the second one is the meter and all
    notes are shifted right so the pickup ends on a bar line.
    Articulation gaps (less than a sixteenth and less than a quarter of the note before) are
    absorbed into the note before; rests after the last note, up to the file's end (its longest
    track's end-of-track) and at most to the end of that bar, are kept as the melody's `length`.
    Every problem (not MIDI, corrupt, too large, too many notes, drums only, no notes, no such
    track) raises MidiError.
    """
    pm, end_tick = _load_pretty_midi(source)
    try:
        return _melody_from_pretty_midi(pm, track, end_tick)
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


def _load_pretty_midi(source: str | os.PathLike | bytes) -> tuple[pretty_midi.PrettyMIDI, int]:
    """(PrettyMIDI, the file's end in MIDI ticks: the end-of-track of its longest track)."""
    data = _read_bytes(source)
    if len(data) > MAX_MIDI_BYTES:
        raise MidiError(f"MIDI file is {len(data):,} bytes; the limit is {MAX_MIDI_BYTES:,}")
    if not data.startswith(b"MThd"):
        raise MidiError("Not a MIDI file (it does not start with the 'MThd' header)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mid = mido.MidiFile(file=io.BytesIO(data))
            end_tick = _check_size(mid)
            return pretty_midi.PrettyMIDI(mido_object=mid), end_tick
    except MidiError:
        raise
    except (Exception, RecursionError) as e:  # mido/pretty_midi raise many types on bad bytes
        raise MidiError(f"Corrupt or unsupported MIDI file ({type(e).__name__}: {e})"[:300]) from None


def _check_size(mid) -> int:
    """Bounded parsing: pretty_midi allocates an array as long as the last tick, and builds every
    note, so check both before handing the file over. Returns the last tick of the longest track."""
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
    return max_tick


def _melody_from_pretty_midi(pm: pretty_midi.PrettyMIDI, track: int | None = None, end_tick: int = 0) -> Melody:
    inst = _melody_instrument(pm, track)
    grid = _grid_fn(pm)
    notes = skyline((n.pitch, grid(n.start), grid(n.end)) for n in inst.notes)
    if not notes:
        raise MidiError("Every note of the melody instrument is shorter than the 1/48-note grid")
    meter, shift = _meter_and_pickup(pm, grid)
    if shift:
        notes = [Note(n.pitch, n.start + shift, n.duration) for n in notes]
    bar = bar_ticks_for(meter)
    bar_end = -(-notes[-1].end // bar) * bar  # the bar line after the last note
    end = min(math.floor(end_tick * TICKS_PER_QUARTER / pm.resolution + 0.5) + shift, bar_end)
    notes, _ = close_articulation_gaps(notes, end if end > notes[-1].end else bar_end)
    length = end if end > notes[-1].end else 0
    melody = Melody(notes=notes, meter=meter, key=_first_key(pm, notes), tempo=_first_tempo(pm), length=length)
    return _with_written_form(pm, melody)


FORM_TEXT = "form: "  # a text event listing the repeats ("form: 0 8 0 0; 16 7 1 1": start body ending1
# ending2 in bars): MIDI plays the tune out, and this event keeps how it is written.


def _form_text(form: tuple[Repeat, ...]) -> str:
    return FORM_TEXT + "; ".join(f"{r.start} {r.body} {r.ending1} {r.ending2}" for r in form)


def _with_written_form(pm: pretty_midi.PrettyMIDI, melody: Melody) -> Melody:
    """The melody with the repeats its form event lists, where they match its notes (a file edited
    elsewhere may no longer play them: it is read as played, without a form)."""
    for ev in pm.text_events:
        if not ev.text.startswith(FORM_TEXT):
            continue
        try:
            fields = [[int(x) for x in r.split()] for r in ev.text[len(FORM_TEXT) :].split(";") if r.strip()]
            if any(len(f) != 4 for f in fields):
                return melody
            with_form = dataclasses.replace(melody, form=tuple(Repeat(*f) for f in fields))
            check_form(with_form)
        except (ValueError, MidiError):
            return melody
        return with_form
    return melody


def _melody_instrument(pm: pretty_midi.PrettyMIDI, track: int | None = None) -> pretty_midi.Instrument:
    """The instrument `track` (an index of pm.instruments), or by default the one read_midi's rule picks."""
    total = sum(len(inst.notes) for inst in pm.instruments)
    if total > MAX_NOTES:
        raise MidiError(f"MIDI file has {total:,} notes; the limit is {MAX_NOTES:,}")
    if track is not None:
        infos = {t.index: t for t in _track_infos(pm)}
        if isinstance(track, bool) or not isinstance(track, int) or track not in infos:
            listed = ", ".join(f"{t.index} ({t.name or t.instrument})" for t in infos.values()) or "none"
            raise MidiError(f"This MIDI file has no track {track} with notes; its tracks: {listed}")
        if infos[track].is_drum:
            raise MidiError(f"Track {track} is a drum track: choose a melodic one")
        return pm.instruments[track]
    best = default_track(_track_infos(pm))
    if best is None:
        if any(inst.is_drum and inst.notes for inst in pm.instruments):
            raise MidiError("Drum-only file: no melodic (non-drum) instrument has notes")
        raise MidiError("MIDI file has no notes")
    return pm.instruments[best]


def default_track(tracks: list[TrackInfo]) -> int | None:
    """The index of the track read_midi takes by default: among the melodic tracks with at least a quarter
    of the busiest one's notes, the one with the fewest notes at once (a melody, not the chords), then the
    most notes, then the highest; None when no melodic track has notes."""
    melodic = [t for t in tracks if not t.is_drum]
    if not melodic:
        return None
    busiest = max(t.n_notes for t in melodic)
    candidates = [t for t in melodic if 4 * t.n_notes >= busiest]
    return min(candidates, key=lambda t: (t.max_polyphony, -t.n_notes, -t.highest, t.index)).index


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
# know only major and minor, and the flag is often wrong (many programs write every tune as major), so
# a file read without this event has its mode decided from the notes; files written here carry it.


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
    pitches, durations = [n.pitch for n in notes], [n.duration / TICKS_PER_QUARTER for n in notes]
    if pm.key_signature_changes:
        # The signature (its sharps or flats) is trusted, its major/minor flag is not: folk tunes in minor
        # are commonly flagged as their relative major. The notes decide among the keys of that signature.
        kn = min(pm.key_signature_changes, key=lambda k: k.time).key_number
        return estimate_key_in_signature(pitches, durations, key_signature(kn % 12, "major" if kn < 12 else "minor"))
    return estimate_key(pitches, durations)


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
    pm.text_events.append(pretty_midi.Text(f"{KEY_TEXT}{melody.key[0]} {melody.key[1]}", 0.0))
    if melody.form:
        pm.text_events.append(pretty_midi.Text(_form_text(melody.form), 0.0))
    inst = pretty_midi.Instrument(program=int(program), name="melody")
    sec_per_tick = 60.0 / melody.tempo / TICKS_PER_QUARTER
    for n in melody.notes:
        inst.notes.append(
            pretty_midi.Note(
                velocity=int(velocity), pitch=n.pitch, start=n.start * sec_per_tick, end=n.end * sec_per_tick
            )
        )
    pm.instruments.append(inst)
    if melody.notes and melody.end > melody.notes[-1].end:  # trailing rests: the file lasts until melody.end
        pm.text_events.append(pretty_midi.Text(END_TEXT, melody.end * sec_per_tick))
    return pm


def _signature_key_number(tonic: int, mode: str) -> int:
    """pretty_midi's key number (0-11 major, 12-23 minor) for a key: the key itself when it is major or
    minor, else the major key with the same signature (A dorian is written with G major's one sharp)."""
    if mode in ("major", "minor"):
        return tonic + (12 if mode == "minor" else 0)

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
