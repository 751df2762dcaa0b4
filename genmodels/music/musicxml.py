"""MusicXML for a Melody, written by music21: one part with clef, key signature (with its mode),
time signature, tempo, bars, ties across bar lines, rests, a pickup bar, and the form: repeat bar
lines and first/second-ending brackets, each repeated bar written once.

Notes are spelled from the key signature (B flat in F major, A sharp in B major). Notes from index
`prompt_notes` on (the model's continuation) can carry a colour, which MusicXML keeps in the note's
`color` attribute and Verovio draws.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from genmodels.core.errors import NotationError
from genmodels.music import TICKS_PER_QUARTER, Melody
from genmodels.music.bars import Event, bar_events, pickup_ticks
from genmodels.music.form import REPEAT_END, REPEAT_START, written_bars_with_signs
from genmodels.music.scales import LETTER_PC, key_signature, parse_mode, spell_pitch_class, tonic_name

CONTINUATION_COLOR = "#C0392B"


def m21_pitch(midi_pitch: int, sharps: int) -> Any:
    """A music21 Pitch for ``midi_pitch``, spelled for a key signature of ``sharps`` (negative: flats)."""
    from music21 import pitch

    letter, alter = spell_pitch_class(midi_pitch % 12, sharps)
    p = pitch.Pitch(step=letter, octave=(midi_pitch - alter - LETTER_PC[letter]) // 12 - 1)
    if alter:
        p.accidental = "sharp" if alter > 0 else "flat"
    return p


def _m21_note(e: Event, sharps: int, color: str | None) -> Any:
    from music21 import note, tie

    ql = Fraction(e.ticks, TICKS_PER_QUARTER)
    if e.pitch is None:
        return note.Rest(quarterLength=ql)
    n = note.Note(m21_pitch(e.pitch, sharps), quarterLength=ql)
    if e.tie or e.tied:
        n.tie = tie.Tie("continue" if e.tie and e.tied else "start" if e.tie else "stop")
    if color:
        n.style.color = color
    return n


def _first_bar_marks(melody: Melody) -> list[Any]:
    """Clef (bass where the notes lie low on average), key with mode, time signature, tempo."""
    from music21 import clef, key, meter, tempo

    tonic, mode = melody.key
    low = bool(melody.notes) and sum(melody.pitches) / len(melody.notes) < 57
    return [
        clef.BassClef() if low else clef.TrebleClef(),
        key.Key(tonic_name(tonic, mode).replace("b", "-"), parse_mode(mode)),
        meter.TimeSignature(f"{melody.meter[0]}/{melody.meter[1]}"),
        tempo.MetronomeMark(number=round(melody.tempo, 2), referent=1.0),
    ]


def _repeat_signs(part: Any, melody: Melody, measures: dict, order: list[int], before: list, after: list) -> None:
    """Repeat bar lines and volta brackets on the written measures (``measures``: played bar -> measure)."""
    from music21 import bar, spanner

    for k, b in enumerate(order):
        if REPEAT_START in before[k]:
            measures[b].leftBarline = bar.Repeat(direction="start")
        if REPEAT_END in before[k] and k:
            measures[order[k - 1]].rightBarline = bar.Repeat(direction="end")
    if REPEAT_END in after and order:
        measures[order[-1]].rightBarline = bar.Repeat(direction="end")
    for r in melody.form:
        if r.ending1:
            first = [measures[b] for b in range(r.start + r.body, r.second_pass)]
            second = [measures[b] for b in range(r.second_pass + r.body, r.end)]
            part.insert(0, spanner.RepeatBracket(first, number=1))
            part.insert(0, spanner.RepeatBracket(second, number=2))


def to_music21(
    melody: Melody,
    title: str | None = None,
    pickup: bool | None = None,
    prompt_notes: int | None = None,
    color: str = CONTINUATION_COLOR,
) -> Any:
    """A music21 Score with one part holding the melody in measures (a pickup bar is measure 0)."""
    from music21 import metadata, stream

    sharps = key_signature(*melody.key)
    lead = pickup_ticks(melody, pickup)
    part = stream.Part(id="melody")
    played = bar_events(melody, pickup)
    order, before, after = written_bars_with_signs(melody.form, len(played))
    measures = {}
    for k, b in enumerate(order):
        events = played[b]
        m = stream.Measure(number=k if lead else k + 1)
        measures[b] = m
        if b == 0:
            for mark in _first_bar_marks(melody):
                m.insert(0, mark)
            m.paddingLeft = Fraction(lead, TICKS_PER_QUARTER)
            if lead:
                m.showNumber = stream.enums.ShowNumber.NEVER  # MusicXML implicit="yes": not counted
        for e in events:
            colored = prompt_notes is not None and e.index is not None and e.index >= prompt_notes
            m.insert(
                Fraction(e.start - (lead if b == 0 else 0), TICKS_PER_QUARTER),
                _m21_note(e, sharps, color if colored else None),
            )
        part.append(m)
    _repeat_signs(part, melody, measures, order, before, after)
    score = stream.Score(id="tune")
    score.metadata = metadata.Metadata(title=title or "Untitled")
    score.insert(0, part)
    return score


def musicxml_bytes(
    melody: Melody,
    title: str | None = None,
    pickup: bool | None = None,
    prompt_notes: int | None = None,
    color: str = CONTINUATION_COLOR,
) -> bytes:
    """The melody as a MusicXML document (UTF-8 bytes). NotationError where music21 cannot write it."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    score = to_music21(melody, title, pickup, prompt_notes, color)
    try:
        return GeneralObjectExporter(score).parse()
    except Exception as e:  # music21 raises several types for durations it cannot notate
        raise NotationError(f"MusicXML cannot express this melody: {type(e).__name__}: {e}") from None
