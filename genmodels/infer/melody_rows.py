"""Melodies being sampled: the per-row bookkeeping (grammar states, bar targets, constraints, the form), the
results, and a continuation told apart from its prompt."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import torch

from genmodels.core.errors import SettingsError
from genmodels.infer.constraints import MelodySteering, total_bias
from genmodels.infer.form import FormGuide, form_script, script_written_bars
from genmodels.music.form import ENDING_1, REPEAT_END, REPEAT_START
from genmodels.music.scales import scale_pitch_classes

NO_STEERING = MelodySteering()  # no constraints: the model's own melody


@dataclass
class MelodyResult:
    prompt: object  # Melody
    full: object  # Melody: prompt + continuation
    continuation: object  # Melody: the generated bars alone
    overruled: int = 0  # sampled tokens the constraints changed (vs. the model's own pick, same random draw)
    events: int = 0  # pitch and rest events sampled
    style: str | None = None  # the kind of tune it was written as (a style token), None for <bos>


def continuation_of(full, prompt_end: int):
    """The notes generated after the prompt, moved back by whole bars so the bar lines stay in place.

    When the model holds the prompt's last note across the bar line, ``decode`` merges the hold into
    that note; the continuation then starts with the note's remaining part (it sounds there)."""
    shift = prompt_end // full.bar_ticks * full.bar_ticks
    notes = [
        type(n)(n.pitch, max(n.start, prompt_end) - shift, n.end - max(n.start, prompt_end))
        for n in full.notes
        if n.end > prompt_end
    ]
    bars = shift // full.bar_ticks
    form = tuple(dataclasses.replace(r, start=r.start - bars) for r in full.form if r.start >= bars)
    return dataclasses.replace(full, notes=notes, length=max(0, full.length - shift), form=form)


def _behind(prompt, tail, cut: int):
    """``prompt`` followed by ``tail``, a melody that starts at bar ``cut`` of the prompt (the cut
    context with its continuation). A prompt note held over that bar line was split by the cut; it is
    one note again, lengthened when the model held it on."""
    offset = cut * prompt.bar_ticks
    notes = [n for n in prompt.notes if n.start < offset]
    moved = [type(n)(n.pitch, n.start + offset, n.duration) for n in tail.notes]
    if notes and moved and notes[-1].end > offset and moved[0].start == offset and moved[0].pitch == notes[-1].pitch:
        held = moved.pop(0)
        notes[-1] = type(held)(held.pitch, notes[-1].start, max(notes[-1].end, held.end) - notes[-1].start)
    length = tail.length + offset if tail.length else 0
    form = tuple(dataclasses.replace(r, start=r.start + cut) for r in tail.form)  # its bars count from the cut
    return dataclasses.replace(tail, notes=notes + moved, length=length, tempo=prompt.tempo, form=form)


def ends_here(state, target: int) -> bool:
    """Whether the bar being written can be the last one played of a tune of ``target`` played bars, as the
    model writes its form: the tune ends after it, or a ":|" after it closes a repeat whose second pass
    reaches the length (where the closing sign is allowed, see `_MelodyRows._close_repeats_in_time`)."""
    left = target - state.played_bars  # bars still to play, this one included
    n = state.phase_bars + 1  # this bar's place in its section
    if state.phase in ("", "open", "ending2") and left <= 1:  # (after a second pass the tune may be past it)
        return True
    if state.phase == "open" and n <= left - 1 and state.played_bars + 1 + n >= target:
        return True
    return state.phase == "body" and state.played_bars + 1 + n >= target


