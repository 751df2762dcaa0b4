"""Small hand-made chorales for the harmony model tests: built in milliseconds, no music21."""

from __future__ import annotations

import json
import random
from pathlib import Path

from genmodels.harmony.grid import HOLD, Chorale

# a major-key progression: (soprano offsets over the tonic, chord tones for alto, tenor, bass)
CHORDS = [(4, (0, -5, -24)), (7, (4, -8, -17)), (5, (0, -7, -19)), (2, (-1, -5, -17)), (0, (-5, -8, -24))]


def toy_chorale(seed: int, bars: int = 4, tonic: int = 0) -> Chorale:
    """A four-part chorale in quarter notes over a fixed chord pattern, moved to ``tonic``."""
    rng = random.Random(seed)
    rows: list[list[int]] = [[], [], [], []]
    for _ in range(bars * 4):
        sop, lower = rng.choice(CHORDS)
        pitches = [72 + sop, 72 + sop + lower[0] - 3, 60 + sop + lower[1], 48 + lower[2] + 12]
        for v, p in enumerate(pitches):
            rows[v] += [p + tonic - (tonic > 5) * 12, HOLD, HOLD, HOLD]
    fermatas = (len(rows[0]) - 4,)
    return Chorale(tuple(tuple(r) for r in rows), tonic=tonic, fermatas=fermatas, id=f"toy{seed}")


def toy_corpus(out: Path, train: int = 12, valid: int = 3, test: int = 3) -> Path:
    """A corpus folder with ``{train,valid,test}.jsonl`` of toy chorales."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = {"train": train, "valid": valid, "test": test}
    start = 0
    for split, n in sizes.items():
        lines = [
            json.dumps(toy_chorale(start + i, bars=2 + (start + i) % 3, tonic=(start + i) % 4).to_dict())
            for i in range(n)
        ]
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
        start += n
    return out
