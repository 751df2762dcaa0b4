"""Melody representation: MIDI <-> notes <-> tokens, note-name seeds, and the token grammar.

A melody is a list of monophonic sounding notes on a grid of 12 ticks per quarter note (it holds
sixteenths = 3 ticks and eighth/quarter triplets = 4/8 ticks), plus meter, key and tempo. The bar
grid is anchored at tick 0, so a pickup is written as a leading silence.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Iterable, Sequence

import pretty_midi
import torch

from genmodels.errors import CheckpointError, MidiError, SeedError

TICKS_PER_QUARTER = 12
MAX_MIDI_BYTES = 2_000_000
MAX_NOTES = 20_000
MAX_SEED_TOKENS = 512
MAX_SEED_QUARTERS = 64  # longest single seed note/rest, in quarter notes
MIDI_RESOLUTION = 480  # ticks per quarter written into MIDI files (a multiple of 12)
SUPPORTED_METERS: list[tuple[int, int]] = [
    (2, 4), (3, 4), (4, 4), (5, 4), (6, 4), (7, 4), (2, 2), (3, 2), (4, 2),
    (3, 8), (5, 8), (6, 8), (7, 8), (9, 8), (12, 8),
]
PITCH_RANGE = (21, 108)
MODES = ("major", "minor")
MAX_DURATION_TOKEN = max(n * 4 * TICKS_PER_QUARTER // d for n, d in SUPPORTED_METERS)  # 96

_NAMES_SHARP = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_LETTER_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def bar_ticks_for(meter: tuple[int, int]) -> int:
    """Ticks in one bar of `meter` on the 12-tpq grid."""
    return meter[0] * 4 * TICKS_PER_QUARTER // meter[1]


@dataclass(frozen=True)
class Note:
    """One sounding note: MIDI pitch, onset and length in ticks (12 per quarter)."""

    pitch: int
    start: int
    duration: int

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass
class Melody:
    """A monophonic melody on the 12-tpq grid; bar i spans [i*bar_ticks, (i+1)*bar_ticks)."""

    notes: list[Note] = field(default_factory=list)
    meter: tuple[int, int] = (4, 4)
    key: tuple[int, str] = (0, "major")
    tempo: float = 120.0

    def __post_init__(self) -> None:
        self.notes = list(self.notes)
        self.meter = (int(self.meter[0]), int(self.meter[1]))
        self.key = (int(self.key[0]), str(self.key[1]))
        if self.meter not in SUPPORTED_METERS:
            raise MidiError(f"Unsupported meter {self.meter[0]}/{self.meter[1]}; supported: "
                            + ", ".join(f"{n}/{d}" for n, d in SUPPORTED_METERS))
        if not (0 <= self.key[0] <= 11) or self.key[1] not in MODES:
            raise MidiError(f"Invalid key {self.key}: expected (tonic 0-11, 'major'|'minor')")
        try:
            self.tempo = float(self.tempo)
        except (TypeError, ValueError):
            raise MidiError(f"Invalid tempo {self.tempo!r}") from None
        if not math.isfinite(self.tempo) or not (1.0 <= self.tempo <= 1000.0):
            raise MidiError(f"Tempo {self.tempo} BPM is outside 1-1000")
        if len(self.notes) > MAX_NOTES:
            raise MidiError(f"Melody has {len(self.notes)} notes; the limit is {MAX_NOTES}")
        prev_end = 0
        for n in self.notes:
            if not isinstance(n, Note):
                raise MidiError(f"Melody.notes must hold Note objects, got {type(n).__name__}")
            if not (0 <= n.pitch <= 127) or n.duration <= 0 or n.start < 0:
                raise MidiError(f"Invalid note {n}")
            if n.start < prev_end:
                raise MidiError(f"Notes overlap or are unsorted at tick {n.start}")
            prev_end = n.end

    @property
    def bar_ticks(self) -> int:
        return bar_ticks_for(self.meter)

    @property
    def end(self) -> int:
        """Tick where the last note ends (0 for an empty melody)."""
        return self.notes[-1].end if self.notes else 0

    @property
    def n_bars(self) -> int:
        return -(-self.end // self.bar_ticks)

    @property
    def in_range(self) -> bool:
        """True when every pitch lies inside PITCH_RANGE (the tokenizer's pitch slots)."""
        return all(PITCH_RANGE[0] <= n.pitch <= PITCH_RANGE[1] for n in self.notes)

    @property
    def pitches(self) -> list[int]:
        return [n.pitch for n in self.notes]

    def transpose(self, semitones: int) -> "Melody":
        """Shift every pitch and the key tonic; MidiError if a pitch leaves PITCH_RANGE."""
        notes = [Note(n.pitch + semitones, n.start, n.duration) for n in self.notes]
        for n in notes:
            if not (PITCH_RANGE[0] <= n.pitch <= PITCH_RANGE[1]):
                raise MidiError(f"Transposing by {semitones} moves pitch {n.pitch - semitones} "
                                f"outside {PITCH_RANGE[0]}-{PITCH_RANGE[1]}")
        return replace(self, notes=notes, key=((self.key[0] + semitones) % 12, self.key[1]))

    def to_key(self, tonic: int, mode: str | None = None) -> "Melody":
        """Transpose by the smallest interval (-5..+6) to `tonic`; `mode` only relabels."""
        mode = self.key[1] if mode is None else mode
        if mode not in MODES:
            raise MidiError(f"Mode must be 'major' or 'minor', got {mode!r}")
        shift = (int(tonic) - self.key[0]) % 12
        if shift > 6:
            shift -= 12
        try:
            out = self.transpose(shift)
        except MidiError:
            out = self.transpose(shift - 12 if shift > 0 else shift + 12)
        return replace(out, key=(int(tonic) % 12, mode))

    def slice_bars(self, start: int, stop: int | None = None) -> "Melody":
        """Bars [start, stop) as a new melody starting at tick 0 (notes clipped at the edges)."""
        bt = self.bar_ticks
        stop = self.n_bars if stop is None else stop
        lo, hi = start * bt, max(start, stop) * bt
        notes = []
        for n in self.notes:
            s, e = max(n.start, lo), min(n.end, hi)
            if e > s:
                notes.append(Note(n.pitch, s - lo, e - s))
        return replace(self, notes=notes)

    def concat(self, other: "Melody") -> "Melody":
        """`other` appended at the next bar line after self (meter/key/tempo of self)."""
        off = self.n_bars * self.bar_ticks
        return replace(self, notes=self.notes + [Note(n.pitch, n.start + off, n.duration)
                                                 for n in other.notes])

    def append(self, pitch: int, duration: int, gap: int = 0) -> "Melody":
        """A new melody with one note added `gap` ticks after the current end."""
        return replace(self, notes=self.notes + [Note(pitch, self.end + gap, duration)])


# --------------------------------------------------------------------------------------------
# Names and key estimation
# --------------------------------------------------------------------------------------------

def note_name(pitch: int) -> str:
    """MIDI pitch -> name with octave, sharps for black keys: 60 -> 'C4', 70 -> 'A#4'."""
    return f"{_NAMES_SHARP[pitch % 12]}{pitch // 12 - 1}"


def estimate_key(pitches: Sequence[int], durations: Sequence[float] | None = None) -> tuple[int, str]:
    """Key (tonic pc, mode) by music21's Krumhansl-style key analysis; (0, 'major') if unsure."""
    if not pitches:
        return (0, "major")
    from music21 import note as m21note, stream

    s = stream.Stream()
    for i, p in enumerate(pitches):
        n = m21note.Note(int(p))
        n.quarterLength = float(durations[i]) if durations else 1.0
        s.append(n)
    try:
        k = s.analyze("key")
    except Exception:  # music21 analysis failure on odd input: fall back to C major
        return (0, "major")
    # Short tunes often fit a key and its relative equally well; prefer a close candidate whose
    # tonic the tune actually plays, with the final note's pitch class as the strongest hint.
    used = {int(p) % 12 for p in pitches}
    candidates = [k] + [a for a in getattr(k, "alternateInterpretations", [])
                        if a.mode in MODES and k.correlationCoefficient - a.correlationCoefficient < 0.15]
    for want in ({int(pitches[-1]) % 12}, used):
        better = [c for c in candidates if c.tonic.pitchClass in want]
        if better:
            k = better[0]
            break
    mode = k.mode if k.mode in MODES else "major"
    return (k.tonic.pitchClass, mode)


# --------------------------------------------------------------------------------------------
# MIDI in
# --------------------------------------------------------------------------------------------

def _load_pretty_midi(source: str | os.PathLike | bytes) -> pretty_midi.PrettyMIDI:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            size = os.path.getsize(source)
        except OSError as e:
            raise MidiError(f"Cannot open MIDI file {os.fspath(source)!r}: {e.strerror or e}") from None
        if size > MAX_MIDI_BYTES:
            raise MidiError(f"MIDI file is {size:,} bytes; the limit is {MAX_MIDI_BYTES:,}")
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_MIDI_BYTES + 1)
        except OSError as e:
            raise MidiError(f"Cannot read MIDI file {os.fspath(source)!r}: {e.strerror or e}") from None
    else:
        raise MidiError(f"read_midi needs a path or bytes, got {type(source).__name__}")
    if len(data) > MAX_MIDI_BYTES:
        raise MidiError(f"MIDI file is {len(data):,} bytes; the limit is {MAX_MIDI_BYTES:,}")
    if not data.startswith(b"MThd"):
        raise MidiError("Not a MIDI file (it does not start with the 'MThd' header)")
    try:
        import mido

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mid = mido.MidiFile(file=io.BytesIO(data))
            # Bounded parsing: pretty_midi allocates an array as long as the last tick, and
            # builds every note, so check both before handing the file over.
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
            if mid.ticks_per_beat <= 0 or max_tick / mid.ticks_per_beat > 100_000 or max_tick > 50_000_000:
                raise MidiError("MIDI file is too long (more than 100,000 beats) or has an invalid resolution")
            return pretty_midi.PrettyMIDI(mido_object=mid)
    except MidiError:
        raise
    except (Exception, RecursionError) as e:  # mido/pretty_midi raise many types on bad bytes
        raise MidiError(f"Corrupt or unsupported MIDI file ({type(e).__name__}: {e})"[:300]) from None


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
    exactly one bar that is shorter than the next meter's bar, the second one is the meter and all notes are shifted right so the
    pickup ends on a bar line.
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


