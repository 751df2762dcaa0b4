"""Keys and modes: scales of the seven church modes, key names (ABC `K:` strings), key signatures,
mapping a melody between modes by scale degree, transposition with a range check, and key + mode
estimation from pitches.

A key is a pair (tonic pitch class 0-11, mode name); mode names are the canonical ones in MODE_STEPS
("major" and "minor" stand for ionian and aeolian, as the rest of the library writes them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace

from genmodels.core.errors import NotationError, PitchRangeError
from genmodels.music.types import MODES, PITCH_RANGE, TICKS_PER_QUARTER, Melody, Note, note_name

# Semitone offsets of the seven degrees above the tonic.
MODE_STEPS: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
}
FOLK_MODES = MODES  # the modes a Melody carries; the others map to the nearest of them
# How far the tonic of each mode lies above the tonic of the major scale with the same notes.
_MODE_DEGREE_OF_MAJOR = {
    "major": 0,
    "dorian": 2,
    "phrygian": 4,
    "lydian": 5,
    "mixolydian": 7,
    "minor": 9,
    "locrian": 11,
}
_ALIASES = {
    "": "major",
    "maj": "major",
    "major": "major",
    "ion": "major",
    "ionian": "major",
    "m": "minor",
    "min": "minor",
    "minor": "minor",
    "aeo": "minor",
    "aeolian": "minor",
    "dor": "dorian",
    "dorian": "dorian",
    "phr": "phrygian",
    "phrygian": "phrygian",
    "lyd": "lydian",
    "lydian": "lydian",
    "mix": "mixolydian",
    "mixolydian": "mixolydian",
    "loc": "locrian",
    "locrian": "locrian",
}
ABC_MODE_SUFFIX = {
    "major": "",
    "minor": "m",
    "dorian": "dor",
    "phrygian": "phr",
    "lydian": "lyd",
    "mixolydian": "mix",
    "locrian": "loc",
}
# Sharps (+) or flats (-) of the major key on each tonic pitch class (F# rather than Gb, Db rather than C#).
_MAJOR_SHARPS = {0: 0, 7: 1, 2: 2, 9: 3, 4: 4, 11: 5, 6: 6, 1: -5, 8: -4, 3: -3, 10: -2, 5: -1}
LETTERS = "CDEFGAB"
LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARP_ORDER = "FCGDAEB"


# ----------------------------------------------------------------------------------------------
# Names, scales, key signatures
# ----------------------------------------------------------------------------------------------


def parse_mode(name: str) -> str:
    """A mode name or ABC abbreviation ('Dorian', 'dor', 'm', 'aeolian', '') -> canonical name in MODE_STEPS."""
    if not isinstance(name, str):
        raise NotationError(f"A mode name must be text, got {type(name).__name__}")
    key = name.strip().lower()
    mode = _ALIASES.get(key) or (_ALIASES.get(key[:3]) if len(key) >= 3 else None)
    if mode is None:
        raise NotationError(
            f"Unknown mode {name!r}: expected one of {', '.join(MODE_STEPS)} "
            "(or ionian, aeolian, or an ABC abbreviation such as dor, mix, m)"
        )
    return mode


def scale_pitch_classes(tonic: int, mode: str) -> tuple[int, ...]:
    """Pitch classes of the scale, degree 1 first: (2, 'dorian') -> (2, 4, 5, 7, 9, 11, 0)."""
    mode = parse_mode(mode)
    return tuple((int(tonic) + o) % 12 for o in MODE_STEPS[mode])


def key_signature(tonic: int, mode: str) -> int:
    """Sharps (>0) or flats (<0) of the key signature: (9, 'dorian') -> 1 (A dorian has F#)."""
    mode = parse_mode(mode)
    return _MAJOR_SHARPS[(int(tonic) - _MODE_DEGREE_OF_MAJOR[mode]) % 12]


def signature_alterations(sharps: int) -> dict[str, int]:
    """Letter -> alteration (+1 sharp, -1 flat, 0) under a key signature of `sharps`."""
    alter = {c: 0 for c in LETTERS}
    if sharps > 0:
        for c in _SHARP_ORDER[:sharps]:
            alter[c] = 1
    elif sharps < 0:
        for c in reversed(_SHARP_ORDER[sharps:]):
            alter[c] = -1
    return alter


def spell_pitch_class(pc: int, sharps: int) -> tuple[str, int]:
    """(letter, alteration) for a pitch class in a key with `sharps`: scale notes as the signature
    writes them, other notes natural where possible, else the spelling nearest the key on the line of
    fifths (B flat and E flat in C major, F sharp and C sharp; G sharp on a tie), as a reader expects:
    a typed B♭ in a C major tune is not an A♯."""
    sig = signature_alterations(sharps)
    cands = [(c, a) for c in LETTERS for a in (-1, 0, 1) if (LETTER_PC[c] + a) % 12 == pc % 12]
    in_key = [(c, a) for c, a in cands if sig[c] == a]
    if in_key:
        return in_key[0]
    centre = sharps + 2  # the key's notes lie at sharps - 1 .. sharps + 5 on the line of fifths

    def fifths(ca: tuple[str, int]) -> int:
        return _SHARP_ORDER.index(ca[0]) - 1 + 7 * ca[1]

    return min(cands, key=lambda ca: (abs(ca[1]), abs(fifths(ca) - centre), ca[1] < 0))


def tonic_name(tonic: int, mode: str) -> str:
    """The tonic's letter name as the key signature spells it: (10, 'major') -> 'Bb', (6, 'minor') -> 'F#'."""
    letter, alter = spell_pitch_class(tonic, key_signature(tonic, mode))
    return letter + {-1: "b", 0: "", 1: "#"}[alter]


def key_name(tonic: int, mode: str, abc: bool = False) -> str:
    """'A dorian' (or the ABC `K:` value 'Ador' with abc=True)."""
    mode = parse_mode(mode)
    name = tonic_name(tonic, mode)
    return name + ABC_MODE_SUFFIX[mode] if abc else f"{name} {mode}"


_ABC_KEY_RE = re.compile(r"^\s*(?P<tonic>[A-Ga-g])(?P<acc>[#b]?)\s*(?P<mode>[A-Za-z]*)\s*(?P<rest>.*)$")


def parse_abc_key(text: str) -> tuple[int, str]:
    """An ABC `K:` value ('Ador', 'Gmix', 'Em', 'D', 'F# Minor', 'Bb dorian % comment') -> (tonic, mode).

    Key signatures without a tonic ('none', 'HP', explicit accidental lists) raise NotationError.
    """
    if not isinstance(text, str):
        raise NotationError("An ABC key must be text")
    body = text.split("%", 1)[0].strip()
    if body.upper().startswith("K:"):
        body = body[2:].strip()
    m = _ABC_KEY_RE.match(body)
    if m is None or (m["rest"] and not m["rest"].lower().startswith(("clef=", "middle=", "transpose="))):
        raise NotationError(
            f"Can't read ABC key {text!r}: expected a tonic A-G, optional # or b, "
            "and an optional mode (m, dor, mix, ...)"
        )
    mode = parse_mode(m["mode"])
    tonic = (LETTER_PC[m["tonic"].upper()] + {"#": 1, "b": -1, "": 0}[m["acc"]]) % 12
    return tonic, mode


# ----------------------------------------------------------------------------------------------
# Moving a melody: transposition and change of mode
# ----------------------------------------------------------------------------------------------


def with_key(melody: Melody, tonic: int, mode: str, notes: list[Note] | None = None) -> Melody:
    """A copy of `melody` with key (tonic, mode) (and `notes` when given); the mode is one of MODES, or a
    church mode outside them mapped to the nearest (nearest_folk_mode)."""
    notes = melody.notes if notes is None else notes
    return replace(melody, notes=notes, key=(int(tonic) % 12, nearest_folk_mode(mode)))


def nearest_folk_mode(mode: str) -> str:
    """``mode`` when a Melody can carry it, else the folk mode that differs from it in one degree and
    shares its third: phrygian and locrian -> minor, lydian -> major."""
    mode = parse_mode(mode)
    if mode in MODES:
        return mode
    return {"phrygian": "minor", "locrian": "minor", "lydian": "major"}[mode]


def _where(melody: Melody, index: int) -> str:
    n = melody.notes[index]
    bar, beat = divmod(n.start, melody.bar_ticks)
    return f"note {index + 1} ({note_name(n.pitch)}, bar {bar + 1}, beat {beat / TICKS_PER_QUARTER + 1:g})"


def check_range(melody: Melody, pitches: Sequence[int], low: int, high: int, action: str) -> None:
    """PitchRangeError naming the first note whose new pitch falls outside low..high."""
    for i, p in enumerate(pitches):
        if not low <= p <= high:
            side = f"above the highest allowed pitch {high}" if p > high else f"below the lowest allowed pitch {low}"
            raise PitchRangeError(f"{action} moves {_where(melody, i)} to MIDI pitch {p}, {side}")


def transpose(melody: Melody, semitones: int, low: int = 0, high: int = 127) -> Melody:
    """Every pitch and the tonic moved by `semitones`; PitchRangeError if a note leaves low..high."""
    if isinstance(semitones, bool) or not isinstance(semitones, int):
        raise NotationError(f"Transposition must be a whole number of semitones, got {semitones!r}")
    pitches = [n.pitch + semitones for n in melody.notes]
    check_range(melody, pitches, low, high, f"Transposing by {semitones:+d} semitones")
    notes = [Note(p, n.start, n.duration) for p, n in zip(pitches, melody.notes, strict=True)]
    return with_key(melody, melody.key[0] + semitones, melody.key[1], notes)


def map_pitch_class(offset: int, source: str, target: str) -> int:
    """Offset above the tonic (0-11) in mode `source` -> offset of the same scale degree in `target`
    (-1..12: the octave of the tonic it was measured from is kept).

    A chromatic note keeps its distance from its nearest degree; when both neighbours are equally
    near, the one whose offset changes least between the modes wins, then the lower one.
    """
    src, dst = MODE_STEPS[parse_mode(source)], MODE_STEPS[parse_mode(target)]
    offset %= 12
    best = None
    for d in range(7):
        for octave in (-12, 0, 12):
            dist = offset - (src[d] + octave)
            rank = (abs(dist), abs(dst[d] - src[d]), dist < 0)
            if best is None or rank < best[0]:
                best = (rank, dst[d] + octave + dist)
    return best[1]


def to_key(melody: Melody, tonic: int, mode: str | None = None) -> Melody:
    """The melody in key (tonic, mode): moved by the smallest interval (-5..+6) to ``tonic``, and, when
    the mode changes, mapped by scale degree (major -> minor lowers the 3rd, 6th and 7th), so the notes
    are in the key the label names. PitchRangeError if a note would leave the tokenizer's range."""
    return map_to_mode(melody, tonic, melody.key[1] if mode is None else mode, *PITCH_RANGE)


def map_to_mode(melody: Melody, tonic: int, mode: str, low: int = 0, high: int = 127) -> Melody:
    """The melody moved to key (tonic, mode) by scale degree: each degree of the melody's key lands
    on the same degree of the new key (major -> minor lowers the 3rd, 6th and 7th), chromatic notes
    keep their offset from the nearest degree, and the tonic moves by the smallest interval (-5..+6,
    the other direction if that leaves low..high). PitchRangeError if a note still falls outside.
    """
    src_tonic, src_mode = melody.key[0], parse_mode(melody.key[1])
    mode = parse_mode(mode)
    shift = (int(tonic) - src_tonic) % 12
    shift = shift - 12 if shift > 6 else shift
    offsets = []
    for n in melody.notes:
        rel = (n.pitch - src_tonic) % 12
        offsets.append(n.pitch + map_pitch_class(rel, src_mode, mode) - rel)
    pitches = [p + shift for p in offsets]
    if any(not low <= p <= high for p in pitches):
        alt = shift - 12 if shift > 0 else shift + 12
        if all(low <= p + alt <= high for p in offsets):
            pitches = [p + alt for p in offsets]
    check_range(melody, pitches, low, high, f"Moving to {key_name(tonic, mode)}")
    notes = [Note(p, n.start, n.duration) for p, n in zip(pitches, melody.notes, strict=True)]
    return with_key(melody, tonic, mode, notes)


# ----------------------------------------------------------------------------------------------
# Key and mode estimation
# ----------------------------------------------------------------------------------------------

# Krumhansl-Kessler probe-tone ratings by scale degree (1..7) and for notes outside the scale;
# a mode with a major third takes the major ratings, one with a minor third the minor ratings.
_KK_MAJOR_DEGREES = (6.35, 3.48, 4.38, 4.09, 5.19, 3.66, 2.88)
_KK_MINOR_DEGREES = (6.33, 3.52, 5.38, 3.53, 4.75, 3.98, 3.34)
_KK_CHROMATIC = 2.4
# Score terms beside the profile correlation: the share of the tune's duration inside the scale
# (a tune keeps to its key signature), bonuses that tell relative modes apart (they share their
# notes: folk tunes end on the tonic far more often than anywhere else, and start on tonic or
# fifth), and a prior (major is commonest). Weights chosen on a development sample (seed 1 of
# scripts/key_accuracy.py), reported on another (seed 0).
FINAL_BONUS = 0.15
FIRST_BONUS = 0.05
SCALE_WEIGHT = 1.0
# A prompt of at most SHORT_PROMPT_NOTES notes is the opening of a tune, not a whole one: it need not end
# on its tonic, so the final-note bonus is left out; instead the keys whose tonic triad it outlines (the
# tonic and at least one of its third and fifth) and on whose stable degrees (1, 3, 5) it starts and stops
# are preferred. Without these, "E4 D4 C4 D4 E4 E4 E4*2" (Mary Had a Little Lamb) read as E minor.
# Weights chosen on typed openings (tests/data/typed_openings.tsv: 14/28 -> 23/28 exact); whole tunes
# are longer and unaffected (docs/key-estimate.md).
SHORT_PROMPT_NOTES = 32
TRIAD_BONUS = 1.0
STABLE_BONUS = 0.2
MODE_PRIOR = {
    "major": 0.0,
    "minor": -0.05,
    "dorian": -0.1,
    "mixolydian": -0.1,
    "lydian": -0.15,
    "phrygian": -0.15,
    "locrian": -0.25,
}


def mode_profile(mode: str) -> list[float]:
    """Expected weight of each offset 0-11 above the tonic for `mode` (degree ratings on its scale)."""
    offsets = MODE_STEPS[parse_mode(mode)]
    ratings = _KK_MAJOR_DEGREES if offsets[2] == 4 else _KK_MINOR_DEGREES
    prof = [_KK_CHROMATIC] * 12
    for o, r in zip(offsets, ratings, strict=True):
        prof[o] = r
    return prof


def _pearson(x: Sequence[float], y: Sequence[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


def key_scores(
    pitches: Sequence[int], durations: Sequence[float] | None = None, modes: Sequence[str] = FOLK_MODES
) -> list[tuple[float, int, str]]:
    """(score, tonic, mode) for every tonic and mode, best first.

    score = correlation of the duration-weighted pitch-class histogram with the mode's profile on
    that tonic + SCALE_WEIGHT x the share of duration inside the scale + FIRST_BONUS when the first
    note is the tonic or its fifth + the mode's prior; + FINAL_BONUS when the last note is the tonic,
    or, for a short prompt (SHORT_PROMPT_NOTES), the opening terms (tonic triad outlined, stable ends).
    """
    if durations is not None and len(durations) != len(pitches):
        raise NotationError("key_scores: pitches and durations differ in length")
    hist = [0.0] * 12
    for i, p in enumerate(pitches):
        hist[int(p) % 12] += float(durations[i]) if durations is not None else 1.0
    first, last = int(pitches[0]) % 12, int(pitches[-1]) % 12
    total, short = sum(hist) or 1.0, len(pitches) <= SHORT_PROMPT_NOTES
    out = []
    for mode in dict.fromkeys(parse_mode(m) for m in modes):
        prof = mode_profile(mode)
        for t in range(12):
            s = _pearson(hist, [prof[(pc - t) % 12] for pc in range(12)]) + MODE_PRIOR[mode]
            s += SCALE_WEIGHT * sum(hist[(t + o) % 12] for o in MODE_STEPS[mode]) / total
            s += FIRST_BONUS * (first in (t, (t + 7) % 12))
            s += _opening_terms(t, mode, hist, first, last) if short else FINAL_BONUS * (last == t)
            out.append((s, t, mode))
    out.sort(key=lambda x: (-x[0], x[2] != "major", x[1]))
    return out


def _opening_terms(tonic: int, mode: str, hist: Sequence[float], first: int, last: int) -> float:
    """A short prompt's score terms for (tonic, mode): how much of the tonic triad it outlines, and whether
    its first and last notes are stable degrees."""
    triad = {tonic, (tonic + MODE_STEPS[mode][2]) % 12, (tonic + 7) % 12}
    played = sum(hist[pc] > 0 for pc in triad)
    outline = (played - 1) / 2 if hist[tonic] > 0 else 0.0
    return TRIAD_BONUS * outline + STABLE_BONUS * ((first in triad) + (last in triad)) / 2


def estimate_key(
    pitches: Sequence[int], durations: Sequence[float] | None = None, modes: Sequence[str] = FOLK_MODES
) -> tuple[int, str]:
    """Most likely (tonic, mode) among `modes` for a tune's pitches (durations weight them);
    (0, 'major') for no notes."""
    if len(pitches) == 0:
        return (0, "major")
    _, tonic, mode = key_scores(pitches, durations, modes)[0]
    return tonic, mode


def estimate_key_in_signature(
    pitches: Sequence[int], durations: Sequence[float] | None, sharps: int, modes: Sequence[str] = FOLK_MODES
) -> tuple[int, str]:
    """Most likely (tonic, mode) among the keys written with ``sharps`` (negative: flats): the notes decide
    between the relative modes a key signature leaves open (G major, E minor, A dorian, D mixolydian for
    one sharp). With no key of ``modes`` on that signature, or no notes, as :func:`estimate_key`."""
    if len(pitches) == 0:
        return estimate_key(pitches, durations, modes)
    fitting = [(t, m) for _, t, m in key_scores(pitches, durations, modes) if key_signature(t, m) == sharps]
    return fitting[0] if fitting else estimate_key(pitches, durations, modes)


def estimate_melody_key(melody: Melody, modes: Sequence[str] = FOLK_MODES) -> tuple[int, str]:
    """estimate_key on a Melody's notes, weighted by their durations."""
    return estimate_key(melody.pitches, [n.duration for n in melody.notes], modes)
