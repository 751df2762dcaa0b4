"""Four-part harmony on a sixteenth-note grid: the one data type the harmony domain shares.

A :class:`Chorale` holds four voices (soprano, alto, tenor, bass) as equal-length rows of grid
steps. Each step of a voice is a MIDI pitch (a note starts there), ``HOLD`` (the note before goes
on) or ``REST`` (silence starts or goes on). One step is a sixteenth note: 3 ticks of the melody
package's 12-per-quarter grid. Meter, key and fermatas travel with the voices. No torch, no MIDI
library: cheap to import.

The same type carries a melody waiting for its harmony (the lower voices all ``REST``), the
harmony the models write, and Bach's own chorales.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from genmodels.core.errors import NotationError, SettingsError

STEP_TICKS = 3  # ticks of the melody grid (12 per quarter) in one step (a sixteenth)
STEPS_PER_QUARTER = 4
HOLD = -1
REST = -2
VOICES = ("soprano", "alto", "tenor", "bass")
# Each voice's range in Bach's chorales (MIDI, inclusive): the range rule of the voice-leading report
# and the bounds that sampling keeps the lower voices inside.
RANGES: dict[str, tuple[int, int]] = {
    "soprano": (60, 81),  # C4..A5
    "alto": (53, 74),  # F3..D5
    "tenor": (48, 69),  # C3..A4
    "bass": (36, 62),  # C2..D4
}

LOW = min(lo for lo, _ in RANGES.values())  # the span of every voice together: the harmonisers' pitch vocabulary
HIGH = max(hi for _, hi in RANGES.values())


def fold(pitch: int) -> int:
    """A pitch moved by octaves into ``LOW..HIGH`` (the span of the models' vocabulary)."""
    while pitch < LOW:
        pitch += 12
    while pitch > HIGH:
        pitch -= 12
    return pitch


@dataclass(frozen=True)
class VoiceNote:
    """One note of one voice: MIDI pitch, first step and length in steps."""

    pitch: int
    start: int
    steps: int

    @property
    def end(self) -> int:
        return self.start + self.steps


@dataclass(frozen=True)
class Chorale:
    """Four voices on the sixteenth grid, with meter, key, fermatas and where step 0 sits in its bar.

    ``voices[v][t]``: pitch, HOLD or REST of voice ``v`` (0 soprano .. 3 bass) at step ``t``.
    ``offset``: the position of step 0 inside its bar, in steps (a one-beat pickup in 4/4: 12).
    ``fermatas``: steps (soprano note starts) under a fermata. ``tonic``: pitch class 0..11.
    """

    voices: tuple[tuple[int, ...], ...]
    meter: tuple[int, int] = (4, 4)
    tonic: int = 0
    mode: str = "major"
    offset: int = 0
    fermatas: tuple[int, ...] = ()
    id: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.voices) != 4:
            raise NotationError(f"a chorale has 4 voices, not {len(self.voices)}")
        lengths = {len(v) for v in self.voices}
        if len(lengths) != 1:
            raise NotationError(f"the voices have different lengths: {sorted(lengths)} steps")
        for v in self.voices:
            if v and v[0] == HOLD:
                raise NotationError("a voice cannot start with a held note")

    @property
    def steps(self) -> int:
        return len(self.voices[0])

    @property
    def bar_steps(self) -> int:
        """Steps in one bar of the meter (4/4: 16, 6/8: 12, 3/2: 24)."""
        n, d = self.meter
        return n * 16 // d

    @property
    def beats(self) -> list[int]:
        """Positions inside a bar where a beat starts (:func:`beat_positions` of the meter)."""
        return beat_positions(self.meter)

    def position(self, t: int) -> int:
        """Step ``t``'s position inside its bar, 0 = the downbeat."""
        return (self.offset + t) % self.bar_steps

    def beat_of(self, t: int) -> tuple[int, int]:
        """(index of the beat inside its bar, steps since that beat started) at step ``t``."""
        pos, beats = self.position(t), self.beats
        i = max(k for k, b in enumerate(beats) if b <= pos)
        return i, pos - beats[i]

    def is_beat(self, t: int) -> bool:
        """Whether a beat starts at step ``t``."""
        return self.position(t) in self.beats

    @property
    def beat_count(self) -> float:
        """Beats in the chorale (a partial bar counts its share of the bar's beats)."""
        return self.steps * len(self.beats) / self.bar_steps

    def notes(self, voice: int) -> list[VoiceNote]:
        """The notes of one voice (rests left out), in order."""
        return voice_notes(self.voices[voice])

    def sounding(self, voice: int) -> list[int | None]:
        """The pitch sounding in ``voice`` at every step (None during rests)."""
        out: list[int | None] = []
        cur: int | None = None
        for x in self.voices[voice]:
            if x >= 0:
                cur = x
            elif x == REST:
                cur = None
            out.append(cur)
        return out

    def with_voice(self, voice: int, row: tuple[int, ...] | list[int]) -> Chorale:
        """A copy with one voice replaced."""
        voices = list(self.voices)
        voices[voice] = tuple(row)
        return replace(self, voices=tuple(voices))

    def transpose(self, semitones: int) -> Chorale:
        """Every voice moved by ``semitones`` (HOLD and REST stay)."""
        voices = tuple(tuple(x + semitones if x >= 0 else x for x in v) for v in self.voices)
        return replace(self, voices=voices, tonic=(self.tonic + semitones) % 12)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "meter": list(self.meter),
            "tonic": self.tonic,
            "mode": self.mode,
            "offset": self.offset,
            "fermatas": list(self.fermatas),
            "voices": [list(v) for v in self.voices],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Chorale:
        return cls(
            voices=tuple(tuple(int(x) for x in v) for v in d["voices"]),
            meter=(int(d["meter"][0]), int(d["meter"][1])),
            tonic=int(d["tonic"]),
            mode=str(d["mode"]),
            offset=int(d.get("offset", 0)),
            fermatas=tuple(int(x) for x in d.get("fermatas", ())),
            id=str(d.get("id", "")),
            meta=dict(d.get("meta", {})),
        )