def _melody_from_pretty_midi(pm: pretty_midi.PrettyMIDI) -> Melody:
    total = sum(len(inst.notes) for inst in pm.instruments)
    if total > MAX_NOTES:
        raise MidiError(f"MIDI file has {total:,} notes; the limit is {MAX_NOTES:,}")
    melodic = [inst for inst in pm.instruments if not inst.is_drum and inst.notes]
    if not melodic:
        if any(inst.is_drum and inst.notes for inst in pm.instruments):
            raise MidiError("Drum-only file: no melodic (non-drum) instrument has notes")
        raise MidiError("MIDI file has no notes")
    inst = max(melodic, key=lambda i: len(i.notes))  # first one wins ties
    res = pm.resolution
    if res <= 0:
        raise MidiError("MIDI file has an invalid resolution")

    def grid(t: float) -> int:
        return math.floor(pm.time_to_tick(t) * TICKS_PER_QUARTER / res + 0.5)

    # Quantise, drop zero-length, fold pitches into range.
    raw: list[tuple[int, int, int]] = []
    for n in inst.notes:
        s, e = grid(n.start), grid(n.end)
        if e <= s:
            continue
        p = n.pitch
        while p < PITCH_RANGE[0]:
            p += 12
        while p > PITCH_RANGE[1]:
            p -= 12
        raw.append((s, -p, e))
    if not raw:
        raise MidiError("Every note of the melody instrument is shorter than the 1/48-note grid")
    raw.sort()
    # Skyline: highest note per onset, cut at the next onset.
    onsets: list[tuple[int, int, int]] = []
    for s, negp, e in raw:
        if onsets and onsets[-1][0] == s:
            continue
        onsets.append((s, -negp, e))
    notes: list[Note] = []
    for i, (s, p, e) in enumerate(onsets):
        if i + 1 < len(onsets):
            e = min(e, onsets[i + 1][0])
        if e > s:
            notes.append(Note(p, s, e - s))

    # Tempo.
    _, tempi = pm.get_tempo_changes()
    tempo = round(float(tempi[0]), 2) if len(tempi) else 120.0
    if not math.isfinite(tempo) or not (1.0 <= tempo <= 1000.0):
        tempo = 120.0

    # Meter and pickup.
    def supported(ts: pretty_midi.TimeSignature) -> tuple[int, int]:
        m = (ts.numerator, ts.denominator)
        return m if m in SUPPORTED_METERS else (4, 4)

    tss = sorted(pm.time_signature_changes, key=lambda ts: ts.time)
    meter = (4, 4)
    shift = 0
    if tss:
        meter = supported(tss[0])
        if len(tss) > 1:
            first_bar = tss[0].numerator * 4 * TICKS_PER_QUARTER // max(tss[0].denominator, 1)
            pickup = grid(tss[1].time) - grid(tss[0].time)
            second_bar = bar_ticks_for(supported(tss[1]))
            odd_first = (tss[0].numerator, tss[0].denominator) not in SUPPORTED_METERS
            if 0 < pickup < first_bar or (odd_first and pickup == first_bar and pickup < second_bar):
                meter = supported(tss[1])
                shift = (-grid(tss[1].time)) % bar_ticks_for(meter)
    if shift:
        notes = [Note(n.pitch, n.start + shift, n.duration) for n in notes]

    # Key.
    if pm.key_signature_changes:
        kn = sorted(pm.key_signature_changes, key=lambda k: k.time)[0].key_number
        key = (kn % 12, "major" if kn < 12 else "minor")
    else:
        key = estimate_key([n.pitch for n in notes], [n.duration / TICKS_PER_QUARTER for n in notes])
    return Melody(notes=notes, meter=meter, key=key, tempo=tempo)


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
    key_number = melody.key[0] + (12 if melody.key[1] == "minor" else 0)
    pm.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    inst = pretty_midi.Instrument(program=int(program), name="melody")
    sec_per_tick = 60.0 / melody.tempo / TICKS_PER_QUARTER
    for n in melody.notes:
        inst.notes.append(pretty_midi.Note(velocity=int(velocity), pitch=n.pitch,
                                           start=n.start * sec_per_tick, end=n.end * sec_per_tick))
    pm.instruments.append(inst)
    return pm


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


