"""A sampling guard against parallel fifths and octaves, counted as ``voice_leading`` counts them.

While the lower voices are written, a pitch that would make a perfect fifth (or twelfth) or a unison
(or octave) with a voice already known at this step (the soprano, the lower voices written before it),
after the same interval at the previous onset step with both voices moving the same way, is masked,
as pitches outside a voice's range are. Bach avoids them; a model learns that slowly, and one such
fault is plain to any ear. Oblique and contrary motion stay free.
"""

from __future__ import annotations

import math

import torch

from genmodels.harmony.grid import Chorale
from genmodels.harmony.tokens import REST_ID

INTERVALS = (0, 7)  # unison/octave, fifth/twelfth (semitones modulo 12)


class ParallelGuard:
    """Per candidate row: the pitch each voice (S, A, T, B) sounds now and at the previous onset step."""

    def __init__(self, soprano: Chorale, tok, n: int, vocab: int):
        self.sop = [math.nan if p is None else float(p) for p in soprano.sounding(0)]
        self.sop_onset = [x >= 0 for x in soprano.voices[0]]
        ids = torch.arange(vocab)
        self.pitch = torch.where(ids >= 4, (ids - 4 + tok.low).float(), math.nan)  # token → pitch (nan: none)
        self.sound = torch.full((n, 4), math.nan)
        self.before = torch.full((n, 4), math.nan)
        self.onset = torch.zeros(n, dtype=torch.bool)

    def start_step(self, t: int) -> None:
        self.sound[:, 0] = self.sop[t]
        self.onset[:] = self.sop_onset[t]

    def mask(self, voice: int, z: torch.Tensor) -> torch.Tensor:
        """``z`` (n, V) with the pitches of ``voice`` (1 alto .. 3 bass) that make parallels set to -inf."""
        a1, a0 = self.pitch.unsqueeze(0), self.before[:, voice : voice + 1]
        bad = torch.zeros_like(z, dtype=torch.bool)
        for j in range(voice):  # the soprano and the lower voices already written at this step
            b1, b0 = self.sound[:, j : j + 1], self.before[:, j : j + 1]
            same_way = (a1 - a0) * (b1 - b0) > 0
            for iv in INTERVALS:
                bad |= same_way & ((a1 - b1).abs() % 12 == iv) & ((a0 - b0).abs() % 12 == iv)
        return z.masked_fill(bad, -math.inf)

    def written(self, voice: int, token: torch.Tensor) -> None:
        """Voice ``voice`` took ``token`` (n,) at this step."""
        p = self.pitch[token]
        started = ~p.isnan()
        self.sound[:, voice] = torch.where(started, p, self.sound[:, voice])
        self.sound[:, voice] = torch.where(token == REST_ID, math.nan, self.sound[:, voice])
        self.onset |= started

    def end_step(self) -> None:
        self.before = torch.where(self.onset.unsqueeze(1), self.sound, self.before)