def voice_notes(row: tuple[int, ...] | list[int]) -> list[VoiceNote]:
    """Grid row → notes: a pitch starts a note, HOLD extends it, REST ends it."""
    notes: list[VoiceNote] = []
    start, pitch = -1, -1
    for t, x in enumerate(list(row) + [REST]):
        if x == HOLD and pitch >= 0:
            continue
        if pitch >= 0:
            notes.append(VoiceNote(pitch, start, t - start))
        start, pitch = (t, x) if x >= 0 else (-1, -1)
    return notes


def row_from_notes(notes: list[VoiceNote], steps: int) -> tuple[int, ...]:
    """Notes → a grid row of ``steps`` steps (REST where no note sounds); later notes cut earlier ones."""
    row = [REST] * steps
    for n in sorted(notes, key=lambda n: n.start):
        if n.start >= steps or n.steps <= 0:
            continue
        row[n.start] = n.pitch
        for t in range(n.start + 1, min(n.end, steps)):
            row[t] = HOLD
    return tuple(row)


# ----------------------------------------------------------------------------------------------
# Beats and chord changes: the one definition the soprano adapter, the chord symbols, the encoder's
# beat feature and the voice-leading rates share
# ----------------------------------------------------------------------------------------------

CHORD_RATES = ("beat", "half-bar", "bar")  # where a chord may change (the harmoniser offers the first two)


def beat_positions(meter: tuple[int, int]) -> list[int]:
    """Steps inside a bar where a beat starts: quarters in 4/4, halves in 3/2, dotted quarters in 3/8 (one
    beat), 6/8, 9/8 and 12/8; the asymmetric meters as short groups then the long one: 5/8 as 2+3 eighths,
    7/8 as 2+2+3."""
    n, d = meter
    bar = n * 16 // d
    if d == 8 and n % 3 == 0:
        return list(range(0, bar, 6))
    if d == 8 and n in (5, 7):
        return [*range(0, bar - 6, 4), bar - 6]
    return list(range(0, bar, 16 // d))


def chord_positions(meter: tuple[int, int], chord_rate: str = "beat") -> list[int]:
    """Steps inside a bar where a chord may change: every beat, every half bar (the first half takes the
    larger share of an odd number of beats; a bar of three beats or fewer changes once a bar, except that
    two beats make two halves), or once a bar."""
    if chord_rate not in CHORD_RATES:
        raise SettingsError(f"chord_rate must be one of {', '.join(repr(r) for r in CHORD_RATES)}, not {chord_rate!r}")
    beats = beat_positions(meter)
    if chord_rate == "beat" or (chord_rate == "half-bar" and len(beats) == 2):
        return beats
    if chord_rate == "bar" or len(beats) <= 3:
        return [0]
    return [0, beats[(len(beats) + 1) // 2]]
