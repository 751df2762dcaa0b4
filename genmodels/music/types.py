"""Note and Melody, and the grid they live on. No torch, no MIDI library: cheap to import.

A melody is a list of monophonic sounding notes on a grid of 12 ticks per quarter note (it holds
sixteenths = 3 ticks and eighth/quarter triplets = 4/8 ticks), plus meter, key and tempo. The bar
grid is anchored at tick 0, so a pickup is written as a leading silence. Rests after the last note are
part of the music too: `length` (ticks, 0 = none) makes the melody last beyond its last note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from genmodels.core.errors import MidiError

TICKS_PER_QUARTER = 12
MAX_NOTES = 20_000
SUPPORTED_METERS: list[tuple[int, int]] = [
    (2, 4),
    (3, 4),
    (4, 4),
    (5, 4),
    (6, 4),
    (7, 4),
    (2, 2),
    (3, 2),
    (4, 2),
    (3, 8),
    (5, 8),
    (6, 8),
    (7, 8),
    (9, 8),
    (12, 8),
]
PITCH_RANGE = (21, 108)
# The modes a tune can carry (the folk modes; the tokenizer has a key token for each on every tonic).
MODES = ("major", "minor", "dorian", "mixolydian")
MAX_DURATION_TOKEN = max(n * 4 * TICKS_PER_QUARTER // d for n, d in SUPPORTED_METERS)  # 96

PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch: int) -> str:
    """MIDI pitch -> name with octave, sharps for black keys: 60 -> 'C4', 70 -> 'A#4'."""
    return f"{PITCH_CLASS_NAMES[pitch % 12]}{pitch // 12 - 1}"


def bar_ticks_for(meter: tuple[int, int]) -> int:
    """Ticks in one bar of `meter` on the 12-tpq grid."""
    return meter[0] * 4 * TICKS_PER_QUARTER // meter[1]


def fold_into_range(pitch: int) -> int:
    """`pitch` moved by octaves into PITCH_RANGE (the tokenizer has no slot outside it)."""
    while pitch < PITCH_RANGE[0]:
        pitch += 12
    while pitch > PITCH_RANGE[1]:
        pitch -= 12
    return pitch


@dataclass(frozen=True)
class Note:
    """One sounding note: MIDI pitch, onset and length in ticks (12 per quarter)."""

    pitch: int
    start: int
    duration: int

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(frozen=True)
class Repeat:
    """A repeated section of a played-out melody, in bars of the bar grid: the first pass plays
    `body` bars from bar `start` then `ending1` bars, the second pass the same body bars then
    `ending2` bars (no endings: both 0). The melody's notes are the tune as heard; a Repeat says how
    it is written (|: body [1 ending1 :|[2 ending2)."""

    start: int
    body: int
    ending1: int = 0
    ending2: int = 0

    @property
    def span(self) -> int:
        """Bars the section lasts when played."""
        return 2 * self.body + self.ending1 + self.ending2

    @property
    def end(self) -> int:
        return self.start + self.span

    @property
    def second_pass(self) -> int:
        """The bar where the second pass of the body begins."""
        return self.start + self.body + self.ending1


@dataclass
class Melody:
    """A monophonic melody on the 12-tpq grid; bar i spans [i*bar_ticks, (i+1)*bar_ticks)."""

    notes: list[Note] = field(default_factory=list)
    meter: tuple[int, int] = (4, 4)
    key: tuple[int, str] = (0, "major")
    tempo: float = 120.0
    length: int = 0  # ticks the melody lasts, rests after the last note included (0: until the last note ends)
    form: tuple[Repeat, ...] = ()  # how the played-out notes are written: repeats with their endings

    def __post_init__(self) -> None:
        self.notes = list(self.notes)
        self.meter = (int(self.meter[0]), int(self.meter[1]))
        self.key = (int(self.key[0]), str(self.key[1]))
        if self.meter not in SUPPORTED_METERS:
            raise MidiError(
                f"Unsupported meter {self.meter[0]}/{self.meter[1]}; supported: "
                + ", ".join(f"{n}/{d}" for n, d in SUPPORTED_METERS)
            )
        if not (0 <= self.key[0] <= 11) or self.key[1] not in MODES:
            raise MidiError(f"Invalid key {self.key}: expected (tonic 0-11, one of {', '.join(MODES)})")
        self.tempo = _valid_tempo(self.tempo)
        _check_notes(self.notes)
        if not isinstance(self.length, int) or isinstance(self.length, bool) or self.length < 0:
            raise MidiError(f"Invalid melody length {self.length!r}: expected ticks >= 0")
        self.form = tuple(self.form)
        _check_form(self.form, self.n_bars)

    @property
    def bar_ticks(self) -> int:
        return bar_ticks_for(self.meter)

    @property
    def end(self) -> int:
        """Tick where the melody ends: the last note's end, or `length` when trailing rests make it longer."""
        return max(self.notes[-1].end if self.notes else 0, self.length)

    @property
    def n_bars(self) -> int:
        return -(-self.end // self.bar_ticks)

    @property
    def pitches(self) -> list[int]:
        return [n.pitch for n in self.notes]

    def transpose(self, semitones: int) -> Melody:
        """Shift every pitch and the key tonic; MidiError if a pitch leaves PITCH_RANGE."""
        notes = [Note(n.pitch + semitones, n.start, n.duration) for n in self.notes]
        for n in notes:
            if not (PITCH_RANGE[0] <= n.pitch <= PITCH_RANGE[1]):
                raise MidiError(
                    f"Transposing by {semitones} moves pitch {n.pitch - semitones} "
                    f"outside {PITCH_RANGE[0]}-{PITCH_RANGE[1]}"
                )
        return replace(self, notes=notes, key=((self.key[0] + semitones) % 12, self.key[1]))

    def slice_bars(self, start: int, stop: int | None = None) -> Melody:
        """Bars [start, stop) as a new melody starting at tick 0 (notes clipped at the edges)."""
        bt = self.bar_ticks
        stop = self.n_bars if stop is None else stop
        lo, hi = start * bt, max(start, stop) * bt
        notes = []
        for n in self.notes:
            s, e = max(n.start, lo), min(n.end, hi)
            if e > s:
                notes.append(Note(n.pitch, s - lo, e - s))
        length = max(0, min(self.length, hi) - lo) if self.length else 0
        form = tuple(replace(r, start=r.start - start) for r in self.form if r.start >= start and r.end <= stop)
        return replace(self, notes=notes, length=length, form=form)

    def concat(self, other: Melody) -> Melody:
        """`other` appended at the next bar line after self (meter/key/tempo of self)."""
        off = self.n_bars * self.bar_ticks
        notes = self.notes + [Note(n.pitch, n.start + off, n.duration) for n in other.notes]
        form = self.form + tuple(replace(r, start=r.start + self.n_bars) for r in other.form)
        return replace(self, notes=notes, length=off + other.length if other.length else 0, form=form)


def _valid_tempo(tempo: object) -> float:
    try:
        bpm = float(tempo)
    except (TypeError, ValueError):
        raise MidiError(f"Invalid tempo {tempo!r}") from None
    if not math.isfinite(bpm) or not (1.0 <= bpm <= 1000.0):
        raise MidiError(f"Tempo {bpm} BPM is outside 1-1000")
    return bpm


def _check_form(form: tuple[Repeat, ...], n_bars: int) -> None:
    """MidiError unless `form` holds Repeats in order, apart, inside the melody's bars, each with a body
    and with both endings or neither. (That the two passes sound the same is checked where bars are cut:
    genmodels.music.form.repeat_problem.)"""
    prev_end = 0
    for r in form:
        if not isinstance(r, Repeat):
            raise MidiError(f"Melody.form must hold Repeat objects, got {type(r).__name__}")
        if r.body < 1 or r.start < prev_end or min(r.ending1, r.ending2) < 0 or (r.ending1 == 0) != (r.ending2 == 0):
            raise MidiError(f"Invalid repeat {r}: a body of at least one bar, both endings or neither, in order")
        if r.end > n_bars:
            raise MidiError(f"Repeat {r} lasts {r.span} bars from bar {r.start + 1}; the melody has {n_bars}")
        prev_end = r.end


def _check_notes(notes: list[Note]) -> None:
    """MidiError unless `notes` are at most MAX_NOTES valid Notes, sorted and not overlapping."""
    if len(notes) > MAX_NOTES:
        raise MidiError(f"Melody has {len(notes)} notes; the limit is {MAX_NOTES}")
    prev_end = 0
    for n in notes:
        if not isinstance(n, Note):
            raise MidiError(f"Melody.notes must hold Note objects, got {type(n).__name__}")
        if not (0 <= n.pitch <= 127) or n.duration <= 0 or n.start < 0:
            raise MidiError(f"Invalid note {n}")
        if n.start < prev_end:
            raise MidiError(f"Notes overlap or are unsorted at tick {n.start}")
        prev_end = n.end
