"""A sampling guard for the voice-leading rules, as ``voice_leading`` counts them.

While the lower voices are written, a new pitch is masked (as pitches outside a voice's range are) when
it would make, with a voice already known at this step (the soprano, the lower voices written before
it):
- a perfect fifth (or twelfth) or a unison (or octave) after the same interval at the previous onset
  step, both voices moving the same way (oblique and contrary motion stay free);
- a crossing: the pitch above the voice written above it;
- spacing over an octave under the voice above it (soprano–alto, alto–tenor).
Bach avoids them; a model learns that slowly, and melodies unlike chorales (folk tunes: fast notes,
leaps) lead it astray. Holding a note on is masked where the voice above has moved past it or more
than an octave away.
"""

from __future__ import annotations

import math

import torch

from genmodels.harmony.grid import Chorale
from genmodels.tokenizers.harmony import HOLD_ID, REST_ID

INTERVALS = (0, 7)  # unison/octave, fifth/twelfth (semitones modulo 12)
SPACED = (1, 2)  # alto and tenor stay within an octave of the voice above (the bass may not)


class VoiceLeadingGuard:
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

    def mask(self, voice: int, z: torch.Tensor, later: torch.Tensor | None = None) -> torch.Tensor:
        """``z`` (n, V) with the pitches of ``voice`` (1 alto .. 3 bass) that break a rule set to -inf.
        ``later`` (4,): the pitches the voices below sound at this step where they are already known
        (``regenerate_voice`` keeps them; nan where not known)."""
        a1, a0 = self.pitch.unsqueeze(0), self.before[:, voice : voice + 1]
        bad = torch.zeros_like(z, dtype=torch.bool)
        known = [(j, self.sound[:, j : j + 1]) for j in range(voice)]  # the soprano, the voices written
        if later is not None:
            known += [(j, later[j].expand(z.size(0), 1)) for j in range(voice + 1, 4)]
        for j, b1 in known:
            b0 = self.before[:, j : j + 1]
            same_way = (a1 - a0) * (b1 - b0) > 0
            for iv in INTERVALS:
                bad |= same_way & ((a1 - b1).abs() % 12 == iv) & ((a0 - b0).abs() % 12 == iv)
        above = self.sound[:, voice - 1 : voice]  # nan while the voice above rests: no bound
        bad |= self._misplaced(a1, above, voice)
        if later is not None and voice < 3:  # the voice below, as the voice above of its own rule
            bad |= self._misplaced(later[voice + 1].expand(z.size(0), 1), a1, voice + 1)
        # holding on is a fault too where the voice above has moved past (or away from) the held note
        bad[:, HOLD_ID] = self._misplaced(self.sound[:, voice], above[:, 0], voice)
        return z.masked_fill(bad, -math.inf)

    @staticmethod
    def _misplaced(pitch: torch.Tensor, above: torch.Tensor, voice: int) -> torch.Tensor:
        """Above the voice above (crossing) or, for alto and tenor, over an octave under it (spacing)."""
        bad = pitch > above
        return bad | (above - pitch > 12) if voice in SPACED else bad

    def written(self, voice: int, token: torch.Tensor) -> None:
        """Voice ``voice`` took ``token`` (n,) at this step."""
        p = self.pitch[token]
        started = ~p.isnan()
        self.sound[:, voice] = torch.where(started, p, self.sound[:, voice])
        self.sound[:, voice] = torch.where(token == REST_ID, math.nan, self.sound[:, voice])
        self.onset |= started

    def end_step(self) -> None:
        self.before = torch.where(self.onset.unsqueeze(1), self.sound, self.before)
