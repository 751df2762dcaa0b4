"""Musical statistics of melodies: do generated tunes look like the held-out tunes?

Every statistic takes a :class:`genmodels.music.Melody` (notes on the 12-ticks-per-quarter grid, bar
grid anchored at tick 0) and counts notes, not durations, unless it says otherwise. Statistics that
are undefined for a melody without notes return ``nan`` and are left out of means.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from genmodels.core.errors import SettingsError

MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)  # natural minor
SCALES: dict[tuple[int, str], frozenset[int]] = {
    (t, mode): frozenset((t + s) % 12 for s in steps)
    for mode, steps in (("major", MAJOR_STEPS), ("minor", MINOR_STEPS))
    for t in range(12)
}
ONSET_GRID = (2, 3)  # onsets on multiples of 2 ticks (sixteenth triplets) or 3 ticks (sixteenths)


def scale_consistency(m) -> float:
    """Largest fraction of notes whose pitch class lies in one of the 24 major / natural-minor scales
    (as in Mogren's C-RNN-GAN and muspy's ``scale_consistency``); nan without notes."""
    if not m.notes:
        return math.nan
    pcs = Counter(n.pitch % 12 for n in m.notes)
    return max(sum(c for pc, c in pcs.items() if pc in scale) for scale in SCALES.values()) / len(m.notes)


def pitch_class_histogram(m) -> np.ndarray:
    """Fraction of notes on each of the 12 pitch classes (zeros without notes)."""
    h = np.zeros(12)
    for n in m.notes:
        h[n.pitch % 12] += 1
    return h / h.sum() if h.sum() else h


def pitch_class_entropy(m) -> float:
    """Shannon entropy in bits of the pitch-class histogram (0 for one pitch class, log2 12 at most)."""
    if not m.notes:
        return math.nan
    p = pitch_class_histogram(m)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0


def pitch_range(m) -> int:
    """Highest minus lowest MIDI pitch, in semitones (0 without notes)."""
    if not m.notes:
        return 0
    ps = [n.pitch for n in m.notes]
    return max(ps) - min(ps)


def bar_status(m, n_bars: int | None = None, grid: Sequence[int] = ONSET_GRID) -> list[bool]:
    """Whether each bar from the first note's bar to the final bar is complete (see bar_completeness)."""
    bt = m.bar_ticks
    notes = sorted(m.notes, key=lambda n: (n.start, n.start + n.duration))
    if not notes:
        return []
    first = notes[0].start // bt
    final = (max(n.start for n in notes) // bt) if n_bars is None else int(n_bars) - 1
    if final < first:
        return [False]
    ok = [True] * (final - first + 1)

    def spoil(bar_lo: int, bar_hi: int) -> None:
        for b in range(max(bar_lo, first), min(bar_hi, final) + 1):
            ok[b - first] = False

    for i, n in enumerate(notes):
        s, d = n.start, n.duration
        if not (isinstance(s, (int, np.integer)) and isinstance(d, (int, np.integer))) or d <= 0 or s < 0:
            spoil(int(s // bt), int(s // bt))
            continue
        if not any(s % g == 0 for g in grid):  # off the notated grid (quantisation debris)
            spoil(s // bt, s // bt)
        if s >= (final + 1) * bt:  # a note after the final bar (only possible with n_bars)
            spoil(final, final)
        if s + d > (final + 1) * bt:  # rings past the final bar line
            spoil(final, final)
        if i + 1 < len(notes) and notes[i + 1].start < s + d:  # overlaps the next note
            nxt = notes[i + 1]
            spoil(nxt.start // bt, (min(s + d, nxt.start + nxt.duration) - 1) // bt)
    return ok


def bar_completeness(m, n_bars: int | None = None, grid: Sequence[int] = ONSET_GRID) -> float:
    """Fraction of complete bars, from the bar of the first onset to the final bar.

    A monophonic melody on the grid states its rests implicitly (the gaps), so a bar is *complete* —
    its ticks are accounted for exactly once by notes and rests, summing to ``bar_ticks`` — when:

    * no note sounding in it overlaps another note (two notes at once over-fill the bar);
    * every onset in it lies on the notated grid: a multiple of 2 or 3 ticks (sixteenth-triplet or
      sixteenth positions; ticks 1, 5, 7, 11 of a quarter are quantisation debris) and every note has a
      positive integer duration;
    * for the final bar: no note rings past its closing bar line. The final bar is the bar of the
      last onset, or bar ``n_bars - 1`` when the tune's length is given (then notes starting after it
      also spoil it). A note tied across an inner bar line is fine.

    Gaps inside or at the end of a bar are rests and keep it complete. nan without notes.
    """
    st = bar_status(m, n_bars=n_bars, grid=grid)
    return sum(st) / len(st) if st else math.nan


def duration_histogram(m) -> dict[int, float]:
    """Fraction of notes with each duration in ticks (12 per quarter), sorted by duration."""
    c = Counter(int(n.duration) for n in m.notes)
    total = sum(c.values())
    return {d: c[d] / total for d in sorted(c)}


# --------------------------------------------------------------------------------------------
# Novelty
# --------------------------------------------------------------------------------------------

_BASE = np.uint64(0x100000001B3)


def interval_duration_codes(m) -> np.ndarray:
    """One code per note after the first: (interval from the previous note, duration) packed into an
    integer, so runs compare transposition-invariantly and rests between notes are ignored."""
    notes = m.notes
    if len(notes) < 2:
        return np.zeros(0, dtype=np.uint64)
    p = np.array([n.pitch for n in notes], dtype=np.int64)
    d = np.array([n.duration for n in notes], dtype=np.int64)[1:]
    iv = np.diff(p) + 256
    return (((iv << 24) | np.clip(d, 0, (1 << 24) - 1)) * 0x9E3779B1 + 1).astype(np.uint64)


def _ngram_hashes(codes: np.ndarray, max_n: int) -> list[np.ndarray]:
    """hashes[n] = 64-bit rolling hashes of all length-n runs of codes (n = 1..max_n)."""
    out = [np.zeros(0, dtype=np.uint64)]
    cur = codes.copy()
    with np.errstate(over="ignore"):
        for n in range(1, max_n + 1):
            if n > 1:
                cur = cur[:-1] * _BASE + codes[n - 1 :]
            out.append(cur)
            if len(cur) == 0:
                out.extend([cur] * (max_n - n))
                break
    return out


class NoveltyIndex:
    """Hashes of every run of 1..max_n consecutive (interval, duration) pairs of the training tunes,
    one sorted array per run length, so :func:`longest_shared_run` needs only binary searches."""

    def __init__(self, melodies: Iterable, max_n: int = 16) -> None:
        if not isinstance(max_n, int) or max_n < 1:
            raise SettingsError(f"max_n must be a positive integer, got {max_n!r}")
        self.max_n = max_n
        per_n: list[list[np.ndarray]] = [[] for _ in range(max_n + 1)]
        self.n_tunes = 0
        for m in melodies:
            self.n_tunes += 1
            for n, h in enumerate(_ngram_hashes(interval_duration_codes(m), max_n)):
                if n and len(h):
                    per_n[n].append(h)
        self.tables = [np.unique(np.concatenate(hs)) if hs else np.zeros(0, np.uint64) for hs in per_n]

    def contains_any(self, hashes: np.ndarray, n: int) -> bool:
        t = self.tables[n]
        if len(t) == 0 or len(hashes) == 0:
            return False
        j = np.minimum(np.searchsorted(t, hashes), len(t) - 1)
        return bool((t[j] == hashes).any())


def longest_shared_run(m, corpus_index: NoveltyIndex) -> int:
    """Length of the longest run of consecutive (interval, duration) pairs of ``m`` that also occurs in
    a training tune of ``corpus_index`` (k pairs = k+1 notes; capped at the index's max_n)."""
    best = 0
    for n, h in enumerate(_ngram_hashes(interval_duration_codes(m), corpus_index.max_n)):
        if n == 0:
            continue
        if not corpus_index.contains_any(h, n):
            break  # runs are nested: no shared run of length n means none longer either
        best = n
    return best


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _nanmean(xs: list[float]) -> float:
    xs = [x for x in xs if not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else math.nan


def summarize(
    melodies: Sequence, reference_range: tuple[int, int] | None = None, index: NoveltyIndex | None = None
) -> dict:
    """Means of each statistic over ``melodies``, plus pooled figures: lowest/highest pitch, the fraction
    of complete bars, the pooled duration histogram and the fraction of notes inside
    ``reference_range`` (default: these melodies' own range). With ``index``, novelty too."""
    melodies = list(melodies)
    notes = [n for m in melodies for n in m.notes]
    pitches = [n.pitch for n in notes]
    lo, hi = (min(pitches), max(pitches)) if pitches else (0, 0)
    ref = reference_range if reference_range is not None else (lo, hi)
    bars = [b for m in melodies for b in bar_status(m)]
    durs = Counter(int(n.duration) for n in notes)
    out = {
        "tunes": len(melodies),
        "notes": len(notes),
        "notes_per_tune": len(notes) / len(melodies) if melodies else math.nan,
        "scale_consistency": _nanmean([scale_consistency(m) for m in melodies]),
        "pitch_class_entropy": _nanmean([pitch_class_entropy(m) for m in melodies]),
        "pitch_range": _nanmean([float(pitch_range(m)) for m in melodies if m.notes]),
        "bar_completeness": _nanmean([bar_completeness(m) for m in melodies]),
        "complete_bar_fraction": sum(bars) / len(bars) if bars else math.nan,
        "mean_duration": float(np.mean([n.duration for n in notes])) if notes else math.nan,
        "min_pitch": lo,
        "max_pitch": hi,
        "in_range_fraction": (sum(ref[0] <= p <= ref[1] for p in pitches) / len(pitches)) if pitches else math.nan,
        "duration_histogram": {d: c / len(notes) for d, c in sorted(durs.items())},
    }
    if index is not None:
        runs = [longest_shared_run(m, index) for m in melodies]
        out["longest_shared_run"] = float(np.mean(runs)) if runs else math.nan
        out["longest_shared_run_max"] = max(runs) if runs else 0
    return out


def total_variation(p: dict, q: dict) -> float:
    """Total variation distance between two histograms given as {value: probability}."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def compare(
    generated: Sequence, held_out: Sequence, index: NoveltyIndex | None = None, top_durations: int = 6
) -> list[dict]:
    """Side-by-side rows {statistic, generated, held_out, difference (generated - held_out)}; pitch
    coverage is measured against the held-out pitch range. Duration rows give the share of the
    held-out set's most common durations, and one row the total-variation distance between the
    two duration distributions (held-out = 0 by definition)."""
    h = summarize(held_out, index=index)
    g = summarize(generated, reference_range=(h["min_pitch"], h["max_pitch"]), index=index)
    h["in_range_fraction"] = 1.0 if h["notes"] else math.nan
    keys = [
        "tunes",
        "notes_per_tune",
        "scale_consistency",
        "pitch_class_entropy",
        "pitch_range",
        "min_pitch",
        "max_pitch",
        "in_range_fraction",
        "bar_completeness",
        "complete_bar_fraction",
        "mean_duration",
    ]
    if index is not None:
        keys += ["longest_shared_run", "longest_shared_run_max"]
    rows = [{"statistic": k, "generated": g[k], "held_out": h[k], "difference": g[k] - h[k]} for k in keys]
    common = sorted(h["duration_histogram"], key=lambda d: -h["duration_histogram"][d])[:top_durations]
    for d in common:
        gv, hv = g["duration_histogram"].get(d, 0.0), h["duration_histogram"][d]
        rows.append({"statistic": f"share of {d}-tick notes", "generated": gv, "held_out": hv, "difference": gv - hv})
    tv = total_variation(g["duration_histogram"], h["duration_histogram"])
    rows.append(
        {"statistic": "duration distribution distance (TV)", "generated": tv, "held_out": 0.0, "difference": tv}
    )
    return rows
