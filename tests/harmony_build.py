"""Hand-built chorales for the harmony tests: voices written as (pitch, steps) notes, None for a rest."""

from __future__ import annotations

from genmodels.harmony.grid import HOLD, REST, Chorale


def row(*notes: tuple[int | None, int]) -> tuple[int, ...]:
    """A grid row from (pitch, steps) pairs; pitch None is a rest of that many steps."""
    out: list[int] = []
    for pitch, steps in notes:
        out += [REST] * steps if pitch is None else [pitch] + [HOLD] * (steps - 1)
    return tuple(out)


def chords(*columns: tuple[int, int, int, int], steps: int = 4, **kw) -> Chorale:
    """A chorale of block chords (soprano, alto, tenor, bass), each ``steps`` long (4 = a quarter)."""
    voices = tuple(row(*[(c[v], steps) for c in columns]) for v in range(4))
    return Chorale(voices=voices, **kw)
