"""A four-part harmony as MIDI (one track per voice), MusicXML (four parts), an engraved score and audio.

The grid's step 0 sits ``chorale.offset`` steps into its bar; the MIDI file, like a melody's, starts at a
bar line, so a pickup begins after a silence and the bar lines of the file fall where the music's do. The
score shown in the app has two staves (soprano and alto on a treble staff, tenor and bass on a bass
staff) with chord symbols over the soprano; the MusicXML download has one part per voice.
"""

from __future__ import annotations

import bisect
import html
import io
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pretty_midi

from genmodels.core.errors import NotationError, SettingsError
from genmodels.harmony.chords import chord_symbols
from genmodels.harmony.grid import HOLD, REST, Chorale
from genmodels.music.audio import wav_bytes as render
from genmodels.music.engrave import render_musicxml_pages
from genmodels.music.musicxml import m21_pitch
from genmodels.music.scales import key_signature, parse_mode, tonic_name

VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")
# General MIDI programs (0-based) for soprano, alto, tenor, bass.
INSTRUMENT_SETS: dict[str, tuple[int, int, int, int]] = {
    "strings": (40, 41, 42, 43),  # violin, viola, cello, contrabass
    "string ensemble": (48, 48, 48, 48),
    "organ": (19, 19, 19, 19),  # church organ
    "choir": (52, 52, 52, 52),  # choir aahs
    "piano": (0, 0, 0, 0),
    "woodwinds": (73, 68, 71, 70),  # flute, oboe, clarinet, bassoon
    "brass": (56, 56, 57, 58),  # two trumpets, trombone, tuba (a horn would sound over the tune)
}
DEFAULT_TEMPO = 80.0  # quarter notes per minute: a chorale's walking pace
TEMPO_RANGE = (1.0, 1000.0)  # as a Melody allows
VELOCITIES = (104, 76, 76, 84)  # the tune a little above the inner voices, the bass in between
MIDI_RESOLUTION = 480
END_TEXT = "end"  # a text event where the music ends, when it ends in silence


def _check_programs(programs) -> tuple[int, ...]:
    try:
        progs = tuple(int(p) for p in programs)
    except (TypeError, ValueError):
        raise SettingsError(f"instruments must be 4 General MIDI programs, got {programs!r}") from None
    if len(progs) != 4 or not all(0 <= p <= 127 for p in progs):
        raise SettingsError(f"instruments must be 4 General MIDI programs between 0 and 127, got {programs!r}")
    return progs


def _check_tempo(tempo) -> float:
    try:
        bpm = float(tempo)
    except (TypeError, ValueError):
        bpm = float("nan")
    if not TEMPO_RANGE[0] <= bpm <= TEMPO_RANGE[1]:  # also refuses NaN
        raise SettingsError(
            f"tempo must be {TEMPO_RANGE[0]:g} to {TEMPO_RANGE[1]:g} quarter notes a minute, not {tempo!r}"
        )
    return bpm


def _midi_key_number(tonic: int, mode: str) -> int:
    """pretty_midi's key number: the key itself for major and minor, else the major key of its signature."""
    if mode in ("major", "minor"):
        return tonic % 12 + (12 if mode == "minor" else 0)
    return 7 * key_signature(tonic, mode) % 12


