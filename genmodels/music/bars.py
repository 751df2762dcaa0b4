"""What the score writers share: a melody cut into bars of written events (notes split at bar lines
and tied, rests for the gaps, an optional pickup bar), note values a score can write, and reading
a music21 score back into notes, meter and key to check an export.

The Melody's bar grid starts at tick 0 and a pickup is stored as a leading silence; the writers
turn a leading silence shorter than a bar into a pickup (anacrusis) bar unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from genmodels.core.errors import NotationError
from genmodels.music import TICKS_PER_QUARTER, Melody
from genmodels.music.scales import parse_mode

# Plain and dotted values from a sixteenth (3 ticks) to a dotted whole (72) and a breve (96).
NOTE_VALUES = (96, 72, 48, 36, 24, 18, 12, 9, 6, 3)


@dataclass(frozen=True)
class Event:
    """One written note or rest inside a bar: pitch (None = rest), start tick inside the bar, length
    in ticks, tied to the next event (tie) / from the previous one (tied), index of the melody note."""

    pitch: int | None
    start: int
    ticks: int
    tie: bool = False
    tied: bool = False
    index: int | None = None


def pickup_ticks(melody: Melody, pickup: bool | None = None) -> int:
    """Length of the leading silence written as a pickup bar's missing part (0 = no pickup)."""
    if not melody.notes or pickup is False:
        return 0
    lead = melody.notes[0].start
    return lead if 0 < lead < melody.bar_ticks else 0


def bar_events(melody: Melody, pickup: bool | None = None) -> list[list[Event]]:
    """The melody as bars of events; the first bar starts after the pickup's silence, if any.
    The last bar ends with the last note, or with the rests after it up to the melody's ``length``
    (written, so that a score reader counts those bars: an empty bar is no bar to an ABC reader)."""
    bt = melody.bar_ticks
    skip = pickup_ticks(melody, pickup)
    bars: list[list[Event]] = [[] for _ in range(melody.n_bars)]

    def put(pitch: int | None, start: int, end: int, index: int | None) -> None:
        t = start
        while t < end:
            b = t // bt
            stop = min(end, (b + 1) * bt)
            bars[b].append(
                Event(
                    pitch,
                    t - b * bt,
                    stop - t,
                    pitch is not None and stop < end,
                    pitch is not None and t > start,
                    index,
                )
            )
            t = stop

    t = skip
    for i, n in enumerate(melody.notes):
        put(None, t, n.start, None)
        put(n.pitch, n.start, n.end, i)
        t = n.end
    put(None, t, melody.end, None)
    return bars


def split_value(ticks: int, values: tuple[int, ...] = NOTE_VALUES) -> list[int]:
    """A length in ticks as written values (largest first, tied); [] where none sums to it."""
    out = []
    for v in values:
        while ticks >= v:
            out.append(v)
            ticks -= v
    return out if ticks == 0 else []


def describe_position(bar: int, start: int) -> str:
    """'bar 3, beat 2 1/3' for a tick `start` inside bar index `bar`."""
    beat = Fraction(start, TICKS_PER_QUARTER)
    whole, part = divmod(beat, 1)
    return f"bar {bar + 1}, beat {int(whole) + 1}" + (f" {part}" if part else "")


# ----------------------------------------------------------------------------------------------
# Reading a music21 score back
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadBack:
    """What a score holds, on the melody's grid: notes (pitch, start, length), meter, key, tempo."""

    notes: list[tuple[int, int, int]]
    meter: tuple[int, int] | None
    key: tuple[int, str] | None
    tempo: float | None


def _ticks(ql: Any, what: str) -> int:
    t = Fraction(ql).limit_denominator(10_000) * TICKS_PER_QUARTER
    if t.denominator != 1:
        raise NotationError(f"{what} at {float(ql)} quarters is not on the 12-ticks-per-quarter grid")
    return int(t)


def read_back(score: Any) -> ReadBack:
    """Notes (ties merged, bar grid anchored as in Melody: a pickup bar becomes a leading silence),
    meter, key (with mode) and tempo of a music21 score's first part."""
    from music21 import key as m21key
    from music21 import meter as m21meter
    from music21 import tempo as m21tempo

    part = score.parts[0] if getattr(score, "parts", None) else score
    ts = next(iter(part.recurse().getElementsByClass(m21meter.TimeSignature)), None)
    meter = (ts.numerator, ts.denominator) if ts is not None else None
    ks = next(iter(part.recurse().getElementsByClass(m21key.KeySignature)), None)
    key = None
    if isinstance(ks, m21key.Key):
        key = (ks.tonic.pitchClass, parse_mode(ks.mode))
    elif ks is not None:
        key = (ks.asKey("major").tonic.pitchClass, "major")
    mm = next(iter(part.recurse().getElementsByClass(m21tempo.MetronomeMark)), None)
    tempo = float(mm.getQuarterBPM()) if mm is not None and mm.number else None
    shift = 0
    measures = list(part.getElementsByClass("Measure"))
    if meter is not None and len(measures) > 1:
        bar = meter[0] * 4 * TICKS_PER_QUARTER // meter[1]
        shift = -_ticks(measures[1].offset, "the second bar") % bar
    notes = []
    for el in part.stripTies().flatten().notes:
        if el.duration.isGrace:
            continue
        start = _ticks(el.offset, "a note") + shift
        notes.append((max(p.midi for p in el.pitches), start, _ticks(el.quarterLength, "a note length")))
    return ReadBack(notes, meter, key, tempo)


def compare(melody: Melody, back: ReadBack) -> str | None:
    """None when `back` holds the melody's notes, meter and key; else what differs first."""
    want = [(n.pitch, n.start, n.duration) for n in melody.notes]
    if back.meter != melody.meter:
        return f"meter {back.meter} read back, {melody.meter} written"
    key = (melody.key[0], parse_mode(melody.key[1]))
    if back.key != key:
        return f"key {back.key} read back, {key} written"
    if len(back.notes) != len(want):
        return f"{len(back.notes)} notes read back, {len(want)} written"
    for i, (a, b) in enumerate(zip(back.notes, want, strict=True)):
        if a != b:
            return f"note {i + 1}: (pitch, start, ticks) {a} read back, {b} written"
    return None
