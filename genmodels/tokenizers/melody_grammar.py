"""The melody grammar: where a token sequence stands (GrammarState) and which tokens may come next, so that
every bar is complete and repeat signs nest as a tune's form allows; the masks sampling obeys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from genmodels.core.errors import MidiError
from genmodels.music.form import (
    ENDING_1,
    ENDING_2,
    REPEAT_END,
    REPEAT_START,
)
from genmodels.music.types import (
    PITCH_RANGE,
    bar_ticks_for,
)


@dataclass(frozen=True)
class GrammarState:
    """Where a token sequence stands. expecting: 'bar'|'event'|'duration'|'bar_or_eos'|'done'."""

    bar_ticks: int
    bars_completed: int = 0
    remaining: int = 0
    expecting: str = "bar"
    last_was_note: bool = False
    at_bar_start: bool = False
    pending: str = ""  # slot kind awaiting its duration: 'note' | 'hold' | 'rest'
    # The form (tokenizers with repeat signs): where the written tune stands in a repeat.
    # '' | 'open' (from the first bar until a sign: a ":|" here repeats from the start, as in ABC) |
    # 'body' (after |:) | 'ending1' (after [1) | 'await2' (after :| that closed [1) | 'ending2'
    phase: str = ""
    phase_bars: int = 0  # bars written since the last sign
    body_bars: int = 0  # bars of the open repeat's body
    body_end_note: bool = False  # the body's last event is a note (a second ending may hold it)
    played_bars: int = 0  # bars of the tune as played: written bars plus the second passes closed so far


class MelodyGrammar:
    """Which tokens may come next: the half of ``MelodyTokenizer`` that keeps its sequences well formed."""

    # ----- grammar -----
    def grammar_state(self, ids: Sequence[int]) -> GrammarState:
        """State after a valid prefix that starts with the 3-token header."""
        ids = [int(i) for i in ids]
        if len(ids) < 3 or ids[0] not in self.start_ids or ids[1] not in self.id_meter or ids[2] not in self.id_key:
            raise MidiError("invalid melody token sequence: it must start with <bos> (or a style) meter key")
        state = self.initial_state(self.id_meter[ids[1]])
        for tok in ids[3:]:
            state = self.advance(state, tok)
        return state

    def initial_state(self, meter: tuple[int, int]) -> GrammarState:
        """The state after the header. With repeat signs and no styles the tune starts in an implicit repeat
        ('open'): a part that repeats from the first bar is written without "|:", so whether it repeats is
        decided where it ends, as an ABC tune writes it."""
        return GrammarState(bar_ticks=bar_ticks_for(meter), phase="open" if self.implicit_start else "")

    def allowed(self, state: GrammarState) -> torch.Tensor:
        """Bool mask (vocab_size,) of the tokens legal after `state` (all False when done)."""
        e = state.expecting
        if self.form and e in ("bar", "bar_or_eos"):
            return self._allowed_between_bars(state)
        if e == "bar":
            m = self._mask_bar
        elif e == "event":
            m = self._mask_event_hold if (state.at_bar_start and state.last_was_note) else self._mask_event
        elif e == "duration":
            m = self._mask_dur[state.remaining]
        elif e == "bar_or_eos":
            m = self._mask_bar_eos
        else:
            m = self._mask_none
        return m.clone()

    def _allowed_between_bars(self, state: GrammarState) -> torch.Tensor:
        """A bar, <eos> or a repeat sign: what the form allows at this bar line."""
        m = self._mask_none.clone()
        ph, n = state.phase, state.phase_bars
        if ph == "await2":
            m[self.sign_ids[ENDING_2]] = True
            return m
        m[self.bar_id] = True
        if ph in ("body", "open") and n:
            m[self.sign_ids[REPEAT_END]] = m[self.sign_ids[ENDING_1]] = True
        if ph == "open":
            m[self.sign_ids[REPEAT_START]] = True
            m[self.eos_id] = state.expecting == "bar_or_eos"
        elif ph == "ending1" and n:
            m[self.sign_ids[REPEAT_END]] = True
        elif ph == "" or (ph == "ending2" and n):
            m[self.sign_ids[REPEAT_START]] = True
            m[self.eos_id] = state.expecting == "bar_or_eos"
        return m

    def _advance_sign(self, state: GrammarState, sign: str) -> GrammarState | None:
        """The state after a repeat sign, or None where it is not legal."""
        ph, n = state.phase, state.phase_bars
        if sign == REPEAT_START and (ph in ("", "open") or (ph == "ending2" and n)):
            return replace(state, phase="body", phase_bars=0, body_bars=0, last_was_note=False)
        if sign == ENDING_1 and ph in ("body", "open") and n:
            return replace(state, phase="ending1", phase_bars=0, body_bars=n, body_end_note=state.last_was_note)
        if sign == REPEAT_END and ph in ("body", "open") and n:
            return replace(state, phase="", phase_bars=0, played_bars=state.played_bars + n)
        if sign == REPEAT_END and ph == "ending1" and n:
            return replace(state, phase="await2", phase_bars=0, played_bars=state.played_bars + state.body_bars)
        if sign == ENDING_2 and ph == "await2":
            return replace(state, phase="ending2", phase_bars=0, last_was_note=state.body_end_note)
        return None

    def advance(self, state: GrammarState, token_id: int) -> GrammarState:
        """The state after `token_id`; MidiError if the token is not legal here."""
        tok = int(token_id)
        e = state.expecting
        if e in ("bar", "bar_or_eos") and tok == self.bar_id and state.phase != "await2":
            return replace(state, remaining=state.bar_ticks, expecting="event", at_bar_start=True)
        if (
            e == "bar_or_eos"
            and tok == self.eos_id
            and state.phase in ("", "open", "ending2")
            and not (state.phase == "ending2" and state.phase_bars == 0)
        ):
            return replace(state, expecting="done")
        if e in ("bar", "bar_or_eos") and tok in self.id_sign:
            after = self._advance_sign(state, self.id_sign[tok])
            if after is not None:
                return after
        if e == "event":
            if self.pitch0 <= tok < self.pitch0 + PITCH_RANGE[1] - PITCH_RANGE[0] + 1:
                return replace(state, expecting="duration", pending="note")
            if tok == self.rest_id:
                return replace(state, expecting="duration", pending="rest")
            if tok == self.hold_id and state.at_bar_start and state.last_was_note:
                return replace(state, expecting="duration", pending="hold")
        if e == "duration" and self.dur0 <= tok < self.dur0 + state.remaining:
            rem = state.remaining - (tok - self.dur0 + 1)
            done = rem == 0
            return replace(
                state,
                remaining=rem,
                expecting="bar_or_eos" if done else "event",
                bars_completed=state.bars_completed + done,
                phase_bars=state.phase_bars + done,
                played_bars=state.played_bars + done,
                at_bar_start=False,
                last_was_note=state.pending != "rest",
                pending="",
            )
        name = self.vocab[tok] if 0 <= tok < len(self.vocab) else str(tok)
        raise MidiError(f"invalid melody token sequence: {name!r} is not allowed when expecting {e}")
