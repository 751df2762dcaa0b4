"""Chord names for four-part harmony: a small template matcher over pitch-class sets.

:func:`chord_of` names the chord of a few sounding pitches (root pitch class + quality) by matching
the pitch-class set against the templates below, with the bass as tiebreak. music21's
``chord.Chord(...).root()`` takes about 9 ms a call here; this matcher is cached on (pitch-class
set, bass) and answers in microseconds, which matters: the metrics and baselines name every beat of
hundreds of chorales.

Score of a candidate (root, template) on a pitch-class set: notes of the set in the template, minus
template notes missing from the set, minus set notes outside the template (Pardo & Birmingham's
template matching). Ties go, in turn, to a candidate whose root sounds, to one that is not augmented
(rare in the chorales: C-E is C, not E augmented), to one whose root is the bass, and to the simpler
template (the order of ``QUALITIES``). A set of fewer than two pitch classes names no chord.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from genmodels.core.errors import NotationError, SettingsError
from genmodels.harmony.grid import CHORD_RATES, Chorale, chord_positions

# quality -> (suffix of the chord name, intervals above the root), simplest first (the tiebreak order)
QUALITIES: dict[str, tuple[str, tuple[int, ...]]] = {
    "major": ("", (0, 4, 7)),
    "minor": ("m", (0, 3, 7)),
    "dominant seventh": ("7", (0, 4, 7, 10)),
    "diminished": ("dim", (0, 3, 6)),
    "minor seventh": ("m7", (0, 3, 7, 10)),
    "major seventh": ("maj7", (0, 4, 7, 11)),
    "half-diminished seventh": ("m7b5", (0, 3, 6, 10)),
    "diminished seventh": ("dim7", (0, 3, 6, 9)),
    "augmented": ("aug", (0, 4, 8)),
}
SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Keys written with flats (tonic pitch classes): F Bb Eb Ab Db major; d g c f bb minor.
_FLAT_MAJOR = {5, 10, 3, 8, 1}
_FLAT_MINOR = {2, 7, 0, 5, 10}
# Root names without a key: the spelling most lead sheets use.
_PLAIN_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
RATES = CHORD_RATES  # how often chord_symbols looks (adapt.CHORD_RATES names the first two)


@dataclass(frozen=True)
class Chord:
    """A chord: root pitch class (0 = C) and quality (a key of ``QUALITIES``)."""

    root: int
    quality: str

    @property
    def name(self) -> str:
        """Lead-sheet name: "Am", "G7", "F#dim", "Bbmaj7"."""
        return _PLAIN_NAMES[self.root] + QUALITIES[self.quality][0]

    def spelled(self, tonic: int, mode: str) -> str:
        """The name with the root spelled for a key: flats in flat keys (Bb in F major), else sharps."""
        flats = tonic in (_FLAT_MINOR if mode == "minor" else _FLAT_MAJOR)
        return (FLAT_NAMES if flats else SHARP_NAMES)[self.root] + QUALITIES[self.quality][0]

    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.root + i) % 12 for i in QUALITIES[self.quality][1])


def chord_of(pitches: list[int] | tuple[int, ...]) -> Chord | None:
    """The chord of some sounding MIDI pitches (the lowest is the bass), or None under two pitch classes."""
    if not pitches:
        return None
    mask = 0
    for p in pitches:
        mask |= 1 << (p % 12)
    return _match(mask, min(pitches) % 12)


@cache
def _match(mask: int, bass: int) -> Chord | None:
    pcs = {pc for pc in range(12) if mask >> pc & 1}
    if len(pcs) < 2:
        return None
    best, best_key = None, None
    for order, (quality, (_, intervals)) in enumerate(QUALITIES.items()):
        for root in range(12):
            template = {(root + i) % 12 for i in intervals}
            hits = len(pcs & template)
            score = hits - len(template - pcs) - len(pcs - template)
            key = (score, root in pcs, quality != "augmented", root == bass, -order)
            if hits >= 2 and (best_key is None or key > best_key):
                best, best_key = Chord(root, quality), key
    return best


def beat_starts(chorale: Chorale) -> list[int]:
    """The steps on which a beat starts (``grid.beat_positions``)."""
    return [t for t in range(chorale.steps) if chorale.is_beat(t)]


def chords_at_beats(chorale: Chorale) -> list[Chord | None]:
    """The chord of the four voices sounding at each beat start (see :func:`beat_starts`)."""
    rows = [chorale.sounding(v) for v in range(4)]
    out = []
    for t in beat_starts(chorale):
        out.append(chord_of([r[t] for r in rows if r[t] is not None]))
    return out


def _symbol_steps(chorale: Chorale, every: str) -> list[int]:
    every = "half-bar" if every == "half" else every
    if every not in RATES:
        raise SettingsError(f"chords can be shown every {', '.join(RATES)}; not {every!r}")
    positions = set(chord_positions(chorale.meter, every))  # where the harmoniser lets chords change
    return [t for t in range(chorale.steps) if chorale.position(t) in positions]


def chord_symbols(chorale: Chorale, every: str = "beat") -> list[tuple[int, str]]:
    """(step, name) where the chord changes, looked at every ``"beat"``, ``"half-bar"`` (or ``"half"``) or
    ``"bar"``; steps without a nameable chord are skipped.

    The root is spelled for the chorale's key ("Bb" in F major, "A#" in B major).
    """
    rows = [chorale.sounding(v) for v in range(4)]
    out: list[tuple[int, str]] = []
    last = None
    for t in _symbol_steps(chorale, every):
        chord = chord_of([r[t] for r in rows if r[t] is not None])
        if chord is not None and chord != last:
            out.append((t, chord.spelled(chorale.tonic, chorale.mode)))
            last = chord
    return out


def chord_agreement(a: Chorale, b: Chorale) -> float:
    """Share of ``b``'s named beat chords that ``a`` matches in root and quality (1.0 when ``b`` names none).

    ``b`` is the reference (Bach); both chorales must have the same length.
    """
    hits, total = _chord_hits(a, b)
    return hits / total if total else 1.0


def _chord_hits(a: Chorale, b: Chorale) -> tuple[int, int]:
    if a.steps != b.steps:
        raise NotationError(f"cannot compare chords of {a.steps} and {b.steps} steps: the lengths differ")
    pairs = [(x, y) for x, y in zip(chords_at_beats(a), chords_at_beats(b), strict=True) if y is not None]
    return sum(x == y for x, y in pairs), len(pairs)