# --------------------------------------------------------------------------------------------
# Note-name seeds
# --------------------------------------------------------------------------------------------

_SEED_RE = re.compile(
    r"^(?:(?P<rest>[rR])|(?P<letter>[A-Ga-g])(?P<acc>#{1,2}|b{1,2})?(?P<oct>-?\d))"
    r"(?:\*(?P<mnum>\d+)(?:/(?P<mden>\d+))?|/(?P<div>\d+))?$"
)


def parse_note_seed(text: str, meter: tuple[int, int] = (4, 4), key: tuple[int, str] | None = None,
                    tempo: float = 120.0) -> Melody:
    """Parse note names like "C4 D#4/2 r/4 G4*3/2 Bb3" into a Melody.

    Each token is a note (letter A-G, optional # or b, octave; C4 = 60) or 'r' for a rest,
    followed by an optional duration in quarter notes: '/n' divides, '*a' or '*a/b' multiplies
    (default one quarter). Durations must land on the 12-ticks-per-quarter grid. key=None
    estimates the key from the notes. Raises SeedError naming the bad token and its position.
    """
    if not isinstance(text, str):
        raise SeedError("The note seed must be text")
    try:
        meter = (int(meter[0]), int(meter[1]))
    except (TypeError, ValueError, IndexError):
        raise SeedError(f"Invalid meter {meter!r}") from None
    if meter not in SUPPORTED_METERS:
        raise SeedError(f"Unsupported meter {meter[0]}/{meter[1]}")
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise SeedError("The note seed is empty: write note names such as 'C4 E4 G4/2'")
    if len(tokens) > MAX_SEED_TOKENS:
        raise SeedError(f"The note seed has {len(tokens)} tokens; the limit is {MAX_SEED_TOKENS}")
    notes: list[Note] = []
    t = 0
    for i, tok in enumerate(tokens, start=1):
        m = _SEED_RE.match(tok)
        if not m:
            raise SeedError(f"Can't read note {i} {tok!r}: expected a note name with octave such as "
                            "C4, F#3 or Bb5 (or r for a rest), optionally followed by /n, *a or *a/b")
        q = Fraction(1)
        if m["div"] is not None:
            if int(m["div"]) == 0:
                raise SeedError(f"Can't read note {i} {tok!r}: division by zero")
            q = Fraction(1, int(m["div"]))
        elif m["mnum"] is not None:
            den = int(m["mden"]) if m["mden"] is not None else 1
            if den == 0:
                raise SeedError(f"Can't read note {i} {tok!r}: division by zero")
            q = Fraction(int(m["mnum"]), den)
        ticks = q * TICKS_PER_QUARTER
        if q <= 0 or q > MAX_SEED_QUARTERS:
            raise SeedError(f"Can't read note {i} {tok!r}: the duration must be more than 0 and at "
                            f"most {MAX_SEED_QUARTERS} quarter notes")
        if ticks.denominator != 1:
            raise SeedError(f"Can't read note {i} {tok!r}: duration {q} quarter notes is not on the "
                            "grid (sixteenths and triplets are the finest values)")
        ticks = int(ticks)
        if m["rest"] is None:
            acc = m["acc"] or ""
            pitch = (int(m["oct"]) + 1) * 12 + _LETTER_PC[m["letter"].lower()] + acc.count("#") - acc.count("b")
            if not (PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]):
                raise SeedError(f"Can't read note {i} {tok!r}: pitch is outside the piano range "
                                f"{note_name(PITCH_RANGE[0])}-{note_name(PITCH_RANGE[1])}")
            notes.append(Note(pitch, t, ticks))
        t += ticks
    if not notes:
        raise SeedError("The note seed has only rests: give at least one note")
    if key is None:
        key = estimate_key([n.pitch for n in notes], [n.duration / TICKS_PER_QUARTER for n in notes])
    try:
        return Melody(notes=notes, meter=meter, key=key, tempo=tempo)
    except MidiError as e:
        raise SeedError(str(e)) from None