def to_pretty_midi(
    chorale: Chorale, programs=INSTRUMENT_SETS["strings"], tempo: float = DEFAULT_TEMPO
) -> pretty_midi.PrettyMIDI:
    """One instrument per voice (named Soprano, Alto, Tenor, Bass) with meter, key and tempo events.

    ``programs``: four General MIDI programs (``INSTRUMENT_SETS`` has named sets). SettingsError for a
    program outside 0..127 or a tempo outside 1..1000."""
    progs, tempo = _check_programs(programs), _check_tempo(tempo)
    pm = pretty_midi.PrettyMIDI(resolution=MIDI_RESOLUTION, initial_tempo=tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(chorale.meter[0], chorale.meter[1], 0.0))
    try:
        pm.key_signature_changes.append(pretty_midi.KeySignature(_midi_key_number(chorale.tonic, chorale.mode), 0.0))
    except NotationError:
        pass  # a mode the key signature cannot name: the notes are still right
    step = 60.0 / tempo / 4
    lead = chorale.offset % chorale.bar_steps
    for v, name in enumerate(VOICE_NAMES):
        inst = pretty_midi.Instrument(program=progs[v], name=name)
        for n in chorale.notes(v):
            start, end = (lead + n.start) * step, (lead + n.end) * step
            inst.notes.append(pretty_midi.Note(velocity=VELOCITIES[v], pitch=n.pitch, start=start, end=end))
        pm.instruments.append(inst)
    last = max((n.end for v in range(4) for n in chorale.notes(v)), default=0)
    if chorale.steps > last:  # trailing rests: the file lasts until the music ends
        pm.text_events.append(pretty_midi.Text(END_TEXT, (lead + chorale.steps) * step))
    return pm


def midi_bytes(chorale: Chorale, programs=INSTRUMENT_SETS["strings"], tempo: float = DEFAULT_TEMPO) -> bytes:
    """The four-track Standard MIDI File (for a download button)."""

    buf = io.BytesIO()
    to_pretty_midi(chorale, programs, tempo).write(buf)
    return buf.getvalue()


def wav_bytes(chorale: Chorale, programs=INSTRUMENT_SETS["strings"], tempo: float = DEFAULT_TEMPO) -> bytes:
    """All four voices rendered with the General MIDI soundfont (genmodels.music.audio), as a WAV file."""

    return render(to_pretty_midi(chorale, programs, tempo))


# ---------------------------------------------------------------------------------------------
# Notation: bars of events per voice, then music21 parts
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BarEvent:
    """A note or rest inside one bar: pitch (None for a rest), start and length in steps from the bar's
    first written step, and whether it is tied to the bar before / after."""

    pitch: int | None
    start: int
    steps: int
    tied_from: bool = False
    tied_on: bool = False


def bar_starts(chorale: Chorale) -> list[int]:
    """The grid step where each written bar begins (bar 0 at step 0, a pickup when ``offset`` > 0)."""
    first = (chorale.bar_steps - chorale.offset % chorale.bar_steps) % chorale.bar_steps
    starts = [0] + list(range(first or chorale.bar_steps, chorale.steps, chorale.bar_steps))
    return starts if chorale.steps else []


def _runs(row: tuple[int, ...]) -> list[tuple[int | None, int, int]]:
    """(pitch or None, start, end) for every note and every stretch of rest in a row."""
    runs: list[tuple[int | None, int, int]] = []
    for t, x in enumerate(row):
        if x == HOLD and runs and runs[-1][0] is not None:
            runs[-1] = (runs[-1][0], runs[-1][1], t + 1)
        elif x == REST or x == HOLD:  # a HOLD after a rest is still silence
            if runs and runs[-1][0] is None:
                runs[-1] = (None, runs[-1][1], t + 1)
            else:
                runs.append((None, t, t + 1))
        else:
            runs.append((x, t, t + 1))
    return runs


def voice_bars(chorale: Chorale, voice: int) -> list[list[BarEvent]]:
    """One voice as bars of events; notes across a bar line are split and tied, rests are not tied."""
    starts = bar_starts(chorale)
    ends = starts[1:] + [chorale.steps]
    bars: list[list[BarEvent]] = [[] for _ in starts]
    for pitch, s, e in _runs(chorale.voices[voice]):
        a, b = s, bisect.bisect_right(starts, s) - 1
        while a < e:  # one piece per bar the note or rest reaches into
            z = min(e, ends[b])
            tied = pitch is not None
            bars[b].append(BarEvent(pitch, a - starts[b], z - a, tied and a > s, tied and z < e))
            a, b = z, b + 1
    return bars


