"""Altair charts: the next-token probabilities and the piano roll of a melody."""

from __future__ import annotations

import altair as alt
import pandas as pd

from app.render import CONTINUATION_COLOUR, PROMPT_COLOUR, show_piece
from genmodels.music import TICKS_PER_QUARTER as tpq
from genmodels.music import note_name
from genmodels.music.notation import KEY_NAMES


def next_word_chart(probs: list[tuple[str, float]]) -> alt.Chart:
    df = pd.DataFrame({"word": [show_piece(t) for t, _ in probs], "probability": [p for _, p in probs]})
    df["rank"] = range(len(df))
    return (
        alt.Chart(df)
        .mark_bar(color=CONTINUATION_COLOUR)
        .encode(
            x=alt.X("probability:Q", axis=alt.Axis(format="%"), title="probability of the next word"),
            y=alt.Y(
                "word:N",
                sort=alt.SortField("rank"),
                title=None,
                axis=alt.Axis(labelOverlap=False, labelFontSize=13, labelLimit=160),
            ),
            tooltip=["word", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(height=22 * len(df) + 30)
    )


# ---------------------------------------------------------------------------------------------
# Piano roll
# ---------------------------------------------------------------------------------------------
def _roll_rows(melody, split: int | None, labels: tuple[str, str]) -> pd.DataFrame:
    """One row per note: its part (prompt or continuation), start and end in beats, pitch band, name and bar."""
    bt = melody.bar_ticks
    rows = [
        {
            "part": labels[0] if split is None or n.start < split else labels[1],
            "start": n.start / tpq,
            "end": n.end / tpq,
            "pitch": n.pitch - 0.42,
            "top": n.pitch + 0.42,
            "note": note_name(n.pitch),
            "bar": n.start // bt + 1,
        }
        for n in melody.notes
    ]
    return pd.DataFrame(rows, columns=["part", "start", "end", "pitch", "top", "note", "bar"])


def piano_roll(
    melody, split: int | None = None, labels: tuple[str, str] = ("prompt", "continuation"), height: int = 260
) -> alt.Chart:
    """Altair piano roll of a ``Melody`` with dashed bar lines.

    Notes starting before tick ``split`` are drawn as ``labels[0]`` (grey), the rest as ``labels[1]``.
    """
    df = _roll_rows(melody, split, labels)
    bt = melody.bar_ticks
    n_bars = max(1, melody.n_bars)
    bars = pd.DataFrame({"beat": [i * bt / tpq for i in range(n_bars + 1)]})
    lo = min((n.pitch for n in melody.notes), default=60) - 2
    hi = max((n.pitch for n in melody.notes), default=72) + 2
    names = str(list(KEY_NAMES))  # a Vega expression array literal
    ticks = [p for p in range(lo, hi + 1) if p % 12 in ((0, 4, 7) if hi - lo <= 24 else (0,))]
    domain = [labels[0]] if split is None else list(labels)
    colours = [PROMPT_COLOUR, CONTINUATION_COLOUR][: len(domain)] if split is not None else [CONTINUATION_COLOUR]
    notes = (
        alt.Chart(df)
        .mark_rect(cornerRadius=2, stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X(
                "start:Q", title="beats (quarter notes)", scale=alt.Scale(domain=[0, n_bars * bt / tpq], nice=False)
            ),
            x2="end:Q",
            y=alt.Y(
                "pitch:Q",
                title=None,
                scale=alt.Scale(domain=[lo - 0.5, hi + 0.5], nice=False),
                axis=alt.Axis(values=ticks, labelExpr=f"{names}[datum.value % 12] + (floor(datum.value / 12) - 1)"),
            ),
            y2="top:Q",
            color=alt.Color(
                "part:N",
                scale=alt.Scale(domain=domain, range=colours),
                legend=alt.Legend(orient="top", title=None) if split is not None else None,
            ),
            tooltip=["note", "bar", alt.Tooltip("start:Q", title="beat"), "part"],
        )
    )
    lines = alt.Chart(bars).mark_rule(color="#999", strokeDash=[3, 3]).encode(x="beat:Q")
    return (lines + notes).properties(height=height)
