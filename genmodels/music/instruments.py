"""Playable ranges of General MIDI melody instruments, and the octave shift that brings a melody into one.

Ranges are sounding pitches (MIDI numbers) of the usual concert instrument, from standard orchestration
tables (e.g. Adler, *The Study of Orchestration*): flute C4-C7, violin G3-G7, tin whistle in D D5-D7,
Highland bagpipe G4-A5. A program without a range here (drums, effects, pads, organs) takes any pitch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pretty_midi


@dataclass(frozen=True)
class Range:
    low: int
    high: int

    def outside(self, pitches: Sequence[int]) -> int:
        """How many of the pitches lie outside the range."""
        return sum(not self.low <= p <= self.high for p in pitches)


_RANGES: dict[tuple[int, ...], tuple[int, int]] = {
    tuple(range(0, 8)): (21, 108),  # pianos
    (9,): (79, 108),  # glockenspiel
    (11,): (53, 89),  # vibraphone
    (12,): (45, 96),  # marimba
    (13,): (65, 108),  # xylophone
    (21, 23): (53, 89),  # accordion, tango accordion (right hand)
    (22,): (60, 96),  # harmonica (chromatic)
    tuple(range(24, 32)): (40, 86),  # guitars
    tuple(range(32, 40)): (28, 67),  # basses
    (40, 110): (55, 103),  # violin, fiddle
    (41,): (48, 91),  # viola
    (42,): (36, 76),  # cello
    (43,): (28, 67),  # contrabass
    (46,): (24, 103),  # harp
    (56,): (54, 82),  # trumpet
    (57,): (40, 72),  # trombone
    (58,): (28, 58),  # tuba
    (60,): (35, 77),  # French horn
    (64,): (56, 87),  # soprano sax
    (65,): (49, 81),  # alto sax
    (66,): (44, 75),  # tenor sax
    (67,): (36, 69),  # baritone sax
    (68,): (58, 91),  # oboe
    (69,): (52, 81),  # English horn
    (70,): (34, 75),  # bassoon
    (71,): (50, 94),  # clarinet
    (72,): (74, 108),  # piccolo
    (73,): (60, 96),  # flute
    (74,): (72, 98),  # recorder (soprano)
    (75,): (60, 96),  # pan flute
    (78,): (74, 98),  # whistle (tin whistle in D)
    (79,): (72, 89),  # ocarina
    (105,): (50, 86),  # banjo
    (109,): (67, 81),  # bagpipe (Highland)
}
RANGES: dict[int, Range] = {p: Range(*r) for programs, r in _RANGES.items() for p in programs}


def instrument_range(program: int) -> Range | None:
    """The playable range of a General MIDI program, or None when it has none here."""
    return RANGES.get(int(program))


def instrument_name(program: int) -> str:
    """'Flute', 'Acoustic Grand Piano'."""
    return pretty_midi.program_to_instrument_name(int(program))


def octave_shift_into(pitches: Sequence[int], r: Range) -> int | None:
    """The shift in whole octaves (semitones, smallest first) that puts every pitch inside ``r``; 0 when they
    are inside already; None when the melody spans more than the range."""
    if not pitches:
        return 0
    lo, hi = min(pitches), max(pitches)
    if hi - lo > r.high - r.low:
        return None
    fits = [12 * k for k in range(-8, 9) if r.low <= lo + 12 * k and hi + 12 * k <= r.high]
    return min(fits, key=abs) if fits else None
