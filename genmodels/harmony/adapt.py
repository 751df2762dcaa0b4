"""Any melody of the app as the soprano of a chorale, ready for the harmoniser.

Folk tunes are not chorales: pickups, fast notes, long tunes, other meters and modes. ``soprano_from_melody``
puts a :class:`~genmodels.music.types.Melody` on the sixteenth grid as a :class:`Chorale` (soprano filled,
alto, tenor and bass REST) and says in plain sentences what it changed on the way:

- **Grid**: onsets and ends rounded to the nearest sixteenth (3 ticks; half a sixteenth rounds up), so
  eighth and quarter triplets keep every note. A note that rounds to no time takes a free sixteenth
  beside it where there is one, else it merges into the note before (counted: only notes faster than a
  sixteenth, such as sixteenth triplets, can merge). Leading silence is cut (the pickup becomes the
  chorale's ``offset``); the melody's own length and tempo travel in ``meta`` so that
  :func:`melody_from_chorale_voice` gives the melody back.
- **Range**: a melody outside the soprano range (``grid.RANGES``) moves by octaves into it; only when no
  octave fits does it move by the fewest semitones. A melody wider than the range (many fiddle tunes
  span two octaves) moves where the fewest notes stay outside; those stay as written in the soprano and
  the simplified line (what the model reads) has them moved by octaves inside. Over ``MAX_SPAN`` it is refused.
- **Key**: dorian reads as minor and mixolydian as major (same tonic, same third): the model knows only
  major and minor.
- **Meter**: meters the chorales never had are harmonised by their beats (``grid.beat_positions``: 6/8 as
  two dotted quarters, 7/8 as 2+2+3 eighths).
- **Chord rate**: ``"beat"`` (a chord may change on every beat) or ``"half-bar"`` (on every half bar; in
  a bar of three beats, once a bar). ``meta["chord_rate"]`` and ``meta["chord_positions"]`` (the steps
  inside a bar where a chord may change) say which.
- **Simplified soprano** (``Adapted.simplified``, also ``meta["simplified"]``): what the model should read.
  A note shorter than an eighth that does not start where a chord may change, and follows the note
  before it without a rest, is merged into that note (the note before lasts over it). The chorale's
  soprano itself keeps every note.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from genmodels.core.errors import MidiError, NotationError, PitchRangeError, SettingsError
from genmodels.harmony.grid import (
    HOLD,
    RANGES,
    REST,
    STEP_TICKS,
    Chorale,
    VoiceNote,
    beat_positions,
    row_from_notes,
    voice_notes,
)
from genmodels.harmony.grid import chord_positions as grid_chord_positions
from genmodels.music.midi import default_track, list_tracks, read_midi
from genmodels.music.notation import note_name
from genmodels.music.scales import key_name
from genmodels.music.types import Melody, Note

CHORD_RATES = ("beat", "half-bar")
# Meters of the Bach chorales (data/README.md: 4/4 and 3/4 nearly all; one 3/2, one 12/8).
CHORALE_METERS = ((4, 4), (3, 4), (3, 2), (12, 8))
MAX_STEPS = 4096  # 256 bars of 4/4: longer melodies are refused (harmonise them in parts)
MAX_SPAN = 36  # semitones: a melody wider than three octaves is refused
SHORT_STEPS = 2  # notes shorter than this (an eighth) may be merged in the simplified soprano


@dataclass(frozen=True)
class Adapted:
    """A melody as a soprano: the chorale, the soprano row the model reads, the semitones it was moved,
    and what was changed, in sentences for the user."""

    chorale: Chorale
    simplified: tuple[int, ...]
    transposed: int = 0
    messages: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Beats and chord changes
# ----------------------------------------------------------------------------------------------


def chord_positions(meter: tuple[int, int], chord_rate: str = "beat") -> list[int]:
    """Steps inside a bar where the harmoniser lets a chord change (``grid.chord_positions`` at one of
    ``CHORD_RATES``)."""
    if chord_rate not in CHORD_RATES:
        raise SettingsError(f"chord_rate must be one of {', '.join(repr(r) for r in CHORD_RATES)}, not {chord_rate!r}")
    return grid_chord_positions(meter, chord_rate)


def _beats_text(meter: tuple[int, int]) -> str:
    """'2 dotted quarters a bar', '3 beats a bar (2+2+3 eighths)'."""
    beats = beat_positions(meter)
    sizes = [b - a for a, b in zip(beats, beats[1:] + [meter[0] * 16 // meter[1]], strict=True)]
    if len(set(sizes)) > 1:
        return f"{len(beats)} beats a bar ({'+'.join(str(x // 2) for x in sizes)} eighths)"
    names = {2: ("eighth", "eighths"), 4: ("quarter", "quarters"), 6: ("dotted quarter", "dotted quarters")}
    names |= {8: ("half", "halves"), 12: ("dotted half", "dotted halves")}
    one, many = names.get(sizes[0], (f"{sizes[0]} sixteenths", f"{sizes[0]} sixteenths"))
    return f"{len(beats)} {one if len(beats) == 1 else many} a bar"


# ----------------------------------------------------------------------------------------------
# Melody -> grid
# ----------------------------------------------------------------------------------------------


def _step(tick: int) -> int:
    """Ticks → the nearest sixteenth step (half a step rounds up)."""
    return (tick + 1) // STEP_TICKS


def quantise(notes: list[Note]) -> tuple[list[VoiceNote], int, int]:
    """Notes on the 12-tpq grid → sixteenth-grid notes, the notes moved, the notes merged (see the module
    docstring). Steps count from tick 0."""
    starts = [_step(n.start) for n in notes]
    out: list[VoiceNote] = []
    moved = merged = 0
    for i, n in enumerate(notes):
        moved += (n.start % STEP_TICKS != 0) or (n.end % STEP_TICKS != 0)
        prev_end = out[-1].end if out else 0
        s = max(starts[i], prev_end)
        e = _step(n.end)
        if e <= s:
            nxt = starts[i + 1] if i + 1 < len(notes) else s + 1
            if nxt > s:  # the step it rounds to is free
                e = s + 1
            elif s - 1 >= prev_end:  # a free step just before it (after a rest)
                s, e = s - 1, s
            else:
                merged += 1
                continue
        out.append(VoiceNote(n.pitch, s, e - s))
    return out, moved, merged


def range_shift(pitches: list[int], voice: str = "soprano") -> int:
    """Semitones that bring ``pitches`` into the voice's range: 0 when they fit, else the nearest octave
    shift that fits, else the nearest semitone shift that fits. A melody wider than the range: the shift
    that leaves the fewest notes outside (octaves first). PitchRangeError if it spans over MAX_SPAN."""

    lo, hi = RANGES[voice]
    low, high = min(pitches), max(pitches)
    if high - low > MAX_SPAN:
        raise PitchRangeError(
            f"The melody spans {high - low} semitones ({note_name(low)} to {note_name(high)}); the harmoniser "
            f"takes melodies of up to {MAX_SPAN} (the {voice} range is {hi - lo}: {note_name(lo)} to "
            f"{note_name(hi)}). Choose a melody of narrower range."
        )
    counts = Counter(pitches)

    def outside(k: int) -> int:
        return sum(n for p, n in counts.items() if not lo <= p + k <= hi)

    return min(range(lo - high, hi - low + 1), key=lambda k: (outside(k), k % 12 != 0, abs(k), k))


def fold_into(pitch: int, voice: str = "soprano") -> int:
    """``pitch`` moved by octaves into the voice's range (as near its edge as it gets)."""
    lo, hi = RANGES[voice]
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def _range_messages(pitches: list[int], shift: int, tonic: int, mode: str) -> list[str]:
    """What moving the melody by ``shift`` did, and the notes left outside the soprano range."""

    lo, hi = RANGES["soprano"]
    where = f"the soprano range ({note_name(lo)} to {note_name(hi)})"
    direction = "up" if shift > 0 else "down"
    n = abs(shift) // 12
    moved = (
        f"moved {direction} {'an octave' if n == 1 else f'{n} octaves'}"
        if shift % 12 == 0
        else f"moved {direction} {abs(shift)} semitone{'s' if abs(shift) > 1 else ''} (now in {key_name(tonic, mode)})"
    )
    out = sum(1 for p in pitches if not lo <= p + shift <= hi)
    if out:
        low, high = min(pitches), max(pitches)
        return [
            f"The melody spans {high - low} semitones ({note_name(low)} to {note_name(high)}), more than {where}"
            + (f": {moved}" if shift else "")
            + f"; {out} note{'s stay' if out > 1 else ' stays'} outside the range (the harmoniser reads "
            f"{'them' if out > 1 else 'it'} moved by octaves into it)."
        ]
    if not shift:
        return []
    reason = "" if shift % 12 == 0 else " (no octave shift fits this melody)"
    return [f"{moved[0].upper()}{moved[1:]} to fit {where}{reason}."]