def _format_quarters(ticks: int) -> str:
    q = Fraction(ticks, TICKS_PER_QUARTER)
    if q == 1:
        return ""
    if q.numerator == 1:
        return f"/{q.denominator}"
    if q.denominator == 1:
        return f"*{q.numerator}"
    return f"*{q.numerator}/{q.denominator}"


def format_note_seed(melody: Melody) -> str:
    """Melody -> note-name text that parse_note_seed reads back to the same notes."""
    out: list[str] = []

    def rest(ticks: int) -> None:
        while ticks > 0:  # keep each token within the parser's limit
            step = min(ticks, MAX_SEED_QUARTERS * TICKS_PER_QUARTER)
            out.append("r" + _format_quarters(step))
            ticks -= step

    t = 0
    for n in melody.notes:
        rest(n.start - t)
        d = n.duration
        if d > MAX_SEED_QUARTERS * TICKS_PER_QUARTER:
            raise SeedError(f"Note at tick {n.start} is longer than {MAX_SEED_QUARTERS} quarters")
        out.append(note_name(n.pitch) + _format_quarters(d))
        t = n.end
    return " ".join(out)


# --------------------------------------------------------------------------------------------
# Tokenizer and grammar
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GrammarState:
    """Where a token sequence stands. expecting: 'bar'|'event'|'duration'|'bar_or_eos'|'done'."""

    bar_ticks: int
    bars_completed: int = 0
    remaining: int = 0
    expecting: str = "bar"
    last_was_note: bool = False
    at_bar_start: bool = False
    pending: str = ""  # slot kind awaiting its duration: 'note' | 'hold' | 'rest'


