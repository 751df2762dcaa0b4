"""Melody constraints: additive biases on the next token's logits, composed with the grammar mask.

Each constraint is a small object per candidate row that looks at the grammar state (what the
melody grammar expects next, how much of the bar is left) and returns a bias over the vocabulary:
0 where it has nothing to say, a finite penalty (gentle), or -inf (forbidden). The sampler adds the
biases of every active constraint to the masked logits, samples, and tells each constraint which
token was chosen. Nothing here needs a model: the tests drive it with hand-built logits.

- ``StayInKey``: pitches outside the chosen scale are penalised (gentle) or forbidden (strict).
- ``EndOnTonic``: in the last bar, a note may only complete the bar if it is the tonic; notes
  that are not the tonic must leave room for a tonic after them. The model picks the ending among
  those that satisfy this; no note is swapped in afterwards.
- ``KeepRhythm``: a template of the rhythm (bar lines, durations, rests, holds) is forced token by
  token; only the pitch of each note is free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genmodels.core.errors import SettingsError
from genmodels.music.form import Form

KEY_STRENGTHS = ("off", "gentle", "strict")
GENTLE_PENALTY = 2.5  # nats subtracted from out-of-scale pitches: about 12x less likely
ANY_PITCH = -1  # a KeepRhythm template slot where the pitch is free
FREE_FORM = Form()


class Constraint:
    """The interface: ``bias`` for the next token given the grammar state, ``advance`` after it."""

    def bias(self, state) -> torch.Tensor | None:  # (V,) float, or None for "no opinion"
        return None

    def advance(self, token: int) -> None:
        pass


def _pitch_tokens(tok) -> tuple[int, int, int]:
    """(first pitch token id, lowest pitch, number of pitch tokens) of a MelodyTokenizer."""
    lo, hi = tok.pitch_range
    return tok.pitch0, lo, hi - lo + 1


class StayInKey(Constraint):
    """Penalise (gentle) or forbid (strict) new pitches whose pitch class is outside ``scale``."""

    def __init__(self, tok, scale: Sequence[int], strength: str = "strict", penalty: float = GENTLE_PENALTY):
        if strength not in KEY_STRENGTHS:
            raise SettingsError(f"Stay in key must be one of {', '.join(KEY_STRENGTHS)}; got {strength!r}")
        self.tok = tok
        self.active = strength != "off"
        p0, lo, n = _pitch_tokens(tok)
        outside = torch.tensor([(lo + i) % 12 not in set(scale) for i in range(n)])
        self._bias = torch.zeros(tok.vocab_size)
        self._bias[p0 : p0 + n][outside] = -math.inf if strength == "strict" else -float(penalty)

    def bias(self, state) -> torch.Tensor | None:
        return self._bias if self.active and state.expecting == "event" else None


class EndOnTonic(Constraint):
    """The last note of bar ``last_bar`` (0-based, counted from the start of the token sequence)
    is a tonic: a duration that would end that bar is allowed only after a tonic (or a hold of one),
    and a note, rest or hold that is not the tonic needs at least one tick left for a tonic after it."""

    def __init__(self, tok, tonic: int, last_bar: int, is_last: Callable[[Any], bool] | None = None):
        # ``is_last(state)``: the bar being written can be the tune's last as played (a tune with repeat
        # signs ends where its played bars reach the length, which may be at a ":|"); default: bar ``last_bar``.
        self.tok, self.last_bar = tok, last_bar
        self.is_last = is_last or (lambda state: state.bars_completed == last_bar)
        p0, lo, n = _pitch_tokens(tok)
        self._tonic_ids = {p0 + i for i in range(n) if (lo + i) % 12 == tonic % 12}
        self._not_tonic_event = torch.zeros(tok.vocab_size)
        for i in range(n):
            if p0 + i not in self._tonic_ids:
                self._not_tonic_event[p0 + i] = -math.inf
        self._not_tonic_event[tok.rest_id] = -math.inf
        self.last_pitch_is_tonic = False  # of the note that sounds now (for holds)
        self.pending_is_tonic = False  # of the slot waiting for its duration

    def bias(self, state) -> torch.Tensor | None:
        if not self.is_last(state):
            return None
        if state.expecting == "event" and state.remaining < 2:
            b = self._not_tonic_event.clone()
            if not self.last_pitch_is_tonic:
                b[self.tok.hold_id] = -math.inf
            return b
        if state.expecting == "duration" and not self.pending_is_tonic:
            b = torch.zeros(self.tok.vocab_size)
            b[self.tok.dur_id(state.remaining)] = -math.inf
            return b
        return None

    def advance(self, token: int) -> None:
        if token in self._tonic_ids:
            self.pending_is_tonic = self.last_pitch_is_tonic = True
        elif token == self.tok.hold_id:
            self.pending_is_tonic = self.last_pitch_is_tonic
        elif token == self.tok.rest_id or self.tok.is_pitch(token):
            self.pending_is_tonic = self.last_pitch_is_tonic = False


def rhythm_template(tok, rhythm_ids: Sequence[int]) -> list[int]:
    """The tokens of a melody's body (after its header) with every pitch replaced by ANY_PITCH."""
    body = list(rhythm_ids[tok.header_length :])
    if not any(tok.is_pitch(t) for t in body):
        raise SettingsError("The rhythm source has no notes to give new pitches to")
    return [ANY_PITCH if tok.is_pitch(t) else int(t) for t in body]