def _mode_for_model(tonic: int, mode: str, messages: list[str]) -> str:

    if mode in ("major", "minor"):
        return mode
    near = "minor" if mode in ("dorian", "phrygian", "aeolian", "locrian") else "major"
    messages.append(
        f"The tune is in {key_name(tonic, mode)}; the harmoniser knows only major and minor keys, so it "
        f"reads the key as {key_name(tonic, near)} (same tonic, same third)."
    )
    return near


def simplify(row: tuple[int, ...], chorale: Chorale, positions: list[int]) -> tuple[tuple[int, ...], int]:
    """The soprano the model reads, and how many notes were merged: a note shorter than an eighth that
    does not start where a chord may change (``positions`` inside the bar) and follows the note before
    without a rest becomes part of that note."""
    out = list(row)
    merged = 0
    prev_end = -1
    for n in voice_notes(row):
        passing = n.steps < SHORT_STEPS and chorale.position(n.start) not in positions
        if passing and prev_end == n.start:
            out[n.start] = HOLD
            merged += 1
        prev_end = n.end
    return tuple(out), merged


# ----------------------------------------------------------------------------------------------
# The public functions
# ----------------------------------------------------------------------------------------------


def _check_input(melody: object, chord_rate: str) -> None:
    if chord_rate not in CHORD_RATES:
        raise SettingsError(f"chord_rate must be one of {', '.join(repr(r) for r in CHORD_RATES)}, not {chord_rate!r}")
    if not isinstance(melody, Melody):
        raise NotationError(f"soprano_from_melody needs a Melody, not {type(melody).__name__}")
    if not melody.notes:
        raise NotationError("The melody is empty: there are no notes to harmonise. Generate, upload or type one.")


