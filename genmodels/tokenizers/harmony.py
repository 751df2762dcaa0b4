"""The harmoniser's vocabulary and what the model reads of a chorale.

One vocabulary for all voices: PAD, BOS, HOLD, REST, then the MIDI pitches over the union of the
voices' ranges (``grid.RANGES``). The encoder reads the soprano row with, per step, its position in
the bar, the beat strength, a fermata flag and the key; the decoder writes the lower voices as one
flattened sequence (step 0: alto, tenor, bass; step 1: alto, tenor, bass; ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from genmodels.core.errors import CheckpointError
from genmodels.core.paths import atomic_write_json
from genmodels.harmony.grid import HIGH, HOLD, LOW, REST, Chorale, fold

PAD, BOS, HOLD_ID, REST_ID = 0, 1, 2, 3
POSITIONS = 48  # positions in a bar the encoder tells apart (longer bars share the last)
MODES = ("major", "minor")  # any other mode is a third class
LOWER = (1, 2, 3)  # alto, tenor, bass: the voices the model writes, in this order at every step


@dataclass(frozen=True)
class HarmonyTokenizer:
    """Grid values ↔ token ids. Fixed: a checkpoint stores it only to check it is this one."""

    low: int = LOW
    high: int = HIGH

    @property
    def vocab_size(self) -> int:
        return 4 + self.high - self.low + 1

    @property
    def bos_id(self) -> int:
        return BOS

    @property
    def pad_id(self) -> int:
        return PAD

    @property
    def start_ids(self) -> tuple[int, ...]:
        return (BOS,)  # document starts: never a training target

    def encode(self, x: int) -> int:
        if x == HOLD:
            return HOLD_ID
        if x == REST:
            return REST_ID
        return 4 + fold(x) - self.low

    def decode(self, token: int) -> int:
        if token == HOLD_ID:
            return HOLD
        if token < 4:
            return REST
        return self.low + token - 4

    def pitch_ids(self, low: int, high: int) -> list[int]:
        """The ids of the pitches ``low..high`` (inclusive) that the vocabulary holds."""
        return [4 + p - self.low for p in range(max(low, self.low), min(high, self.high) + 1)]

    def label(self, token: int) -> str:
        return {PAD: "<pad>", BOS: "<bos>", HOLD_ID: "hold", REST_ID: "rest"}.get(token) or f"{self.decode(token)}"

    def to_config(self) -> dict:
        return {"type": "harmony", "low": self.low, "high": self.high, "vocab_size": self.vocab_size}

    def save(self, path: str | Path) -> None:
        atomic_write_json(Path(path), self.to_config())

    @classmethod
    def load(cls, path: str | Path) -> HarmonyTokenizer:
        try:
            cfg = json.loads(Path(path).read_text(encoding="utf-8"))
            tok = cls(int(cfg["low"]), int(cfg["high"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: not a readable harmony tokenizer ({e})") from e
        if (tok.low, tok.high) != (LOW, HIGH):
            raise CheckpointError(f"{path}: pitches {tok.low}..{tok.high}; this version reads {LOW}..{HIGH}")
        return tok


def strength(chorale: Chorale, t: int) -> int:
    """0 the downbeat, 1 another beat, 2 an eighth, 3 a sixteenth off the beat."""
    pos = chorale.position(t)
    if pos == 0:
        return 0
    if chorale.is_beat(t):
        return 1
    return 2 if pos % 2 == 0 else 3


def fermata_flags(chorale: Chorale) -> list[int]:
    """1 at every step of a soprano note under a fermata, else 0."""
    flags = [0] * chorale.steps
    starts = set(chorale.fermatas)
    on = 0
    for t, x in enumerate(chorale.voices[0]):
        if x != HOLD:
            on = int(t in starts)
        flags[t] = on
    return flags


def soprano_features(chorale: Chorale, tok: HarmonyTokenizer) -> dict[str, torch.Tensor]:
    """What the encoder reads, one (T,) long tensor per feature, and the key (tonic, mode) as (2,)."""
    steps = range(chorale.steps)
    mode = MODES.index(chorale.mode) if chorale.mode in MODES else len(MODES)
    sounding = chorale.sounding(0)
    return {
        "soprano": torch.tensor([tok.encode(x) for x in chorale.voices[0]], dtype=torch.long),
        "sounding": torch.tensor([REST_ID if p is None else tok.encode(p) for p in sounding], dtype=torch.long),
        "position": torch.tensor([min(chorale.position(t), POSITIONS - 1) for t in steps], dtype=torch.long),
        "strength": torch.tensor([strength(chorale, t) for t in steps], dtype=torch.long),
        "fermata": torch.tensor(fermata_flags(chorale), dtype=torch.long),
        "key": torch.tensor([chorale.tonic % 12, mode], dtype=torch.long),
    }


def lower_tokens(chorale: Chorale, tok: HarmonyTokenizer) -> torch.Tensor:
    """The alto, tenor and bass rows flattened step by step: (3T,) token ids."""
    rows = [chorale.voices[v] for v in LOWER]
    return torch.tensor([tok.encode(rows[k][t]) for t in range(chorale.steps) for k in range(3)], dtype=torch.long)


def held_pitches(tokens: list[int]) -> list[list[int]]:
    """For each position of a flattened lower-voice sequence, the pitch token each lower voice (alto,
    tenor, bass) holds just before it (REST where none): the voices already written at this step, the
    others at the step before. The decoder reads them beside the previous token, so it need not carry
    every voice's pitch through long holds."""
    current = [REST_ID, REST_ID, REST_ID]
    out = []
    for i, token in enumerate(tokens):
        out.append(list(current))
        if token >= 4 or token == REST_ID:
            current[i % 3] = token
    return out


def lower_onsets(chorale: Chorale) -> int:
    """Lower-voice note onsets: what the metric (nats per lower-voice note) divides by."""
    return sum(1 for v in LOWER for x in chorale.voices[v] if x >= 0)


def rows_from_tokens(tokens: list[int], tok: HarmonyTokenizer) -> list[tuple[int, ...]]:
    """A flattened (3T,) token sequence → the alto, tenor and bass rows (a HOLD after a rest is a rest)."""
    rows: list[list[int]] = [[], [], []]
    for i, token in enumerate(tokens):
        x = tok.decode(int(token))
        row = rows[i % 3]
        if x == HOLD and (not row or row[-1] == REST):
            x = REST
        row.append(x)
    return [tuple(r) for r in rows]


def chorale_with_lower(soprano: Chorale, tokens: list[int], tok: HarmonyTokenizer) -> Chorale:
    """``soprano`` with its lower voices replaced by the decoded ``tokens``."""
    out = soprano
    for v, row in zip(LOWER, rows_from_tokens(tokens, tok), strict=True):
        out = out.with_voice(v, row)
    return out
