"""Note names: the pitch-class table, the note-name prompt parser and formatter, key estimation.

Note-name text looks like "C4 D#4/2 r/4 G4*3/2 Bb3 | C5*4": a note (letter, optional sharps or flats,
written # b or ♯ ♭; octave; C4 = 60) or 'r' for a rest, then an optional duration in quarter notes;
'|' is a bar line, checked against the meter. No torch here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

from genmodels.core.errors import MidiError, SeedError
from genmodels.music import scales
from genmodels.music.types import (
    PITCH_CLASS_NAMES,
    PITCH_RANGE,
    SUPPORTED_METERS,
    TICKS_PER_QUARTER,
    Melody,
    Note,
    bar_ticks_for,
    note_name,
)

MAX_PROMPT_TOKENS = 512  # notes and rests in one note-name prompt
MAX_NOTE_QUARTERS = 64  # longest single note or rest in note-name text, in quarter notes

# The one pitch-class table. Note names use sharps (format_notes writes them and the parser reads
# them back); KEY_NAMES spells the three keys usually written with flats (Eb, Ab, Bb) that way.
_FLAT_SPELLED_KEYS = (3, 8, 10)
KEY_NAMES = tuple(
    f"{PITCH_CLASS_NAMES[(pc + 1) % 12]}b" if pc in _FLAT_SPELLED_KEYS else name
    for pc, name in enumerate(PITCH_CLASS_NAMES)
)
_LETTER_PC = {name.lower(): pc for pc, name in enumerate(PITCH_CLASS_NAMES) if len(name) == 1}

_NOTE_TOKEN = re.compile(
    r"^(?:(?P<rest>[rR])|(?P<letter>[A-Ga-g])(?P<acc>#{1,2}|b{1,2})?(?P<oct>-?\d))"
    r"(?:\*(?P<mnum>\d+)(?:/(?P<mden>\d+))?|/(?P<div>\d+))?$"
)


def estimate_key(pitches: Sequence[int], durations: Sequence[float] | None = None) -> tuple[int, str]:
    """Key (tonic pc, mode) of a tune, one of the folk modes; (0, 'major') for no notes.
    See genmodels.music.scales.estimate_key (mode profiles, scale share, tonic endings)."""
    return scales.estimate_key(pitches, durations) if len(pitches) else (0, "major")


# --------------------------------------------------------------------------------------------
# Note-name text -> Melody
# --------------------------------------------------------------------------------------------


def parse_note_prompt(
    text: str, meter: tuple[int, int] = (4, 4), key: tuple[int, str] | None = None, tempo: float = 120.0
) -> Melody:
    """Parse note names like "C4 D#4/2 r/4 G4*3/2 Bb3 | C5*4" into a Melody.

    Each token is a note (letter A-G, optional # or b, also written ♯ or ♭, octave; C4 = 60) or
    'r' for a rest, followed by an optional duration in quarter notes: '/n' divides, '*a' or '*a/b'
    multiplies (default one quarter). Durations must land on the 12-ticks-per-quarter grid. '|' is a
    bar line: it must fall where a bar of `meter` ends (else SeedError naming the bar), so it checks
    what was typed; it adds no time. Rests after the last note are kept as the melody's `length`.
    key=None estimates the key from the notes. Raises SeedError naming the bad token and its position.
    """
    if not isinstance(text, str):
        raise SeedError("The note seed must be text")
    meter = _prompt_meter(meter)
    tokens = text.replace(",", " ").replace("|", " | ").replace("♯", "#").replace("♭", "b").split()
    n_events = sum(tok != "|" for tok in tokens)
    if not n_events:
        raise SeedError("The note seed is empty: write note names such as 'C4 E4 G4/2'")
    if n_events > MAX_PROMPT_TOKENS or len(tokens) > 2 * MAX_PROMPT_TOKENS:
        raise SeedError(f"The note seed has {n_events} notes and rests; the limit is {MAX_PROMPT_TOKENS}")
    notes: list[Note] = []
    t, i = 0, 0
    bar = bar_ticks_for(meter)
    for tok in tokens:
        if tok == "|":
            if t % bar:
                raise SeedError(
                    f"Bar {t // bar + 1} is not complete at the '|' after note {i}: it has "
                    f"{Fraction(t % bar, TICKS_PER_QUARTER)} of {Fraction(bar, TICKS_PER_QUARTER)} quarter notes "
                    f"in {meter[0]}/{meter[1]}. Fill the bar, remove the '|', or start a pickup with rests "
                    "(r*3 G4 | C5)"
                )
            continue
        i += 1
        pitch, ticks = _parse_token(i, tok)
        if pitch is not None:
            notes.append(Note(pitch, t, ticks))
        t += ticks
    if not notes:
        raise SeedError("The note seed has only rests: give at least one note")
    if key is None:
        key = estimate_key([n.pitch for n in notes], [n.duration / TICKS_PER_QUARTER for n in notes])
    try:
        return Melody(notes=notes, meter=meter, key=key, tempo=tempo, length=t if t > notes[-1].end else 0)
    except MidiError as e:
        raise SeedError(str(e)) from None


def _prompt_meter(meter: tuple[int, int]) -> tuple[int, int]:
    try:
        meter = (int(meter[0]), int(meter[1]))
    except (TypeError, ValueError, IndexError):
        raise SeedError(f"Invalid meter {meter!r}") from None
    if meter not in SUPPORTED_METERS:
        raise SeedError(f"Unsupported meter {meter[0]}/{meter[1]}")
    return meter


def _parse_token(i: int, tok: str) -> tuple[int | None, int]:
    """Token number `i` -> (MIDI pitch, or None for a rest; duration in ticks)."""
    m = _NOTE_TOKEN.match(tok)
    if not m:
        raise SeedError(
            f"Can't read note {i} {tok!r}: expected a note name with octave such as "
            "C4, F#3 or Bb5 (or r for a rest), optionally followed by /n, *a or *a/b"
        )
    ticks = _token_ticks(i, tok, m)
    if m["rest"] is not None:
        return None, ticks
    acc = m["acc"] or ""
    pitch = (int(m["oct"]) + 1) * 12 + _LETTER_PC[m["letter"].lower()] + acc.count("#") - acc.count("b")
    if not (PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]):
        raise SeedError(
            f"Can't read note {i} {tok!r}: pitch is outside the piano range "
            f"{note_name(PITCH_RANGE[0])}-{note_name(PITCH_RANGE[1])}"
        )
    return pitch, ticks


def _token_ticks(i: int, tok: str, m: re.Match) -> int:
    """The duration written after a note name ('/n', '*a', '*a/b'; one quarter if none), in ticks."""
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
    if q <= 0 or q > MAX_NOTE_QUARTERS:
        raise SeedError(
            f"Can't read note {i} {tok!r}: the duration must be more than 0 and at "
            f"most {MAX_NOTE_QUARTERS} quarter notes"
        )
    if ticks.denominator != 1:
        raise SeedError(
            f"Can't read note {i} {tok!r}: duration {q} quarter notes is not on the "
            "grid (sixteenths and triplets are the finest values)"
        )
    return int(ticks)


# --------------------------------------------------------------------------------------------
# Melody -> note-name text
# --------------------------------------------------------------------------------------------


def _format_quarters(ticks: int) -> str:
    q = Fraction(ticks, TICKS_PER_QUARTER)
    if q == 1:
        return ""
    if q.numerator == 1:
        return f"/{q.denominator}"
    if q.denominator == 1:
        return f"*{q.numerator}"
    return f"*{q.numerator}/{q.denominator}"


def format_notes(melody: Melody) -> str:
    """Melody -> note-name text that parse_note_prompt reads back to the same notes."""
    out: list[str] = []
    longest = MAX_NOTE_QUARTERS * TICKS_PER_QUARTER

    def rest(ticks: int) -> None:
        while ticks > 0:  # keep each token within the parser's limit
            step = min(ticks, longest)
            out.append("r" + _format_quarters(step))
            ticks -= step

    t = 0
    for n in melody.notes:
        rest(n.start - t)
        if n.duration > longest:
            raise SeedError(f"Note at tick {n.start} is longer than {MAX_NOTE_QUARTERS} quarters")
        out.append(note_name(n.pitch) + _format_quarters(n.duration))
        t = n.end
    rest(melody.end - t)  # rests after the last note (melody.length)
    return " ".join(out)