def _grid_notes(melody: Melody, messages: list[str]) -> tuple[list[VoiceNote], int]:
    """The melody's notes on the grid from its first note, and the steps of silence cut before it."""
    notes, moved, merged = quantise(melody.notes)
    if moved:
        were = "notes were" if moved > 1 else "note was"
        messages.append(
            f"{moved} {were} off the sixteenth-note grid (triplets, for example) and moved to the nearest sixteenth."
        )
    if merged:
        messages.append(
            f"{merged} note{'s' if merged > 1 else ''} faster than a sixteenth "
            f"{'were' if merged > 1 else 'was'} merged into the note before."
        )
    lead = notes[0].start
    steps = notes[-1].end - lead
    if steps > MAX_STEPS:
        bars = -(-melody.end // melody.bar_ticks)
        raise NotationError(
            f"The melody is {steps} sixteenths long ({bars} bars); the harmoniser takes at most {MAX_STEPS} "
            f"sixteenths ({MAX_STEPS // 16} bars of 4/4). Harmonise a part of it (fewer bars)."
        )
    return [VoiceNote(n.pitch, n.start - lead, n.steps) for n in notes], lead


def _meter_messages(meter: tuple[int, int], messages: list[str]) -> None:
    if meter not in CHORALE_METERS:
        messages.append(
            f"{meter[0]}/{meter[1]} was never seen in training: harmonised by its beats ({_beats_text(meter)})."
        )


def _simplified_message(merged: int, chord_rate: str) -> str:
    every = "beat" if chord_rate == "beat" else "half bar"
    return (
        f"The harmoniser reads a simpler line: {merged} passing note{'s' if merged > 1 else ''} shorter "
        f"than an eighth (not on a {every}) merged into the note before; the melody keeps every note."
    )


def soprano_from_melody(melody: Melody, *, chord_rate: str = "beat") -> Adapted:
    """``melody`` as the soprano of a Chorale for the harmoniser (see the module docstring for every
    change and the sentences that report it). The melody itself is not changed."""
    _check_input(melody, chord_rate)
    messages: list[str] = []
    notes, lead = _grid_notes(melody, messages)
    tonic, written_mode = melody.key
    pitches = [n.pitch for n in notes]
    shift = range_shift(pitches)
    messages += _range_messages(pitches, shift, (tonic + shift) % 12, written_mode)
    mode = _mode_for_model(tonic, written_mode, messages)
    _meter_messages(melody.meter, messages)
    positions = chord_positions(melody.meter, chord_rate)
    steps = notes[-1].end
    row = row_from_notes([VoiceNote(n.pitch + shift, n.start, n.steps) for n in notes], steps)
    meta = {
        "source": "melody",
        "transposed": shift,
        "lead_steps": lead,
        "length_ticks": melody.length,
        "tempo": melody.tempo,
        "melody_key": [tonic, written_mode],
        "chord_rate": chord_rate,
        "chord_positions": positions,
    }
    rests = (REST,) * steps
    bar = melody.meter[0] * 16 // melody.meter[1]
    chorale = Chorale(
        voices=(row, rests, rests, rests),
        meter=melody.meter,
        tonic=(tonic + shift) % 12,
        mode=mode,
        offset=lead % bar,
        id="melody",
        meta=meta,
    )
    simplified, merged = simplify(row, chorale, positions)
    simplified = tuple(fold_into(x) if x >= 0 else x for x in simplified)
    if merged:
        messages.append(_simplified_message(merged, chord_rate))
    meta["simplified"] = list(simplified)
    return Adapted(chorale=chorale, simplified=simplified, transposed=shift, messages=messages)


def key_shift_back(transposed: int) -> int:
    """Semitones that bring a harmony written ``transposed`` semitones away from its melody back to the
    melody's key: the part of the shift that is not whole octaves, undone (an octave move keeps the key,
    so it stays; +3 → −3, +9 → +3, +15 → −3, ±12 → 0)."""
    return -(transposed - 12 * round(transposed / 12))


def in_melody_key(harmony: Chorale, transposed: int) -> tuple[Chorale, str | None]:
    """``harmony`` (written ``transposed`` semitones from the melody) moved back into the melody's key, and
    a sentence saying so (None when nothing moved)."""

    back = key_shift_back(transposed)
    if not back:
        return harmony, None
    moved = harmony.transpose(back)
    name = key_name(moved.tonic, str(harmony.meta.get("melody_key", [0, moved.mode])[1]))
    way = "down" if back < 0 else "up"
    return moved, (
        f"Harmonised there, then all four voices moved back {way} {abs(back)} semitone{'s' if abs(back) > 1 else ''}: "
        f"the harmony is in {name}, like the melody."
    )


def melody_from_chorale_voice(chorale: Chorale, voice: int = 0, *, untranspose: bool = True) -> Melody:
    """One voice of ``chorale`` as a Melody: the silence cut before the first note put back (the pickup
    as a leading rest, the Melody convention), tempo and length from ``meta`` where the chorale came
    from a melody, and with ``untranspose`` moved back by ``meta["transposed"]`` semitones (to the
    melody's own key, or a corpus copy's source key)."""
    if not 0 <= voice < 4:
        raise SettingsError(f"voice must be 0 (soprano) .. 3 (bass), not {voice!r}")
    meta = chorale.meta
    back = -int(meta.get("transposed", 0)) if untranspose else 0
    lead = int(meta.get("lead_steps", chorale.offset))
    notes = [Note(n.pitch + back, (n.start + lead) * STEP_TICKS, n.steps * STEP_TICKS) for n in chorale.notes(voice)]
    key = (
        tuple(meta["melody_key"])
        if untranspose and "melody_key" in meta
        else ((chorale.tonic + back) % 12, chorale.mode)
    )
    try:
        return Melody(
            notes=notes,
            meter=chorale.meter,
            key=key,
            tempo=float(meta.get("tempo", 120.0)),
            length=int(meta.get("length_ticks", 0)),
        )
    except MidiError as e:
        raise NotationError(f"This voice cannot be a melody: {e}") from e


def soprano_from_midi(
    source: str | os.PathLike | bytes, track: int | None = None, *, chord_rate: str = "beat"
) -> Adapted:
    """A MIDI file's melody (``read_midi``: one track, its top line) as a soprano; says so when the
    track held chords or the file held other tracks."""

    tracks = list_tracks(source)
    index = default_track(tracks) if track is None else track
    melody = read_midi(source, track=index)
    adapted = soprano_from_melody(melody, chord_rate=chord_rate)
    info = next((t for t in tracks if t.index == index), None)
    notes: list[str] = []
    if info is not None and info.max_polyphony > 1:
        notes.append(
            f"The track holds chords (up to {info.max_polyphony} notes at once): took its top line as the melody."
        )
    others = [t for t in tracks if t.index != index and not t.is_drum]
    if info is not None and others:
        name = info.name or info.instrument
        notes.append(f"The file has {len(others) + 1} tracks: harmonised track {index} ({name}), the melody.")
    return Adapted(adapted.chorale, adapted.simplified, adapted.transposed, notes + adapted.messages)