class _MelodyRows:
    """The per-row bookkeeping of a batch of melodies being sampled: grammar states, bar targets,
    constraints, the sequences so far, and the overruled / event counts."""

    def __init__(
        self, tok, prefixes: list[list[int]], bars: list[int], steering: MelodySteering, keys: list[tuple[int, str]]
    ):

        self.tok, self.steering = tok, steering
        self.states = [tok.grammar_state(p) for p in prefixes]
        self.fixed_form = not steering.form.free
        self.targets = [
            st.played_bars + b + (1 if st.remaining > 0 and st.expecting not in ("bar", "bar_or_eos") else 0)
            for st, b in zip(self.states, bars, strict=True)
        ]
        free_signs = bool(tok.form) and not self.fixed_form
        self.constraints = [
            steering.build(
                tok, scale_pitch_classes(*k), k[0], t - 1, partial(ends_here, target=t) if free_signs else None
            )
            for k, t in zip(keys, self.targets, strict=True)
        ]
        if self.fixed_form:  # the script decides every bar, sign and the end; targets count written bars
            for i, (p, st, k) in enumerate(zip(prefixes, self.states, keys, strict=True)):
                script = form_script(steering.form, bool(tok.form), st.bars_completed, tok.implicit_start)
                self.targets[i] = st.bars_completed + script_written_bars(script, st.bars_completed)
                meter = tok.id_meter[p[1]]
                self.constraints[i].append(FormGuide(tok, script, k[0], meter, p[tok.header_length :], st))
        self.seqs = [list(p) for p in prefixes]
        self.done = [b == 0 for b in bars]
        self.overruled, self.events = [0] * len(prefixes), [0] * len(prefixes)

    def grammar_mask(self) -> torch.Tensor:
        """The tokens the grammar allows in each row; <eos> exactly when a row has all its bars."""
        tok, eos = self.tok, self.tok.eos_id
        mask = torch.stack([tok.allowed(st) for st in self.states])
        for i, st in enumerate(self.states):
            count = st.bars_completed if self.fixed_form else st.played_bars
            closed = st.phase in ("", "open") or (st.phase == "ending2" and st.phase_bars > 0)
            if self.done[i] or (st.expecting == "bar_or_eos" and count >= self.targets[i] and closed):
                mask[i] = False
                mask[i, eos] = True
            elif st.expecting == "bar_or_eos":
                mask[i, eos] = False
            if tok.form and not self.fixed_form and not self.done[i] and st.expecting in ("bar", "bar_or_eos"):
                self._close_repeats_in_time(mask[i], st, self.targets[i])
        return mask

    def _close_repeats_in_time(self, mask: torch.Tensor, st, target: int) -> None:
        """As the model writes its form: no repeat opened without room for two passes, and an open
        repeat closed when its second pass would reach the length asked for."""
        signs = self.tok.sign_ids
        left = target - st.played_bars
        if left < 2:
            mask[signs[REPEAT_START]] = False
        if st.phase == "open":  # repeating from the start only where the second pass fits
            if st.phase_bars > left:
                mask[signs[REPEAT_END]] = False
            if st.phase_bars + 2 > left:
                mask[signs[ENDING_1]] = False
        # a body bar more would bring its second pass past the length: close now (each bar written adds two)
        close = (st.phase == "body" and st.phase_bars and st.phase_bars + 2 > left) or (
            st.phase == "ending1" and st.phase_bars and st.body_bars + 1 >= left
        )
        if close:
            mask[:] = False
            mask[signs[REPEAT_END]] = True

    def biased(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` plus each row's constraint biases (the same tensor when no constraint spoke)."""
        biased = logits
        for i, st in enumerate(self.states):
            b = None if self.done[i] else total_bias(self.constraints[i], st)
            if b is None:
                continue
            if biased is logits:
                biased = logits.clone()
            biased[i] += b
            if not torch.isfinite(biased[i]).any():
                raise SettingsError(
                    f"The melody constraints leave no legal token in bar {st.bars_completed + 1} "
                    f"(stay in key: {self.steering.stay_in_key}, end on the tonic: {self.steering.end_on_tonic}, "
                    f"keep rhythm: {self.steering.rhythm is not None}); loosen one of them"
                )
        return biased

    def advance(self, tokens: list[int], own: list[int]) -> None:
        """Append each row's token; count events and picks the constraints changed."""
        tok = self.tok
        for i, t in enumerate(tokens):
            if self.done[i]:
                continue
            if self.states[i].expecting == "event" and t != tok.hold_id:
                self.events[i] += 1
            self.overruled[i] += own[i] != t
            self.states[i] = tok.advance(self.states[i], t)
            for c in self.constraints[i]:
                c.advance(t)
            self.seqs[i].append(t)
            self.done[i] = t == tok.eos_id