class MelodyTokenizer:
    """One vocabulary for all tunes: header (meter, key), bars of (pitch-slot, duration) events.

    Sequence: <bos> meter key bar ev ev ... bar ev ... <eos>; each event is a slot token
    ("p:60", "rest" or "hold") followed by a duration token "d:N" (ticks). Every bar sums to
    exactly bar_ticks; notes across bar lines continue with "hold" in the next bar.
    """

    header_length = 3

    def __init__(self) -> None:
        vocab = ["<pad>", "<bos>", "<eos>", "bar"]
        vocab += [f"meter:{n}/{d}" for n, d in SUPPORTED_METERS]
        vocab += [f"key:{t}:{m}" for m in MODES for t in range(12)]
        vocab += [f"p:{p}" for p in range(PITCH_RANGE[0], PITCH_RANGE[1] + 1)]
        vocab += ["rest", "hold"]
        vocab += [f"d:{d}" for d in range(1, MAX_DURATION_TOKEN + 1)]
        self.vocab: list[str] = vocab
        self.index = {t: i for i, t in enumerate(vocab)}
        self.pad_id, self.bos_id, self.eos_id, self.bar_id = 0, 1, 2, 3
        self.rest_id, self.hold_id = self.index["rest"], self.index["hold"]
        self.meter_ids = {m: self.index[f"meter:{m[0]}/{m[1]}"] for m in SUPPORTED_METERS}
        self.id_meter = {i: m for m, i in self.meter_ids.items()}
        self.key_ids = {(t, m): self.index[f"key:{t}:{m}"] for m in MODES for t in range(12)}
        self.id_key = {i: k for k, i in self.key_ids.items()}
        self.pitch0 = self.index[f"p:{PITCH_RANGE[0]}"]
        self.dur0 = self.index["d:1"]
        V = len(vocab)
        self._mask_bar = torch.zeros(V, dtype=torch.bool)
        self._mask_bar[self.bar_id] = True
        self._mask_bar_eos = self._mask_bar.clone()
        self._mask_bar_eos[self.eos_id] = True
        self._mask_event = torch.zeros(V, dtype=torch.bool)
        self._mask_event[self.pitch0:self.pitch0 + PITCH_RANGE[1] - PITCH_RANGE[0] + 1] = True
        self._mask_event[self.rest_id] = True
        self._mask_event_hold = self._mask_event.clone()
        self._mask_event_hold[self.hold_id] = True
        self._mask_dur = []
        for r in range(MAX_DURATION_TOKEN + 1):
            m = torch.zeros(V, dtype=torch.bool)
            m[self.dur0:self.dur0 + r] = True
            self._mask_dur.append(m)
        self._mask_none = torch.zeros(V, dtype=torch.bool)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MelodyTokenizer) and other.vocab == self.vocab

    # ----- config -----
    def to_config(self) -> dict:
        return {"type": "melody", "ticks_per_quarter": TICKS_PER_QUARTER, "vocab": list(self.vocab)}

    @classmethod
    def from_config(cls, d: dict) -> "MelodyTokenizer":
        tok = cls()
        if not isinstance(d, dict) or d.get("type", "melody") != "melody":
            raise CheckpointError("Not a melody tokenizer config")
        if d.get("ticks_per_quarter", TICKS_PER_QUARTER) != TICKS_PER_QUARTER or \
                list(d.get("vocab", tok.vocab)) != tok.vocab:
            raise CheckpointError("Melody tokenizer config does not match this version's vocabulary")
        return tok

    # ----- header -----
    def header(self, meter: tuple[int, int], key: tuple[int, str]) -> list[int]:
        meter, key = tuple(meter), tuple(key)
        if meter not in self.meter_ids:
            raise MidiError(f"Unsupported meter {meter}")
        if key not in self.key_ids:
            raise MidiError(f"Invalid key {key}")
        return [self.bos_id, self.meter_ids[meter], self.key_ids[key]]

    def pitch_id(self, pitch: int) -> int:
        if not (PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]):
            raise MidiError(f"Pitch {pitch} is outside {PITCH_RANGE[0]}-{PITCH_RANGE[1]}")
        return self.pitch0 + pitch - PITCH_RANGE[0]

    def dur_id(self, ticks: int) -> int:
        return self.dur0 + ticks - 1

    pitch_range = PITCH_RANGE

    def is_pitch(self, token_id: int) -> bool:
        return self.pitch0 <= int(token_id) < self.pitch0 + PITCH_RANGE[1] - PITCH_RANGE[0] + 1

    # ----- encode -----
    def encode(self, melody: Melody, add_eos: bool = True) -> list[int]:
        """Melody -> token ids; MidiError for an empty melody or pitches outside PITCH_RANGE."""
        if not melody.notes:
            raise MidiError("Cannot encode an empty melody")
        bt = melody.bar_ticks
        ids = self.header(melody.meter, melody.key)
        # Segments covering [0, n_bars*bt): (pitch or None, start, end).
        segs: list[tuple[int | None, int, int]] = []
        t = 0
        for n in melody.notes:
            if n.start > t:
                segs.append((None, t, n.start))
            segs.append((self.pitch_id(n.pitch), n.start, n.end))
            t = n.end
        total = melody.n_bars * bt
        if total > t:
            segs.append((None, t, total))
        bar = -1
        for slot, s, e in segs:
            pos = s
            while pos < e:
                b = pos // bt
                if b != bar:
                    ids.append(self.bar_id)
                    bar = b
                seg_end = min(e, (b + 1) * bt)
                if slot is None:
                    ids.append(self.rest_id)
                else:
                    ids.append(slot if pos == s else self.hold_id)
                ids.append(self.dur_id(seg_end - pos))
                pos = seg_end
        if add_eos:
            ids.append(self.eos_id)
        return ids

    # ----- grammar -----
    def grammar_state(self, ids: Sequence[int]) -> GrammarState:
        """State after a valid prefix that starts with the 3-token header."""
        ids = [int(i) for i in ids]
        if len(ids) < 3 or ids[0] != self.bos_id or ids[1] not in self.id_meter or ids[2] not in self.id_key:
            raise MidiError("invalid melody token sequence: it must start with <bos> meter key")
        state = GrammarState(bar_ticks=bar_ticks_for(self.id_meter[ids[1]]))
        for tok in ids[3:]:
            state = self.advance(state, tok)
        return state

    def allowed(self, state: GrammarState) -> torch.Tensor:
        """Bool mask (vocab_size,) of the tokens legal after `state` (all False when done)."""
        e = state.expecting
        if e == "bar":
            m = self._mask_bar
        elif e == "event":
            m = self._mask_event_hold if (state.at_bar_start and state.last_was_note) else self._mask_event
        elif e == "duration":
            m = self._mask_dur[state.remaining]
        elif e == "bar_or_eos":
            m = self._mask_bar_eos
        else:
            m = self._mask_none
        return m.clone()

    def advance(self, state: GrammarState, token_id: int) -> GrammarState:
        """The state after `token_id`; MidiError if the token is not legal here."""
        tok = int(token_id)
        e = state.expecting
        if e in ("bar", "bar_or_eos") and tok == self.bar_id:
            return replace(state, remaining=state.bar_ticks, expecting="event", at_bar_start=True)
        if e == "bar_or_eos" and tok == self.eos_id:
            return replace(state, expecting="done")
        if e == "event":
            if self.pitch0 <= tok < self.pitch0 + PITCH_RANGE[1] - PITCH_RANGE[0] + 1:
                return replace(state, expecting="duration", pending="note")
            if tok == self.rest_id:
                return replace(state, expecting="duration", pending="rest")
            if tok == self.hold_id and state.at_bar_start and state.last_was_note:
                return replace(state, expecting="duration", pending="hold")
        if e == "duration" and self.dur0 <= tok < self.dur0 + state.remaining:
            rem = state.remaining - (tok - self.dur0 + 1)
            done = rem == 0
            return replace(state, remaining=rem, expecting="bar_or_eos" if done else "event",
                           bars_completed=state.bars_completed + done, at_bar_start=False,
                           last_was_note=state.pending != "rest", pending="")
        name = self.vocab[tok] if 0 <= tok < len(self.vocab) else str(tok)
        raise MidiError(f"invalid melody token sequence: {name!r} is not allowed when expecting {e}")

    # ----- decode -----
    def decode(self, ids: Iterable[int]) -> Melody:
        """Token ids -> Melody. Accepts any prefix of a valid sequence (drops a dangling slot);
        header tokens are optional (defaults 4/4, C major); stops at <eos>; trailing <pad> ignored."""
        ids = [int(i) for i in ids]
        while ids and ids[-1] == self.pad_id:
            ids.pop()
        i = 0
        if i < len(ids) and ids[i] == self.bos_id:
            i += 1
        meter, key = (4, 4), (0, "major")
        if i < len(ids) and ids[i] in self.id_meter:
            meter = self.id_meter[ids[i]]
            i += 1
        if i < len(ids) and ids[i] in self.id_key:
            key = self.id_key[ids[i]]
            i += 1
        state = GrammarState(bar_ticks=bar_ticks_for(meter))
        notes: list[list[int]] = []  # [pitch, start, duration]
        pos = 0
        slot = -1
        for tok in ids[i:]:
            state_before = state
            state = self.advance(state, tok)
            if state.expecting == "done":
                break
            if state_before.expecting == "event":
                slot = tok
            elif state_before.expecting == "duration":
                d = tok - self.dur0 + 1
                if slot == self.hold_id:
                    notes[-1][2] += d
                elif slot != self.rest_id:
                    notes.append([slot - self.pitch0 + PITCH_RANGE[0], pos, d])
                pos += d
        return Melody(notes=[Note(p, s, d) for p, s, d in notes], meter=meter, key=key)

    def count_notes(self, ids: Iterable[int]) -> int:
        """Sounding notes after merging holds (the denominator of nats per note)."""
        return len(self.decode(ids).notes)
