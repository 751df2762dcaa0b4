"""How close a harmony is to Bach's, and how clean: the measures shared by the models and the baselines.

:func:`harmony_report` compares harmonisations of held-out sopranos with Bach's own chorales, beat by
beat (the steps of :func:`genmodels.harmony.chords.beat_starts`):

- **bass agreement**: share of the beats where Bach's bass sounds at which the prediction's bass
  sounds the same pitch class;
- **chord agreement**: share of the beats where Bach's chord has a name at which the prediction has
  the same chord (root and quality); **root agreement** asks for the root only;
- **faults per 100 beats** of the predictions, and of the references beside them (Bach's own rate,
  counted by the same rules, :mod:`genmodels.harmony.voice_leading`), and their ratio.

Shares are pooled over all beats of all pieces (a long chorale weighs more than a short one).
"""

from __future__ import annotations

from genmodels.core.errors import NotationError
from genmodels.harmony.chords import beat_starts, chord_of
from genmodels.harmony.grid import Chorale
from genmodels.harmony.voice_leading import fault_report_many


def _beat_pitches(chorale: Chorale) -> list[list[int | None]]:
    """For each beat start: the pitch each voice sounds (None in a rest)."""
    rows = [chorale.sounding(v) for v in range(4)]
    return [[r[t] for r in rows] for t in beat_starts(chorale)]


def _agreement_counts(pred: Chorale, ref: Chorale) -> dict[str, int]:
    """Beats compared and beats that agree, for the bass, the chord and its root."""
    if pred.steps != ref.steps:
        raise NotationError(
            f"a prediction has {pred.steps} steps but its reference {ref.id or ''} has {ref.steps}: "
            "harmonise the reference's own soprano"
        )
    n = dict.fromkeys(("bass", "bass_hits", "chord", "chord_hits", "root_hits"), 0)
    for p, r in zip(_beat_pitches(pred), _beat_pitches(ref), strict=True):
        if r[3] is not None:
            n["bass"] += 1
            n["bass_hits"] += p[3] is not None and p[3] % 12 == r[3] % 12
        ref_chord = chord_of([x for x in r if x is not None])
        if ref_chord is not None:
            chord = chord_of([x for x in p if x is not None])
            n["chord"] += 1
            n["chord_hits"] += chord == ref_chord
            n["root_hits"] += chord is not None and chord.root == ref_chord.root
    return n


def _rates(report: dict) -> dict[str, float]:
    return {name: v["per_100_beats"] for name, v in report.items() if name != "beats"}


def harmony_report(predicted: list[Chorale], reference: list[Chorale]) -> dict:
    """Agreement with the references and fault rates, pooled over the pairs (``predicted[i]`` harmonises
    ``reference[i]``'s soprano).

    Returns ``{"pieces", "beats", "bass_agreement", "chord_agreement", "root_agreement",
    "faults_per_100_beats": {rule: rate, ..., "total": rate}, "reference_faults_per_100_beats": {...},
    "fault_ratio"}`` (``fault_ratio``: total rate of the predictions ÷ that of the references; None when
    the references have no faults).
    """
    if len(predicted) != len(reference):
        raise NotationError(f"{len(predicted)} predictions for {len(reference)} references: give one for each")
    total = dict.fromkeys(("bass", "bass_hits", "chord", "chord_hits", "root_hits"), 0)
    for p, r in zip(predicted, reference, strict=True):
        for k, v in _agreement_counts(p, r).items():
            total[k] += v
    faults, ref_faults = fault_report_many(predicted), fault_report_many(reference)
    ref_rate = ref_faults["total"]["per_100_beats"]
    return {
        "pieces": len(predicted),
        "beats": faults["beats"],
        "bass_agreement": total["bass_hits"] / total["bass"] if total["bass"] else 0.0,
        "chord_agreement": total["chord_hits"] / total["chord"] if total["chord"] else 0.0,
        "root_agreement": total["root_hits"] / total["chord"] if total["chord"] else 0.0,
        "faults_per_100_beats": _rates(faults),
        "reference_faults_per_100_beats": _rates(ref_faults),
        "fault_ratio": faults["total"]["per_100_beats"] / ref_rate if ref_rate else None,
    }
