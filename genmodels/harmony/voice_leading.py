"""Voice-leading faults of a four-part chorale, counted the same way for Bach and for the models.

Every rule is one function that returns the faults it finds (:class:`Fault`: step, rule, voices), so
the app can point at them and :func:`fault_report` can count them. The rules look at *onset steps*:
the steps where at least one voice starts a note; at each one they read the pitch every voice is
sounding (a rest sounds nothing).

- **Parallel fifths / octaves** (:func:`parallel_fifths`, :func:`parallel_octaves`): for two
  consecutive onset steps and two voices sounding at both, the interval between the voices is a
  perfect fifth (7 semitones modulo 12: a twelfth counts) at both steps, or a unison/octave (0 modulo
  12) at both, and both voices move in the same direction (both up or both down). Oblique motion
  (one voice holds or repeats its pitch) and contrary motion are not faults. Counted once per voice
  pair and step.
- **Voice crossing** (:func:`voice_crossings`): at an onset step, a voice sounds strictly above the
  voice written above it (alto over soprano, tenor over alto, bass over tenor). Counted once per
  adjacent pair and onset step.
- **Out of range** (:func:`out_of_range`): a note of a voice outside ``grid.RANGES`` for that voice;
  counted once per note.
- **Spacing** (:func:`wide_spacing`): at an onset step, more than an octave (12 semitones) between
  soprano and alto, or between alto and tenor. Counted once per pair and onset step. (Bass–tenor
  distance is free, as in the textbooks.)

Rates are per 100 beats of the chorale (``Chorale.beats``; a 4/4 bar has 4 beats, a 6/8 bar 2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from genmodels.harmony.grid import RANGES, VOICES, Chorale


@dataclass(frozen=True)
class Fault:
    """One voice-leading fault: the step where it shows, the rule's name and the voices involved."""

    step: int
    rule: str
    voices: tuple[int, ...]


def onset_steps(chorale: Chorale) -> list[int]:
    """The steps where at least one voice starts a note."""
    return [t for t in range(chorale.steps) if any(chorale.voices[v][t] >= 0 for v in range(4))]


def _snapshots(chorale: Chorale) -> list[tuple[int, list[int | None]]]:
    """(step, the pitch each voice sounds) at every onset step."""
    rows = [chorale.sounding(v) for v in range(4)]
    return [(t, [r[t] for r in rows]) for t in onset_steps(chorale)]


def _parallels(chorale: Chorale, interval: int, rule: str) -> list[Fault]:
    faults = []
    snaps = _snapshots(chorale)
    for (_, before), (t, after) in zip(snaps, snaps[1:], strict=False):
        for hi in range(4):
            for lo in range(hi + 1, 4):
                a0, b0, a1, b1 = before[hi], before[lo], after[hi], after[lo]
                if None in (a0, b0, a1, b1):
                    continue
                same_interval = abs(a0 - b0) % 12 == interval and abs(a1 - b1) % 12 == interval
                same_direction = (a1 - a0) * (b1 - b0) > 0
                if same_interval and same_direction:
                    faults.append(Fault(t, rule, (hi, lo)))
    return faults


def parallel_fifths(chorale: Chorale) -> list[Fault]:
    """Perfect fifths (or twelfths) at two consecutive onset steps, both voices moving the same way."""
    return _parallels(chorale, 7, "parallel_fifths")


def parallel_octaves(chorale: Chorale) -> list[Fault]:
    """Unisons or octaves at two consecutive onset steps, both voices moving the same way."""
    return _parallels(chorale, 0, "parallel_octaves")


def voice_crossings(chorale: Chorale) -> list[Fault]:
    """At an onset step, a voice strictly above the voice written above it."""
    faults = []
    for t, pitches in _snapshots(chorale):
        for hi in range(3):
            a, b = pitches[hi], pitches[hi + 1]
            if a is not None and b is not None and b > a:
                faults.append(Fault(t, "voice_crossing", (hi, hi + 1)))
    return faults


def out_of_range(chorale: Chorale) -> list[Fault]:
    """Every note outside its voice's range (``grid.RANGES``), at the note's first step."""
    faults = []
    for v, name in enumerate(VOICES):
        lo, hi = RANGES[name]
        faults += [Fault(n.start, "out_of_range", (v,)) for n in chorale.notes(v) if not lo <= n.pitch <= hi]
    return sorted(faults, key=lambda f: (f.step, f.voices))


def wide_spacing(chorale: Chorale) -> list[Fault]:
    """At an onset step, more than an octave between soprano and alto, or alto and tenor."""
    faults = []
    for t, pitches in _snapshots(chorale):
        for hi in (0, 1):
            a, b = pitches[hi], pitches[hi + 1]
            if a is not None and b is not None and a - b > 12:
                faults.append(Fault(t, "spacing", (hi, hi + 1)))
    return faults


RULES: dict[str, Callable[[Chorale], list[Fault]]] = {
    "parallel_fifths": parallel_fifths,
    "parallel_octaves": parallel_octaves,
    "voice_crossing": voice_crossings,
    "out_of_range": out_of_range,
    "spacing": wide_spacing,
}


def beat_count(chorale: Chorale) -> float:
    """Beats in the chorale (``Chorale.beat_count``; a partial bar counts its share of the bar's beats)."""
    return chorale.beat_count


def all_faults(chorale: Chorale) -> list[Fault]:
    """Every fault of every rule, in step order."""
    faults = [f for rule in RULES.values() for f in rule(chorale)]
    return sorted(faults, key=lambda f: f.step)


def fault_counts(chorale: Chorale) -> dict[str, int]:
    """Faults per rule (the keys of ``RULES``) and their ``total``."""
    counts = {name: len(rule(chorale)) for name, rule in RULES.items()}
    counts["total"] = sum(counts.values())
    return counts


def _report(counts: dict[str, int], beats: float) -> dict:
    rate = (lambda n: round(100.0 * n / beats, 3)) if beats else (lambda n: 0.0)
    report: dict = {name: {"count": n, "per_100_beats": rate(n)} for name, n in counts.items()}
    report["beats"] = beats
    return report


def fault_report(chorale: Chorale) -> dict:
    """Per rule and in total: ``{"parallel_fifths": {"count": 2, "per_100_beats": 5.0}, ..., "total": ...,
    "beats": 40.0}``."""
    return _report(fault_counts(chorale), beat_count(chorale))


def fault_report_many(chorales: Iterable[Chorale]) -> dict:
    """:func:`fault_report` over many chorales: counts summed, rates per 100 beats of them all."""
    totals = dict.fromkeys([*RULES, "total"], 0)
    beats = 0.0
    for c in chorales:
        for name, n in fault_counts(c).items():
            totals[name] += n
        beats += beat_count(c)
    return _report(totals, beats)
