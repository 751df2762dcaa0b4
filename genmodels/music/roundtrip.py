"""Check the ABC and MusicXML exports by reading them back with music21: the same notes (pitch,
start, length), meter and key (with mode) must come back. A report over many melodies gives each
format's round-trip rate and every failure with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from genmodels.core.errors import GenmodelsError
from genmodels.music import Melody
from genmodels.music.abc import to_abc
from genmodels.music.bars import compare, read_back
from genmodels.music.musicxml import musicxml_bytes

FORMATS = ("abc", "musicxml")


def check_abc(melody: Melody) -> str | None:
    """None when the ABC export reads back (music21) as the same melody; else the reason."""
    from music21 import converter

    text = to_abc(melody)
    try:
        score = converter.parse(text, format="abc")
    except Exception as e:  # music21's reader raises many types; each is a failed round trip
        return f"music21 cannot read the ABC: {type(e).__name__}: {e}"
    return compare(melody, read_back(score))


def check_musicxml(melody: Melody) -> str | None:
    """None when the MusicXML export reads back (music21) as the same melody; else the reason."""
    from music21 import converter

    data = musicxml_bytes(melody)
    try:
        score = converter.parseData(data, format="musicxml")
    except Exception as e:  # as above
        return f"music21 cannot read the MusicXML: {type(e).__name__}: {e}"
    return compare(melody, read_back(score))


CHECKS: dict[str, Callable[[Melody], str | None]] = {"abc": check_abc, "musicxml": check_musicxml}


@dataclass
class RoundTripReport:
    """Per format: tunes checked, tunes read back equal, and (name, reason) for each failure."""

    checked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FORMATS, 0))
    passed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FORMATS, 0))
    failures: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {f: [] for f in FORMATS})

    def rate(self, fmt: str) -> float:
        return self.passed[fmt] / self.checked[fmt] if self.checked[fmt] else 0.0

    def summary(self) -> str:
        lines = [f"{f}: {self.passed[f]}/{self.checked[f]} round trips equal ({self.rate(f):.1%})" for f in FORMATS]
        for f in FORMATS:
            lines += [f"  {f} FAIL {name}: {why}" for name, why in self.failures[f]]
        return "\n".join(lines)


def roundtrip_report(melodies: Iterable[tuple[str, Melody]]) -> RoundTripReport:
    """Export each (name, melody) as ABC and MusicXML, read both back, and count the equal ones.
    A typed error while writing (something the format cannot express) counts as a failure."""
    report = RoundTripReport()
    for name, mel in melodies:
        for fmt in FORMATS:
            report.checked[fmt] += 1
            try:
                why = CHECKS[fmt](mel)
            except GenmodelsError as e:
                why = f"{type(e).__name__}: {e}"
            if why is None:
                report.passed[fmt] += 1
            else:
                report.failures[fmt].append((name, why))
    return report
