"""Two harmonisers without neural networks, the floors the recurrent harmonisers must beat.

Both work key-relative (every pitch class counted from the chorale's tonic, major and minor apart)
on *segments*: a chorale cut at every beat start (``Chorale.beats``; a pickup that starts
between beats makes one more segment at step 0). Each segment carries one chord label: root (relative
to the tonic) and quality as named by :func:`genmodels.harmony.chords.chord_of` at the segment's first
step, or "no chord". Training reads Bach's labels off the four voices.

- :class:`BeatLookup`: P(chord | the segment's soprano pitch classes, its beat in the bar, a fermata),
  a table of training counts with Witten-Bell back-off to coarser keys (the set of pitch classes
  alone, then the pitch class sounding at the beat, then the chord frequencies of the mode). It
  harmonises with the most frequent chord of each segment, independently.
- :class:`ChordHMM`: a hidden Markov model over the chord labels: transitions between consecutive
  segments, each segment emitting its soprano pitch classes (the pitch sounding at the segment start,
  then each new note, independently given the chord) and its fermata flag. It harmonises with the
  Viterbi path.

A chord becomes notes through :class:`Voicer`: alto/tenor/bass voicings of that quality seen in
training, transposed to the chord's root, kept in range and under the soprano; the one with the
smallest total motion from the previous voicing wins, with parallel fifths and octaves costing
more and frequent voicings less (``PARALLEL_COST``, ``FREQ_WEIGHT``; the first segment takes the most
frequent voicing). Voices strike at each segment start and tie a pitch that stays.

**Likelihood on the models' tokens.** Both baselines give the total NLL of every alto, tenor and
bass grid token (a pitch in ``LOW..HIGH`` (pitches outside folded by octaves, as the models'
tokenizer does), HOLD or REST, at every step) given the whole soprano: :class:`LowerVoiceModel` is
a proper distribution over those tokens at each step, given the segment's chord label and all that
came before (steps in order, alto then tenor then bass within a step):

    P(token) = P(type | voice, metrical position, the voice's state, onsets in the soprano and the
                      voice above, whether a held note fits the chord)
               × [type is a note] P(pitch | chord, previous pitch, voice above, register)

where type is note/HOLD/REST, the voice's state is "rest" or the age of the sounding note, and the
pitch distribution is a product of four count tables (pitch class relative to the chord root by
quality and voice; interval from the voice's previous pitch; distance below the voice above; the
voice's register), each raised to a weight set on the valid split, renormalised over the 46
pitches. The chord labels are summed out: for the lookup each segment independently,
``log P(lower | S) = Σ_seg log Σ_c P(c | seg) P(seg's tokens | c, past)``; for the HMM
``P(lower | S) = P(S, lower) / P(S)``, both by the forward algorithm. Divide by the number
of lower-voice note onsets for **nats per lower-voice note**, the measure the models report.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from genmodels.core.errors import DataError, GenmodelsError
from genmodels.core.paths import repo_path
from genmodels.harmony.adapt import soprano_from_melody
from genmodels.harmony.chords import QUALITIES, chord_of
from genmodels.harmony.grid import HIGH, HOLD, LOW, RANGES, REST, VOICES, Chorale, fold
from genmodels.harmony.metrics import harmony_report
from genmodels.harmony.voice_leading import fault_report_many
from genmodels.learn.chorales import load_split
from genmodels.learn.melody_data import held_out_tunes

PITCHES = np.arange(LOW, HIGH + 1)
LABELS: list[tuple[int, str] | None] = [None] + [(r, q) for q in QUALITIES for r in range(12)]
LABEL_INDEX = {lab: i for i, lab in enumerate(LABELS)}
N_LABELS = len(LABELS)
QUAL_OF = np.array([0] + [1 + k for k in range(len(QUALITIES)) for _ in range(12)])  # 0: no chord
ROOT_OF = np.array([0] + [r for _ in QUALITIES for r in range(12)])
# MEMBER[c, k]: key-relative pitch class k belongs to chord label c (never for "no chord")
MEMBER = np.zeros((N_LABELS, 12), dtype=bool)
for _i, _lab in enumerate(LABELS[1:], 1):
    for _iv in QUALITIES[_lab[1]][1]:
        MEMBER[_i, (_lab[0] + _iv) % 12] = True
NOTE, HELD, RESTING = 0, 1, 2  # token types


def mode_index(chorale: Chorale) -> int:
    return 1 if chorale.mode == "minor" else 0


@dataclass(frozen=True)
class Segment:
    """A beat of the chorale: steps ``start..end-1``; the soprano's key-relative pitch classes (the one
    sounding at ``start``, then each new note), the beat's index in its bar, a fermata in it."""

    start: int
    end: int
    events: tuple[int, ...]
    beat: int
    fermata: bool


