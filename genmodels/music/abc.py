"""ABC notation writer for a Melody (music21 reads ABC but cannot write it).

The tune gets the header fields X:, T:, M:, L: (an eighth), Q: (quarter-note tempo) and K: with the
mode ('K:Ador'); bars are separated by '|', notes held over a bar line are tied ('A2-|A'), a leading
silence shorter than a bar becomes a pickup bar, lengths are written as multiples of L: using plain
and dotted values (longer ones tied), and lengths on the triplet grid as tuplets '(3:2:n'.

Accidentals are written against the key signature. In ABC an accidental holds to the end of the bar,
but not every reader applies that rule (music21 does not), so once a letter has carried an accidental
in a bar, every later note of that letter in the bar gets its own ('^c ^c', '^c =c'): both kinds of
reader see the same pitches.

What ABC (as written here) cannot express raises NotationError: lengths on the triplet grid that do
not add up to a whole number of sixteenths before the bar line (a triplet group across a bar line).
"""

from __future__ import annotations

import re
from fractions import Fraction

from genmodels.core.errors import NotationError
from genmodels.music import Melody
from genmodels.music.bars import Event, bar_events, describe_position, split_value
from genmodels.music.form import ENDING_1, REPEAT_END, REPEAT_START, written_bars_with_signs
from genmodels.music.scales import LETTER_PC, key_name, key_signature, signature_alterations, spell_pitch_class

UNIT_TICKS = 6  # L:1/8
# Written values inside a triplet, in half ticks: a 32nd (3) up to a whole note (96), plain and dotted.
HALF_TICK_VALUES = (96, 72, 48, 36, 24, 18, 12, 9, 6, 3)
_ACCIDENTAL = {1: "^", 0: "=", -1: "_"}


def abc_length(ticks: int | Fraction, unit: int = UNIT_TICKS) -> str:
    """A length in ticks as an ABC multiple of the unit: 6 -> '', 12 -> '2', 3 -> '/2', 9 -> '3/2'."""
    q = Fraction(ticks, unit)
    if q == 1:
        return ""
    if q.denominator == 1:
        return str(q.numerator)
    return (str(q.numerator) if q.numerator != 1 else "") + f"/{q.denominator}"


def abc_pitch_name(natural: int, letter: str) -> str:
    """Letter and octave marks for the natural note `natural` (a MIDI pitch, accidental taken off):
    60 -> 'C', 72 -> 'c', 84 -> "c'", 48 -> 'C,'."""
    octave = (natural - LETTER_PC[letter]) // 12 - 1
    if octave >= 5:
        return letter.lower() + "'" * (octave - 5)
    return letter + "," * (4 - octave)


class _BarWriter:
    """Writes the events of one bar; remembers the letters that carried an accidental in it."""

    def __init__(self, sharps: int) -> None:
        self.sharps = sharps
        self.sig = signature_alterations(sharps)
        self.touched: set[str] = set()

    def note(self, pitch: int | None, ticks: int | Fraction, tie: bool) -> str:
        if pitch is None:
            return "z" + abc_length(ticks)
        letter, alter = spell_pitch_class(pitch % 12, self.sharps)
        acc = ""
        if alter != self.sig[letter] or letter in self.touched:
            acc = _ACCIDENTAL[alter]
            self.touched.add(letter)
        return acc + abc_pitch_name(pitch - alter, letter) + abc_length(ticks) + ("-" if tie else "")

    def plain(self, e: Event) -> str:
        """A length on the sixteenth grid as plain and dotted values, tied."""
        pieces = split_value(e.ticks)
        return "".join(
            self.note(e.pitch, v, e.tie if k == len(pieces) - 1 else e.pitch is not None) for k, v in enumerate(pieces)
        )

    def tuplet(self, group: list[Event]) -> str:
        """A triplet group '(3:2:n' (n written notes, each 2/3 of its written length): a member is
        written as plain and dotted values down to a 32nd (half a tick here), tied where needed."""
        out = []
        for e in group:
            pieces = [Fraction(v, 2) for v in split_value(e.ticks * 3, HALF_TICK_VALUES)]
            out += [
                self.note(e.pitch, v, e.tie if k == len(pieces) - 1 else e.pitch is not None)
                for k, v in enumerate(pieces)
            ]
        return ("(3" if len(out) == 3 else f"(3:2:{len(out)}") + "".join(out)


