"""The form of a tune: its bars as the tokenizer cuts them, repeats checked against the notes, and the
written order of a played-out melody (repeat signs and endings) and back.

A Melody's notes are the tune as played; ``Melody.form`` holds Repeats that say which played bars are
written once between ``|:`` and ``:|``, with first and second endings ``[1`` ``[2``. The written order
is a list of played-bar indices and signs; ``play_written`` turns a written order back into the played
one. Everything here works on bars, never on ticks inside a bar, so a repeat is exact by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from genmodels.core.errors import MidiError, SettingsError
from genmodels.music.types import TICKS_PER_QUARTER, Melody, Repeat, bar_ticks_for

HOLD = "hold"  # a bar event continuing the note that sounds at the bar line
REPEAT_START, REPEAT_END, ENDING_1, ENDING_2 = "|:", ":|", "[1", "[2"
SIGNS = (REPEAT_START, REPEAT_END, ENDING_1, ENDING_2)

GridBar = tuple  # ((pitch | None | HOLD, ticks), ...): one bar of the token grid


def grid_bars(melody: Melody) -> list[GridBar]:
    """The melody cut into bars of (slot, ticks) events, exactly as the melody tokenizer writes them:
    slot is a MIDI pitch, None for a rest or HOLD for a note carried over the bar line; rests after
    the last note up to ``melody.end`` are one event, the padding to the bar line another."""
    bt = melody.bar_ticks
    segs: list[tuple[int | None, int, int]] = []
    t = 0
    for n in melody.notes:
        if n.start > t:
            segs.append((None, t, n.start))
        segs.append((n.pitch, n.start, n.end))
        t = n.end
    if melody.end > t:
        segs.append((None, t, melody.end))
        t = melody.end
    if melody.n_bars * bt > t:
        segs.append((None, t, melody.n_bars * bt))
    bars: list[list] = [[] for _ in range(melody.n_bars)]
    for slot, s, e in segs:
        pos = s
        while pos < e:
            b = pos // bt
            stop = min(e, (b + 1) * bt)
            bars[b].append((slot if (slot is None or pos == s) else HOLD, stop - pos))
            pos = stop
    return [tuple(b) for b in bars]


def starts_with_hold(bar: GridBar) -> bool:
    return bool(bar) and bar[0][0] == HOLD


def repeat_problem(bars: list[GridBar], r: Repeat) -> str | None:
    """Why Repeat ``r`` does not describe ``bars`` (None when it does): the second pass must play the
    body's bars again exactly, and the body may not begin with a note tied in from before the sign
    (the second pass comes from somewhere else)."""
    if r.end > len(bars):
        return f"the repeat from bar {r.start + 1} needs {r.span} bars; the tune has {len(bars) - r.start} from there"
    first = bars[r.start : r.start + r.body]
    second = bars[r.second_pass : r.second_pass + r.body]
    if first != second:
        diff = next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)
        return f"bar {r.second_pass + diff + 1} does not play bar {r.start + diff + 1} again"
    if starts_with_hold(first[0]):
        return f"the repeated bar {r.start + 1} begins with a note tied over the repeat sign"
    return None


def check_form(melody: Melody) -> None:
    """MidiError unless every Repeat of ``melody.form`` plays its body twice."""
    if not melody.form:
        return
    bars = grid_bars(melody)
    for r in melody.form:
        problem = repeat_problem(bars, r)
        if problem:
            raise MidiError(f"The tune's form does not match its notes: {problem}")


def written_order(form: tuple[Repeat, ...], n_bars: int) -> list[int | str]:
    """The written tune: played-bar indices (each written bar once) and the signs between them."""
    out: list[int | str] = []
    b = 0
    for r in form:
        out += range(b, r.start)
        out.append(REPEAT_START)
        out += range(r.start, r.start + r.body)
        if r.ending1:
            out.append(ENDING_1)
            out += range(r.start + r.body, r.second_pass)
            out += [REPEAT_END, ENDING_2]
            out += range(r.second_pass + r.body, r.end)
        else:
            out.append(REPEAT_END)
        b = r.end
    out += range(b, n_bars)
    return out


def written_bars_with_signs(form: tuple[Repeat, ...], n_bars: int) -> tuple[list[int], list[list[str]], list[str]]:
    """The written bars (played-bar indices), the signs before each, and the signs after the last:
    what a score writer needs at each bar line."""
    bars: list[int] = []
    before: list[list[str]] = []
    pending: list[str] = []
    for it in written_order(form, n_bars):
        if isinstance(it, int):
            bars.append(it)
            before.append(pending)
            pending = []
        else:
            pending.append(it)
    return bars, before, pending


def play_written(items: list[int | str], implicit_start: bool = False) -> tuple[list[int], tuple[Repeat, ...]]:
    """The played order of a written tune (items: written bars, any hashable, and signs) and its Repeats.
    ``implicit_start``: a ``:|`` (or ``[1``) before any ``|:`` repeats from the first bar, as in ABC.

    A second ending lasts as many bars as the first, or up to the next ``|:`` or the end when fewer
    follow. A prefix is played as far as it goes: a section whose ``:|`` has not come is played once,
    and a repeat still waiting for its second ending is played out but not listed as a Repeat."""
    played: list = []
    form: list[Repeat] = []
    body: list | None = [] if implicit_start else None
    ending1: list | None = None
    open_second: tuple[int, int, int] | None = None  # (start, body, ending1) of a repeat in its [2
    second_bars = 0

    def close_second() -> None:
        nonlocal open_second
        if open_second and second_bars:
            start, b, e1 = open_second
            form.append(Repeat(start, b, e1, min(e1, second_bars)))
        open_second = None

    for it in items:
        if it == REPEAT_START:
            close_second()
            body, ending1 = [], None
        elif it == ENDING_1:
            ending1 = []
        elif it == REPEAT_END:
            if body is None:  # a prefix cannot hold this: the grammar needs |: first (or the implicit start)
                continue
            start = len(played) - len(body) - len(ending1 or [])
            played += body
            if ending1 is None:
                form.append(Repeat(start, len(body)))
            else:
                open_second, second_bars = (start, len(body), len(ending1)), 0
            body = ending1 = None
        elif it == ENDING_2:
            pass
        else:
            played.append(it)
            if ending1 is not None:
                ending1.append(it)
            elif body is not None:
                body.append(it)
            elif open_second is not None:
                second_bars += 1
    close_second()
    return played, tuple(form)


def written_bars(melody: Melody) -> int:
    """How many bars the melody takes written out with its repeats."""
    return sum(1 for it in written_order(melody.form, melody.n_bars) if isinstance(it, int))


def beat_ticks(meter: tuple[int, int]) -> int:
    """One beat: a dotted quarter in 6/8, 9/8 and 12/8, else the meter's note value (a quarter in x/4)."""
    n, d = meter
    if d == 8 and n % 3 == 0 and n > 3:
        return 3 * TICKS_PER_QUARTER // 2
    return min(4 * TICKS_PER_QUARTER // d, bar_ticks_for(meter))


def strong_beats(meter: tuple[int, int]) -> list[int]:
    """Ticks inside the bar where a cadence may land: the downbeat, and the middle of a bar that falls
    in two halves (2/2, 4/4, 6/8, 12/8, 4/2, 6/4)."""
    bt, beat = bar_ticks_for(meter), beat_ticks(meter)
    out = [0]
    if (bt // beat) % 2 == 0 and bt // beat >= 2:
        out.append(bt // 2)
    return out


# ----------------------------------------------------------------------------------------------
# A form to generate
# ----------------------------------------------------------------------------------------------

SHAPES = ("free", "AB", "AABB", "ABAC", "AAB", "ABB", "AABA")  # letter runs: a part played again
PART_BARS = (4, 8)


@dataclass(frozen=True)
class Form:
    """The form asked of a generated tune.

    ``shape``: "free" (as the model writes it) or letters, one per part in play order, e.g. "AABB":
    a letter that comes right after itself is a repeat (written ``|: A :|``), a letter seen earlier
    but not just before is the same music again written out (ABAC: the third part plays A again).
    ``part_bars``: bars in each part. ``endings``: repeated parts end in a first ending that goes back
    (a half cadence on the dominant) and a second ending that goes on (a cadence on the tonic); without
    endings the last bar of every part cadences, the tune's last on the tonic."""

    shape: str = "free"
    part_bars: int = 8
    endings: bool = False

    def checked(self) -> Form:
        if self.shape != "free":
            if not self.shape or not self.shape.isalpha() or not self.shape.isupper() or len(self.shape) > 8:
                raise SettingsError(f"Form must be 'free' or part letters such as AABB; got {self.shape!r}")
            first = [c for i, c in enumerate(self.shape) if c not in self.shape[:i]]
            if first != [chr(ord("A") + i) for i in range(len(first))]:
                raise SettingsError(f"The parts of a form are lettered A, B, C... in order; got {self.shape!r}")
            if any(self.shape.count(c * 3) for c in first):
                raise SettingsError(f"A part is played at most twice in a row; got {self.shape!r}")
        if self.part_bars not in PART_BARS:
            raise SettingsError(
                f"Part length must be one of {', '.join(map(str, PART_BARS))} bars; got {self.part_bars}"
            )
        if not isinstance(self.endings, bool):
            raise SettingsError("Endings must be True or False")
        return self

    @property
    def free(self) -> bool:
        return self.shape == "free"

    def plan(self) -> list[tuple[str, bool, bool]]:
        """(letter, repeated, new) per written part: a repeated part is played twice with a repeat
        sign, a part that is not new plays an earlier part's music again."""
        out: list[tuple[str, bool, bool]] = []
        i = 0
        s = self.shape
        while i < len(s):
            rep = i + 1 < len(s) and s[i + 1] == s[i]
            out.append((s[i], rep, s[i] not in s[:i]))
            i += 2 if rep else 1
        return out

    @property
    def played_bars(self) -> int:
        return len(self.shape) * self.part_bars if not self.free else 0

    def repeats(self, first_bar: int = 0) -> tuple[Repeat, ...]:
        """How a tune played in this form is written, its first part starting at bar ``first_bar``: each
        repeated part a ``Repeat`` (with one-bar endings when ``endings``)."""
        out, bar = [], first_bar
        for _, repeated, _ in self.plan():
            if repeated:
                ending = 1 if self.endings else 0
                out.append(Repeat(bar, self.part_bars - ending, ending, ending))
                bar += 2 * self.part_bars
            else:
                bar += self.part_bars
        return tuple(out)