def _m21_event(e: BarEvent, sharps: int, fermata: bool) -> Any:
    from music21 import expressions, note, tie

    ql = Fraction(e.steps, 4)
    if e.pitch is None:
        return note.Rest(quarterLength=ql)
    n = note.Note(m21_pitch(e.pitch, sharps), quarterLength=ql)
    if e.tied_from or e.tied_on:
        n.tie = tie.Tie("continue" if e.tied_from and e.tied_on else "stop" if e.tied_from else "start")
    if fermata and not e.tied_from:
        n.expressions.append(expressions.Fermata())
    return n


def chord_labels(chorale: Chorale, every: str = "beat") -> list[tuple[int, str]]:
    """(step, symbol) where the chord changes, looked at every ``every`` ("beat", "half-bar" or "bar"), from
    genmodels.harmony.chords (empty where no chord can be named)."""
    out: list[tuple[int, str]] = []
    for step, figure in chord_symbols(chorale, every=every):
        if figure and (not out or out[-1][1] != figure):
            out.append((int(step), str(figure)))
    return out


def _chord_symbol(figure: str) -> Any:
    """A music21 ChordSymbol for a figure such as 'Am7' or 'Bbdim' (None where music21 cannot read it)."""
    from music21 import harmony

    root, rest = figure[:1], figure[1:]
    if rest.startswith("b"):  # music21 writes flats as '-'
        root, rest = root + "-", rest[1:]
    elif rest.startswith("#"):
        root, rest = root + "#", rest[1:]
    try:
        symbol = harmony.ChordSymbol(root + rest)
    except Exception:  # music21 raises several types for figures it does not know
        return None
    return symbol


def _first_marks(chorale: Chorale, clef_name: str, tempo: float | None) -> list[Any]:
    from music21 import clef, key, meter
    from music21 import tempo as m21tempo

    mode = parse_mode(chorale.mode)
    marks = [
        clef.clefFromString(clef_name),
        key.Key(tonic_name(chorale.tonic, mode).replace("b", "-"), mode),
        meter.TimeSignature(f"{chorale.meter[0]}/{chorale.meter[1]}"),
    ]
    if tempo:
        marks.append(m21tempo.MetronomeMark(number=round(float(tempo), 2), referent=1.0))
    return marks


def _fill(container, events: list[BarEvent], first_step: int, chorale: Chorale, stem: str | None) -> None:
    sharps = key_signature(chorale.tonic, parse_mode(chorale.mode))
    fermatas = set(chorale.fermatas)
    for e in events:
        item = _m21_event(e, sharps, first_step + e.start in fermatas)
        if stem and e.pitch is not None:
            item.stemDirection = stem
        container.insert(Fraction(e.start, 4), item)


def _part(chorale: Chorale, voices: tuple[int, ...], clef_name: str, name: str, tempo: float | None) -> Any:
    """A music21 Part holding ``voices`` (one, or two as upper and lower voice on one staff)."""
    from music21 import stream

    starts = bar_starts(chorale)
    bars = [voice_bars(chorale, v) for v in voices]
    pickup = chorale.offset % chorale.bar_steps
    part = stream.Part(id=name.replace(" ", ""))
    part.partName = name
    for b, first in enumerate(starts):
        m = stream.Measure(number=b if pickup else b + 1)
        if b == 0:
            for mark in _first_marks(chorale, clef_name, tempo):
                m.insert(0, mark)
            m.paddingLeft = Fraction(pickup, 4)
        if len(voices) == 1:
            _fill(m, bars[0][b], first, chorale, None)
        for i, stem in enumerate(("up", "down") if len(voices) == 2 else ()):
            vo = stream.Voice(id=str(i + 1))
            _fill(vo, bars[i][b], first, chorale, stem)
            m.insert(0, vo)
        part.append(m)
    tail = (chorale.offset + chorale.steps) % chorale.bar_steps
    if tail and len(starts) > 1:  # a short last bar stays short (music21 would fill it with rests)
        m.paddingRight = Fraction(chorale.bar_steps - tail, 4)
    return part