def segments(chorale: Chorale) -> list[Segment]:
    """The chorale cut at every beat start (and at step 0)."""
    cuts = [t for t in range(chorale.steps) if t == 0 or chorale.is_beat(t)]
    sop, row = chorale.sounding(0), chorale.voices[0]
    fermatas = set(chorale.fermatas)
    out = []
    for start, end in zip(cuts, [*cuts[1:], chorale.steps], strict=False):
        pcs = [sop[start]] if sop[start] is not None else []
        pcs += [row[t] for t in range(start + 1, end) if row[t] >= 0]
        events = tuple((p - chorale.tonic) % 12 for p in pcs)
        fermata = any(start <= f < end for f in fermatas)
        out.append(Segment(start, end, events, chorale.beat_of(start)[0], fermata))
    return out


def segment_labels(chorale: Chorale, segs: list[Segment]) -> list[int]:
    """Bach's chord label (an index into ``LABELS``) at the start of each segment, key-relative."""
    rows = [chorale.sounding(v) for v in range(4)]
    out = []
    for s in segs:
        chord = chord_of([r[s.start] for r in rows if r[s.start] is not None])
        out.append(0 if chord is None else LABEL_INDEX[((chord.root - chorale.tonic) % 12, chord.quality)])
    return out


def _logsumexp(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out.squeeze(axis) if axis is not None else out.reshape(())


def _log_normalise(counts: np.ndarray, add: float) -> np.ndarray:
    """Log of (counts + add) normalised over the last axis."""
    c = counts + add
    return np.log(c / c.sum(axis=-1, keepdims=True))


class BackoffTable:
    """P(outcome | context) over ``n`` outcomes from counts at several context levels (finest first),
    interpolated Witten-Bell style: P_k = (n_k + T_k P_{k+1}) / (N_k + T_k), T_k the number of distinct
    outcomes seen in context k; below the coarsest level, the uniform distribution."""

    def __init__(self, n: int, levels: int):
        self.n = n
        self.counts = [defaultdict(lambda: np.zeros(self.n)) for _ in range(levels)]
        self._cache: dict = {}

    def add(self, keys: tuple, outcome: int, weight: float = 1.0) -> None:
        for level, key in enumerate(keys):
            self.counts[level][key][outcome] += weight

    def log_probs(self, keys: tuple) -> np.ndarray:
        if keys not in self._cache:
            p = np.full(self.n, 1.0 / self.n)
            for level in range(len(keys) - 1, -1, -1):
                c = self.counts[level].get(keys[level])
                if c is None:
                    continue
                total, types = c.sum(), np.count_nonzero(c)
                p = (c + types * p) / (total + types)
            self._cache[keys] = np.log(p)
        return self._cache[keys]


# ----------------------------------------------------------------------------------------------
# The lower voices given the chord: a distribution over every alto/tenor/bass grid token
# ----------------------------------------------------------------------------------------------

ITV_SPAN, UP_LOW, UP_HIGH = 13, -4, 25  # intervals clipped to ±13; distance below the voice above to -4..25


@dataclass(frozen=True)
class TokenEvent:
    """One lower-voice token and what it is predicted from (``held``: key-relative pitch class of the
    note sounding before this step, at beat starts only; ``prev``: the voice's last pitch; ``upper``:
    the pitch the voice above sounds at this step)."""

    seg: int
    voice: int  # 1 alto, 2 tenor, 3 bass
    kind: int  # NOTE, HELD, RESTING
    pitch: int  # folded into LOW..HIGH, -1 unless a note
    type_key: tuple  # (voice, metrical position, state, soprano onset, onset in the voice above)
    held: int | None
    prev: int | None
    upper: int | None
    seg_start: bool


def _metric_class(chorale: Chorale, t: int) -> int:
    """0 the downbeat, 1 another beat start, 2.. the sixteenths inside a beat (capped)."""
    since = chorale.beat_of(t)[1]
    return 0 if chorale.position(t) == 0 else (1 if since == 0 else 1 + min(since, 6))


def token_events(chorale: Chorale, segs: list[Segment]) -> list[TokenEvent]:
    """Every alto, tenor and bass token in order (step by step, alto to bass)."""
    seg_of = np.zeros(chorale.steps, dtype=int)
    for i, s in enumerate(segs):
        seg_of[s.start : s.end] = i
    sop = chorale.sounding(0)
    onset, cur, last = [-1] * 4, [None] * 4, [None] * 4
    events = []
    for t in range(chorale.steps):
        mc, s_on, seg = _metric_class(chorale, t), chorale.voices[0][t] >= 0, int(seg_of[t])
        upper, above_on = sop[t], s_on
        for v in (1, 2, 3):
            x = chorale.voices[v][t]
            state = -1 if t == 0 else (0 if cur[v] is None else min(t - onset[v], 8))
            held = (cur[v] - chorale.tonic) % 12 if cur[v] is not None and mc <= 1 else None
            kind = NOTE if x >= 0 else (HELD if x == HOLD else RESTING)
            pitch = fold(x) if x >= 0 else -1
            events.append(
                TokenEvent(
                    seg, v, kind, pitch, (v, mc, state, s_on, above_on), held, last[v], upper, segs[seg].start == t
                )
            )
            above_on = x >= 0
            if x >= 0:
                onset[v], cur[v], last[v] = t, pitch, pitch
            elif x == REST:
                cur[v] = None
            upper = cur[v]
    return events


def _fit_class(held: int | None, label: int) -> int:
    """0: nothing held at a beat start (or not a beat start); 1: the held note is in the chord; 2: it is
    not; 3: the segment has no chord."""
    if held is None:
        return 0
    if label == 0:
        return 3
    return 1 if MEMBER[label, held] else 2


def _type_keys(key: tuple, fit: int) -> tuple:
    v, mc, state, s_on, above_on = key
    return ((v, mc, state, s_on, above_on, fit), (v, mc, state, above_on), (v, state))


class LowerVoiceModel:
    """P(each alto/tenor/bass token | chord label of its segment, the soprano, the tokens before it)."""

    def __init__(self) -> None:
        self.types = BackoffTable(3, 3)
        self.pc = np.zeros((3, 1 + len(QUALITIES), 2, 12))
        self.itv = np.zeros((3, 2 * ITV_SPAN + 1))
        self.up = np.zeros((3, UP_HIGH - UP_LOW + 1))
        self.reg = np.zeros((3, len(PITCHES)))
        self.weights = np.ones(4)  # exponents of the pitch experts: chord, interval, voice above, register
        self._exp_chord: dict = {}

    def fit(self, chorales: list[Chorale]) -> LowerVoiceModel:
        for ch in chorales:
            segs = segments(ch)
            labels = segment_labels(ch, segs)
            for e in token_events(ch, segs):
                self._count(e, labels[e.seg], ch.tonic)
        self.log_pc = _log_normalise(self.pc, 0.5)
        self.log_itv, self.log_up = _log_normalise(self.itv, 1.0), _log_normalise(self.up, 1.0)
        self.log_reg = _log_normalise(self.reg, 1.0)
        return self

    def _count(self, e: TokenEvent, label: int, tonic: int) -> None:
        self.types.add(_type_keys(e.type_key, _fit_class(e.held, label)), e.kind)
        if e.kind != NOTE:
            return
        v = e.voice - 1
        self.pc[v, QUAL_OF[label], int(e.seg_start), (e.pitch - tonic - ROOT_OF[label]) % 12] += 1
        if e.prev is not None:
            self.itv[v, np.clip(e.pitch - e.prev, -ITV_SPAN, ITV_SPAN) + ITV_SPAN] += 1
        if e.upper is not None:
            self.up[v, np.clip(e.upper - e.pitch, UP_LOW, UP_HIGH) - UP_LOW] += 1
        self.reg[v, e.pitch - LOW] += 1

    def _context_part(self, e: TokenEvent) -> np.ndarray:
        """The chord-free experts (interval, distance below the voice above, register) for every pitch."""
        v = e.voice - 1
        w = self.weights
        part = w[3] * self.log_reg[v]
        if e.prev is not None:
            part = part + w[1] * self.log_itv[v, np.clip(PITCHES - e.prev, -ITV_SPAN, ITV_SPAN) + ITV_SPAN]
        if e.upper is not None:
            part = part + w[2] * self.log_up[v, np.clip(e.upper - PITCHES, UP_LOW, UP_HIGH) - UP_LOW]
        return part

    def _chord_part(self, v: int, seg_start: bool, tonic: int) -> tuple[np.ndarray, np.ndarray]:
        """Weighted log P(pitch class | chord) for every label × pitch (and its exp), cached."""
        key = (v, seg_start, tonic)
        if key not in self._exp_chord:
            idx = (PITCHES[None, :] - tonic - ROOT_OF[:, None]) % 12
            logs = self.weights[0] * self.log_pc[v, QUAL_OF[:, None], int(seg_start), idx]
            self._exp_chord[key] = (logs, np.exp(logs))
        return self._exp_chord[key]

    def _pitch_logprob(self, e: TokenEvent, tonic: int) -> np.ndarray:
        """log P(e.pitch | note, label, context) for every label: weighted experts, renormalised."""
        rest = self._context_part(e)
        logs, exps = self._chord_part(e.voice - 1, e.seg_start, tonic)
        shift = rest.max()
        log_z = np.log(exps @ np.exp(rest - shift)) + shift
        j = e.pitch - LOW
        return logs[:, j] + rest[j] - log_z

    def tune(self, chorales: list[Chorale]) -> LowerVoiceModel:
        """Set the four experts' weights to maximise the pitch likelihood of ``chorales`` (held out from
        the counts: the valid split) under Bach's chord labels. Four numbers, L-BFGS."""
        from scipy.optimize import minimize

        self.weights = np.ones(4)
        feats, target = [], []
        for ch in chorales:
            segs = segments(ch)
            labels = segment_labels(ch, segs)
            for e in token_events(ch, segs):
                if e.kind == NOTE:
                    feats.append(self._expert_logs(e, labels[e.seg], ch.tonic))
                    target.append(e.pitch - LOW)
        if feats:
            x, y = np.stack(feats), np.array(target)
            self.weights = minimize(_weighted_nll, np.ones(4), args=(x, y), method="L-BFGS-B").x
        self._exp_chord = {}
        return self

    def _expert_logs(self, e: TokenEvent, label: int, tonic: int) -> np.ndarray:
        """(4 experts × pitches): the unweighted log tables at one note under one label."""
        v, out = e.voice - 1, np.zeros((4, len(PITCHES)))
        out[0] = self.log_pc[v, QUAL_OF[label], int(e.seg_start), (PITCHES - tonic - ROOT_OF[label]) % 12]
        if e.prev is not None:
            out[1] = self.log_itv[v, np.clip(PITCHES - e.prev, -ITV_SPAN, ITV_SPAN) + ITV_SPAN]
        if e.upper is not None:
            out[2] = self.log_up[v, np.clip(e.upper - PITCHES, UP_LOW, UP_HIGH) - UP_LOW]
        out[3] = self.log_reg[v]
        return out

    def _type_logprob(self, e: TokenEvent) -> np.ndarray:
        """log P(e.kind | context, label) for every label."""
        per_fit = np.array([self.types.log_probs(_type_keys(e.type_key, f))[e.kind] for f in range(4)])
        if e.held is None:
            return np.full(N_LABELS, per_fit[0])
        fits = np.where(MEMBER[:, e.held], 1, 2)
        fits[0] = 3
        return per_fit[fits]

    def segment_logliks(self, chorale: Chorale, segs: list[Segment]) -> np.ndarray:
        """(segments × labels): log P(the segment's lower-voice tokens | its label, everything before)."""
        out = np.zeros((len(segs), N_LABELS))
        for e in token_events(chorale, segs):
            out[e.seg] += self._type_logprob(e)
            if e.kind == NOTE:
                out[e.seg] += self._pitch_logprob(e, chorale.tonic)
        return out

    def token_distribution(self, e: TokenEvent, tonic: int) -> np.ndarray:
        """(labels × (HOLD, REST, LOW..HIGH)): the full distribution at one token, for checks."""
        out = np.zeros((N_LABELS, 2 + len(PITCHES)))
        for k, kind in ((0, HELD), (1, RESTING)):
            out[:, k] = np.exp(self._type_logprob(_with(e, kind=kind)))
        note = np.exp(self._type_logprob(_with(e, kind=NOTE)))
        for j, p in enumerate(PITCHES):
            out[:, 2 + j] = note * np.exp(self._pitch_logprob(_with(e, kind=NOTE, pitch=int(p)), tonic))
        return out


def _weighted_nll(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """Mean NLL of targets ``y`` under softmax(w · x) (x: notes × experts × pitches)."""
    logits = np.einsum("k,nkp->np", w, x)
    logits -= logits.max(axis=1, keepdims=True)
    return float(-(logits[np.arange(len(y)), y] - np.log(np.exp(logits).sum(axis=1))).mean())


def _with(e: TokenEvent, **changes) -> TokenEvent:
    return TokenEvent(**{**e.__dict__, **changes})


def soprano_only(chorale: Chorale) -> Chorale:
    """The chorale with its alto, tenor and bass silent: what a harmoniser is given."""
    rest = (REST,) * chorale.steps
    return replace(chorale, voices=(chorale.voices[0], rest, rest, rest))


def lower_onsets(chorale: Chorale) -> int:
    """Note onsets of the alto, tenor and bass: the denominator of nats per lower-voice note."""
    return sum(x >= 0 for v in (1, 2, 3) for x in chorale.voices[v])


# ----------------------------------------------------------------------------------------------
# Chords into notes
# ----------------------------------------------------------------------------------------------

_PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]
# Voicing costs, set on the valid split: a weight on frequency makes root positions (Bach's usual
# bass) win over the nearest inversion (bass agreement 0.21 -> 0.37); parallels cost more than any jump.
PARALLEL_COST, FREQ_WEIGHT = 40.0, 4.0


def _parallel_counts(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Parallel fifths + octaves from one S/A/T/B chord (4,) to each candidate (n, 4)."""
    n = np.zeros(len(after), dtype=int)
    for i, j in _PAIRS:
        same_way = (after[:, i] - before[i]) * (after[:, j] - before[j]) > 0
        for interval in (0, 7):
            parallel = abs(before[i] - before[j]) % 12 == interval
            n += same_way & parallel & (np.abs(after[:, i] - after[:, j]) % 12 == interval)
    return n


class Voicer:
    """Alto/tenor/bass voicings seen in training (relative to the chord root), chosen by smallest motion."""

    def __init__(self) -> None:
        self.offsets: dict[int, np.ndarray] = {}  # quality index -> (n, 3) pitches minus root pitch class
        self.log_counts: dict[int, np.ndarray] = {}

    def fit(self, chorales: list[Chorale]) -> Voicer:
        counts: dict[int, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
        for ch in chorales:
            segs = segments(ch)
            rows = [ch.sounding(v) for v in (1, 2, 3)]
            for s, label in zip(segs, segment_labels(ch, segs), strict=True):
                atb = [r[s.start] for r in rows]
                if label and None not in atb:
                    root = (ch.tonic + ROOT_OF[label]) % 12
                    counts[QUAL_OF[label]][tuple(p - root for p in atb)] += 1
        for q, c in counts.items():
            self.offsets[q] = np.array(list(c), dtype=int)
            self.log_counts[q] = np.log(np.array(list(c.values()), dtype=float))
        return self

    def candidates(
        self, label: int, tonic: int, soprano: int | None, lowest: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Voicings of the label in range, upper spacing within an octave; where any can, the alto within an
        octave under ``soprano`` and not above ``lowest`` (the soprano's lowest note in the segment), else
        under ``soprano`` only, else anywhere."""
        q = QUAL_OF[label]
        if q not in self.offsets:
            return np.zeros((0, 3), dtype=int), np.zeros(0)
        root = (tonic + ROOT_OF[label]) % 12
        cand = np.concatenate([self.offsets[q] + root + 12 * k for k in (-1, 0, 1)])
        logc = np.tile(self.log_counts[q], 3)
        ok = (cand[:, 0] >= cand[:, 1]) & (cand[:, 1] >= cand[:, 2]) & (cand[:, 0] - cand[:, 1] <= 12)
        for v, name in enumerate(VOICES[1:]):
            ok &= (cand[:, v] >= RANGES[name][0]) & (cand[:, v] <= RANGES[name][1])
        if soprano is not None:
            under = ok & (cand[:, 0] <= soprano) & (soprano - cand[:, 0] <= 12)
            lowest = soprano if lowest is None else lowest
            strict = under & (cand[:, 0] <= lowest)
            ok = strict if strict.any() else (under if under.any() else ok)
        return cand[ok], logc[ok]

    def choose(
        self, label: int, tonic: int, soprano: int | None, prev: np.ndarray | None, lowest: int | None = None
    ) -> np.ndarray | None:
        """The voicing under ``soprano`` after ``prev`` (S, A, T, B): the most frequent one first, then the
        smallest cost (semitones moved + ``PARALLEL_COST`` per parallel fifth or octave - ``FREQ_WEIGHT`` ×
        log count). The alto stays under ``lowest`` too (the soprano's lowest note in the segment)."""
        cand, logc = self.candidates(label, tonic, soprano, lowest)
        if not len(cand):
            return None
        if prev is None or soprano is None:
            return cand[int(np.argmax(logc))]
        full = np.column_stack([np.full(len(cand), soprano), cand])
        cost = np.abs(cand - prev[1:]).sum(axis=1) + PARALLEL_COST * _parallel_counts(prev, full) - FREQ_WEIGHT * logc
        return cand[int(np.argmin(cost))]

    def realise(self, soprano: Chorale, segs: list[Segment], labels: list[int]) -> Chorale:
        """The soprano with alto, tenor and bass: each segment's chord struck at its start, common tones tied."""
        rows = [[REST] * soprano.steps for _ in range(3)]
        sop = soprano.sounding(0)
        prev: np.ndarray | None = None
        for s, label in zip(segs, labels, strict=True):
            heard = [p for p in sop[s.start : s.end] if p is not None]
            voicing = self.choose(label, soprano.tonic, heard[0], prev, min(heard)) if heard and label else None
            if voicing is None and heard and prev is not None:
                voicing = prev[1:]  # no voicing fits: hold the last chord
            if voicing is None:
                prev = None
                continue
            for v in range(3):
                tie = prev is not None and prev[v + 1] == voicing[v] and rows[v][s.start - 1] != REST
                rows[v][s.start : s.end] = [HOLD] * (s.end - s.start)
                if not tie:
                    rows[v][s.start] = int(voicing[v])
            prev = np.array([heard[-1], *voicing])  # the soprano as the next segment starts from it
        return replace(soprano, voices=(soprano.voices[0], *(tuple(r) for r in rows)))


# ----------------------------------------------------------------------------------------------
# The two baselines
# ----------------------------------------------------------------------------------------------


class Baseline:
    """A chord model over segments + the shared lower-voice model and voicer."""

    name = "baseline"

    def __init__(self, lower: LowerVoiceModel, voicer: Voicer) -> None:
        self.lower, self.voicer = lower, voicer

    def fit(self, chorales: list[Chorale]) -> Baseline:
        for ch in chorales:
            segs = segments(ch)
            self._count(ch, segs, segment_labels(ch, segs))
        self._finish()
        return self

    def _count(self, chorale: Chorale, segs: list[Segment], labels: list[int]) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        pass

    def chord_labels(self, chorale: Chorale, segs: list[Segment]) -> list[int]:
        """The chord label of each segment for the chorale's soprano (never "no chord")."""
        raise NotImplementedError

    def log_likelihood(self, chorale: Chorale, segs: list[Segment], lower: np.ndarray) -> float:
        """log P(lower voices | soprano) from ``lower`` = LowerVoiceModel.segment_logliks."""
        raise NotImplementedError

    def harmonise(self, soprano: Chorale) -> Chorale:
        """Alto, tenor and bass under the soprano of ``soprano`` (its lower voices are ignored)."""
        segs = segments(soprano)
        if not segs:
            return soprano
        return self.voicer.realise(soprano, segs, self.chord_labels(soprano, segs))

    def nll(self, chorale: Chorale) -> tuple[float, int]:
        """(total NLL in nats of every alto/tenor/bass token given the soprano, lower-voice note onsets)."""
        segs = segments(chorale)
        if not segs:
            return 0.0, 0
        return -self.log_likelihood(chorale, segs, self.lower.segment_logliks(chorale, segs)), lower_onsets(chorale)


def _lookup_keys(mode: int, s: Segment) -> tuple:
    pcs = tuple(sorted(set(s.events)))
    first = s.events[0] if s.events else -1
    return ((mode, s.fermata, min(s.beat, 11), pcs), (mode, pcs), (mode, first), (mode,))


class BeatLookup(Baseline):
    """Per segment, independently: the most frequent chord under these soprano pitch classes at this beat."""

    name = "lookup"

    def __init__(self, lower: LowerVoiceModel, voicer: Voicer) -> None:
        super().__init__(lower, voicer)
        self.table = BackoffTable(N_LABELS, 4)

    def _count(self, chorale: Chorale, segs: list[Segment], labels: list[int]) -> None:
        for s, label in zip(segs, labels, strict=True):
            self.table.add(_lookup_keys(mode_index(chorale), s), label)

    def _log_prior(self, chorale: Chorale, segs: list[Segment]) -> np.ndarray:
        return np.array([self.table.log_probs(_lookup_keys(mode_index(chorale), s)) for s in segs])

    def chord_labels(self, chorale: Chorale, segs: list[Segment]) -> list[int]:
        return [1 + int(np.argmax(row[1:])) for row in self._log_prior(chorale, segs)]

    def log_likelihood(self, chorale: Chorale, segs: list[Segment], lower: np.ndarray) -> float:
        return float(_logsumexp(self._log_prior(chorale, segs) + lower, axis=1).sum())


class ChordHMM(Baseline):
    """Chords as hidden states over segments; the soprano's pitch classes and fermatas as emissions."""

    name = "hmm"

    def __init__(self, lower: LowerVoiceModel, voicer: Voicer) -> None:
        super().__init__(lower, voicer)
        self.start, self.trans = BackoffTable(N_LABELS, 2), BackoffTable(N_LABELS, 2)
        self.pcs, self.fermata = BackoffTable(12, 2), BackoffTable(2, 2)

    def _count(self, chorale: Chorale, segs: list[Segment], labels: list[int]) -> None:
        m = mode_index(chorale)
        self.start.add(((m, "start"), (m,)), labels[0])
        for before, after in zip(labels, labels[1:], strict=False):
            self.trans.add(((m, before), (m,)), after)
        for s, label in zip(segs, labels, strict=True):
            for pc in s.events:
                self.pcs.add(((m, label), (m,)), pc)
            self.fermata.add(((m, label), (m,)), int(s.fermata))

    def _finish(self) -> None:
        self.log_start = np.array([self.start.log_probs(((m, "start"), (m,))) for m in (0, 1)])
        self.log_trans = np.array([[self.trans.log_probs(((m, c), (m,))) for c in range(N_LABELS)] for m in (0, 1)])
        self.log_pcs = np.array([[self.pcs.log_probs(((m, c), (m,))) for c in range(N_LABELS)] for m in (0, 1)])
        self.log_fermata = np.array([[self.fermata.log_probs(((m, c), (m,))) for c in range(N_LABELS)] for m in (0, 1)])

    def _emissions(self, chorale: Chorale, segs: list[Segment]) -> np.ndarray:
        """(segments × labels): log P(the segment's soprano pitch classes and fermata flag | label)."""
        m = mode_index(chorale)
        out = np.array([self.log_fermata[m][:, int(s.fermata)] for s in segs])
        for i, s in enumerate(segs):
            for pc in s.events:
                out[i] += self.log_pcs[m][:, pc]
        return out

    def _forward(self, mode: int, emissions: np.ndarray) -> float:
        alpha = self.log_start[mode] + emissions[0]
        for e in emissions[1:]:
            alpha = _logsumexp(alpha[:, None] + self.log_trans[mode], axis=0) + e
        return float(_logsumexp(alpha))

    def log_likelihood(self, chorale: Chorale, segs: list[Segment], lower: np.ndarray) -> float:
        soprano, m = self._emissions(chorale, segs), mode_index(chorale)
        return self._forward(m, soprano + lower) - self._forward(m, soprano)

    def chord_labels(self, chorale: Chorale, segs: list[Segment]) -> list[int]:
        m = mode_index(chorale)
        emissions = self._emissions(chorale, segs)
        emissions[:, 0] = -np.inf  # decode to named chords only
        score, back = self.log_start[m] + emissions[0], []
        for e in emissions[1:]:
            total = score[:, None] + self.log_trans[m]
            back.append(np.argmax(total, axis=0))
            score = total.max(axis=0) + e
        path = [int(np.argmax(score))]
        for b in reversed(back):
            path.append(int(b[path[-1]]))
        return path[::-1]


def fit_baselines(train: list[Chorale], valid: list[Chorale] = ()) -> dict[str, Baseline]:
    """Both baselines fitted on ``train`` (the lower-voice model and the voicings shared); the four
    weights of the pitch experts set on ``valid`` (all 1 without it)."""
    if not train:
        raise DataError("no training chorales to fit the harmony baselines on")
    lower, voicer = LowerVoiceModel().fit(train).tune(list(valid)), Voicer().fit(train)
    return {cls.name: cls(lower, voicer).fit(train) for cls in (BeatLookup, ChordHMM)}


MELODY_DATA = "data/melody"
DESCRIPTIONS = {"lookup": "per-beat chord lookup", "hmm": "chord HMM (forward algorithm)"}
UNITS = "nats per lower-voice note"


def _evaluate(baseline: Baseline, chorales: list[Chorale]) -> dict:

    nll = notes = 0
    for ch in chorales:
        total, n = baseline.nll(ch)
        nll, notes = nll + total, notes + n
    report = harmony_report([baseline.harmonise(soprano_only(ch)) for ch in chorales], chorales)
    return {"nats_per_lower_note": nll / notes if notes else math.nan, "nll_nats": nll, **report}


def folk_faults(baseline: Baseline, melodies: list) -> dict:
    """Voice-leading faults per 100 beats of the baseline's harmonies of folk tunes (melody Melody
    objects), each adapted by ``adapt.soprano_from_melody`` (the baseline reads the simplified soprano;
    the faults are counted with the tune's own soprano). Tunes the adapter refuses are counted."""

    harmonies, refused = [], 0
    for melody in melodies:
        try:
            adapted = soprano_from_melody(melody)
        except GenmodelsError:
            refused += 1
            continue
        read = adapted.chorale.with_voice(0, adapted.simplified)
        harmonies.append(baseline.harmonise(read).with_voice(0, adapted.chorale.voices[0]))
    report = fault_report_many(harmonies)
    rates = {name: v["per_100_beats"] for name, v in report.items() if name != "beats"}
    return {"tunes": len(harmonies), "refused": refused, "beats": report["beats"], "faults_per_100_beats": rates}


def baseline_report(
    data_folder: str | os.PathLike = "data/harmony", split: str = "test", folk: int = 0, melody_data: str = MELODY_DATA
) -> dict:
    """Both baselines fitted on the train split and measured on ``split``: nats per lower-voice note,
    bass and chord agreement with Bach, faults per 100 beats (and Bach's own, beside them). ``model``,
    ``value``, ``units`` and ``<split>_nats_per_note`` name the better baseline by likelihood. With
    ``folk``: also the faults of each baseline on that many held-out tunes of the melody corpus."""
    t0 = time.time()

    train, valid, held_out = (load_split(data_folder, s) for s in ("train", "valid", split))
    valid = [] if split == "valid" else valid  # the weights are never set on the chorales measured
    if not held_out:
        raise DataError(f"the {split} split of {data_folder} holds no chorales")
    tunes = _folk_tunes(melody_data, folk)
    out: dict = {"split": split, "chorales": len(held_out), "lower_notes": sum(map(lower_onsets, held_out))}
    for name, baseline in fit_baselines(train, valid).items():
        out[name] = _evaluate(baseline, held_out)
        if tunes:
            out[name]["folk"] = folk_faults(baseline, tunes)
    out["bach_faults_per_100_beats"] = out["lookup"]["reference_faults_per_100_beats"]
    best = min(DESCRIPTIONS, key=lambda name: out[name]["nats_per_lower_note"])
    out.update(model=DESCRIPTIONS[best], value=round(out[best]["nats_per_lower_note"], 4), units=UNITS)
    out[f"{split}_nats_per_note"] = out[best]["nats_per_lower_note"]
    out["seconds"] = round(time.time() - t0, 1)
    return out


def _folk_tunes(melody_data: str | os.PathLike, n: int) -> list:
    """The first ``n`` test tunes of the melody corpus (none for n = 0)."""
    if n <= 0:
        return []

    return held_out_tunes(repo_path(melody_data))[:n]


def main(argv: list[str] | None = None) -> None:
    """``python -m scripts.harmony_baselines [DATA_FOLDER] [--split test] [--folk N]``: the report as JSON."""

    p = argparse.ArgumentParser(description="The harmony baselines (per-beat lookup, chord HMM) on a split.")
    p.add_argument("data", nargs="?", default="data/harmony", help="prepared chorale corpus folder")
    p.add_argument("--split", default="test", choices=("valid", "test"), help="the split to measure on")
    p.add_argument("--folk", type=int, default=0, help="also count faults on this many held-out folk tunes")
    p.add_argument("--melody-data", default=MELODY_DATA, help="the melody corpus the folk tunes come from")
    a = p.parse_args(argv)
    print(json.dumps(baseline_report(a.data, a.split, a.folk, a.melody_data), indent=1))