def _tuplet_end(events: list[Event], i: int, where: str) -> int:
    """Index after the triplet group that starts at events[i] (it ends back on the sixteenth grid)."""
    total = 0
    for j in range(i, len(events)):
        total += events[j].ticks
        if total % 3 == 0:
            return j + 1
    raise NotationError(
        f"ABC cannot express the triplet lengths from {where}: the group does not fill "
        "a whole number of sixteenths before the bar line"
    )


def bar_abc(events: list[Event], bar: int, sharps: int, beat: int) -> str:
    """One bar of events as ABC (without the bar line); a space before each beat for beaming."""
    writer = _BarWriter(sharps)
    out = []
    i = 0
    while i < len(events):
        e = events[i]
        where = describe_position(bar, e.start)
        sep = " " if out and e.start % beat == 0 else ""
        if e.ticks % 3:
            j = _tuplet_end(events, i, where)
            out.append(sep + writer.tuplet(events[i:j]))
            i = j
        else:
            out.append(sep + writer.plain(e))
            i += 1
    return "".join(out)


def _beat_ticks(meter: tuple[int, int]) -> int:
    """Ticks per beamed group: a quarter in x/4, a half in x/2, a dotted quarter in 6/8, 9/8, 12/8."""
    num, den = meter
    if den == 8:
        return 18 if num % 3 == 0 else 6
    return 48 // den


def _bar_line(signs: list[str], first: bool = False, last: bool = False) -> str:
    """The bar line with its repeat signs: ' | ', ' |: ', ' :| ', ' :| |: ' (never '::', which music21
    misreads), ' |[1 ', ' :|[2 '; at the start '' or '|: ', at the end ' |]' or ' :|'."""
    text = " ".join(
        "|:" if s == REPEAT_START else ":|" if s == REPEAT_END else "|[1" if s == ENDING_1 else "[2" for s in signs
    ).replace(":| [2", ":|[2")
    if first:
        return f"{text} " if text else ""
    if last:
        return f" {text}" if text else " |]"
    return f" {text} " if text else " | "


def _field(text: str) -> str:
    """Header text on one line, with ABC's comment sign escaped."""
    return re.sub(r"\s+", " ", str(text)).strip().replace("%", "\\%")


def to_abc(
    melody: Melody, title: str = "Untitled", number: int = 1, pickup: bool | None = None, bars_per_line: int = 4
) -> str:
    """The melody as one ABC tune (text ending in a newline). pickup=None writes a leading silence
    shorter than a bar as a pickup bar, False as rests. NotationError for lengths ABC cannot write."""
    tonic, mode = melody.key
    sharps = key_signature(tonic, mode)
    beat = _beat_ticks(melody.meter)
    played = [bar_abc(ev, b, sharps, beat) for b, ev in enumerate(bar_events(melody, pickup))]
    order, before, after = written_bars_with_signs(melody.form, len(played))
    body = ""
    for k, (b, signs) in enumerate(zip(order, before, strict=True)):
        line_break = k and k % max(1, bars_per_line) == 0
        body += (_bar_line(signs, first=k == 0) + ("\n" if line_break else "")).lstrip(" " if k == 0 else "")
        body += played[b]
    body = body + _bar_line(after, last=True) if order else "z |]"
    body = "\n".join(line.rstrip() for line in body.split("\n"))
    head = [
        f"X:{int(number)}",
        f"T:{_field(title) or 'Untitled'}",
        f"M:{melody.meter[0]}/{melody.meter[1]}",
        "L:1/8",
        f"Q:1/4={round(melody.tempo)}",
        f"K:{key_name(tonic, mode, abc=True)}",
    ]
    return "\n".join(head) + "\n" + body + "\n"