def _add_chords(part, chorale: Chorale, every: str) -> None:
    starts = bar_starts(chorale)
    measures = list(part.getElementsByClass("Measure"))
    for step, figure in chord_labels(chorale, every):
        b = max(i for i, s in enumerate(starts) if s <= step)
        symbol = _chord_symbol(figure)
        if symbol is not None:  # in the upper voice, where it is written at its time among the notes
            target = measures[b].voices[0] if measures[b].voices else measures[b]
            target.insert(Fraction(step - starts[b], 4), symbol)


def to_music21(
    chorale: Chorale,
    chords: bool = True,
    two_staves: bool = False,
    title: str | None = None,
    tempo: float | None = None,
    every: str = "beat",
) -> Any:
    """A music21 Score: four parts (Soprano, Alto, Tenor, Bass), or with ``two_staves`` soprano and alto on
    a treble staff and tenor and bass on a bass staff. Chord symbols over the top staff, key, meter,
    fermatas and a pickup bar (measure 0) where the chorale starts inside a bar."""
    from music21 import layout, metadata, stream

    if not chorale.steps:
        raise NotationError("the harmony is empty: there is nothing to write")
    if two_staves:
        layouts = [((0, 1), "treble", "Soprano Alto"), ((2, 3), "bass", "Tenor Bass")]
    else:
        clefs = ("treble", "treble", "treble8vb", "bass")
        layouts = [((v,), clefs[v], VOICE_NAMES[v]) for v in range(4)]
    score = stream.Score(id="harmony")
    for voices, clef_name, name in layouts:
        score.insert(0, _part(chorale, voices, clef_name, name, tempo))
    # Accidentals, beams and tied note values are made before the chord symbols go in: music21 counts a
    # symbol's pitches as notes heard, and a B flat chord would put a natural on the next B of the bar.
    score.splitAtDurations(recurse=True)  # a note of five sixteenths: a quarter tied to a sixteenth
    score = score.makeNotation()
    if chords:
        _add_chords(score.parts[0], chorale, every)
    score.metadata = metadata.Metadata(title=title or "Harmony")
    score.insert(0, layout.StaffGroup(list(score.parts), symbol="brace" if two_staves else "bracket"))
    return score


def to_musicxml(
    chorale: Chorale,
    chords: bool = True,
    two_staves: bool = False,
    title: str | None = None,
    tempo: float | None = None,
    every: str = "beat",
) -> bytes:
    """The harmony as a MusicXML document (UTF-8 bytes): four parts unless ``two_staves``."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    score = to_music21(chorale, chords, two_staves, title, tempo, every)
    exporter = GeneralObjectExporter(score)
    exporter.makeNotation = False  # made in to_music21, before the chord symbols
    try:
        return exporter.parse()
    except Exception as e:  # music21 raises several types for durations it cannot notate
        raise NotationError(f"MusicXML cannot express this harmony: {type(e).__name__}: {e}") from None


def score_svg(
    chorale: Chorale, chords: bool = True, title: str | None = None, page_width: int = 2100, every: str = "beat"
) -> str:
    """The score engraved by Verovio on two staves (S+A treble, T+B bass) with chord symbols (looked at
    ``every`` beat, half bar or bar ("beat", "half-bar", "bar")): SVG markup, pages one under the other."""

    data = to_musicxml(chorale, chords=chords, two_staves=True, title=title, every=every).decode("utf-8")
    return "\n".join(render_musicxml_pages(data, page_width))


_HARM_RE = re.compile(r'<g\b[^>]*\bclass="harm"[^>]*>(.*?)</g>', re.S)
_SMUFL_ACCIDENTALS = {"\uea64": "b", "\uea65": "", "\uea66": "#", "\ue260": "b", "\ue261": "", "\ue262": "#"}


def svg_chord_symbols(svg: str) -> list[str]:
    """The chord symbols drawn in a Verovio SVG, in order, with flats and sharps as 'b' and '#'."""
    out = []
    for group in _HARM_RE.findall(svg):
        text = html.unescape(re.sub(r"<[^>]+>|\s+", "", group))
        out.append("".join(_SMUFL_ACCIDENTALS.get(ch, ch) for ch in text))
    return out