class KeepRhythm(Constraint):
    """Force the template's bar lines, durations, rests and holds; only pitches are sampled.
    With ``tonic``, the template's last note is a tonic (end on the tonic with a fixed rhythm)."""

    def __init__(self, tok, template: Sequence[int], tonic: int | None = None):
        self.tok, self.template, self.pos = tok, list(template), 0
        p0, lo, n = _pitch_tokens(tok)
        self._any_pitch = torch.full((tok.vocab_size,), -math.inf)
        self._any_pitch[p0 : p0 + n] = 0.0
        self._last_pitch_slot = max((i for i, t in enumerate(self.template) if t == ANY_PITCH), default=-1)
        self._tonic_only = None
        if tonic is not None:
            self._tonic_only = torch.full((tok.vocab_size,), -math.inf)
            for i in range(n):
                if (lo + i) % 12 == tonic % 12:
                    self._tonic_only[p0 + i] = 0.0

    @property
    def finished(self) -> bool:
        return self.pos >= len(self.template)

    def bias(self, state) -> torch.Tensor | None:
        if self.finished:
            return None
        want = self.template[self.pos]
        if want == ANY_PITCH:
            last = self._tonic_only is not None and self.pos == self._last_pitch_slot
            return self._tonic_only if last else self._any_pitch
        b = torch.full((self.tok.vocab_size,), -math.inf)
        b[want] = 0.0
        return b

    def advance(self, token: int) -> None:
        self.pos += 1


@dataclass(frozen=True)
class MelodySteering:
    """What the user asked for; ``build`` turns it into per-row constraint objects."""

    stay_in_key: str = "off"  # off | gentle | strict
    end_on_tonic: bool = False
    rhythm: tuple[int, ...] | None = None  # a rhythm template (rhythm_template), or None
    form: Form = FREE_FORM  # the tune's parts, repeats and cadences (genmodels.infer.form), or as the model writes
    style: str | None = None  # the kind of tune (a style the model knows), or None: drawn given the prompt

    def checked(self) -> MelodySteering:
        if self.stay_in_key not in KEY_STRENGTHS:
            raise SettingsError(f"Stay in key must be one of {', '.join(KEY_STRENGTHS)}; got {self.stay_in_key!r}")
        if not isinstance(self.form, Form):
            raise SettingsError(f"The form must be a Form; got {type(self.form).__name__}")
        self.form.checked()
        if self.style is not None and not isinstance(self.style, str):
            raise SettingsError(f"The style must be a style's name; got {type(self.style).__name__}")
        if not self.form.free and self.rhythm is not None:
            raise SettingsError("A fixed form and a kept rhythm cannot be combined: choose one")
        return self

    @property
    def active(self) -> bool:
        return self.stay_in_key != "off" or self.end_on_tonic or self.rhythm is not None or not self.form.free

    def build(
        self, tok, scale: Sequence[int], tonic: int, last_bar: int, is_last: Callable[[Any], bool] | None = None
    ) -> list[Constraint]:
        out: list[Constraint] = []
        if self.stay_in_key != "off":
            out.append(StayInKey(tok, scale, self.stay_in_key))
        if self.rhythm is not None:
            out.append(KeepRhythm(tok, self.rhythm, tonic if self.end_on_tonic else None))
        elif self.end_on_tonic and self.form.free:  # a fixed form ends with its own cadence
            out.append(EndOnTonic(tok, tonic, last_bar, is_last))
        return out


def total_bias(constraints: Sequence[Constraint], state) -> torch.Tensor | None:
    """The sum of the constraints' biases for one row (None when none has an opinion)."""
    total = None
    for c in constraints:
        b = c.bias(state)
        if b is not None:
            total = b.clone() if total is None else total + b
    return total
