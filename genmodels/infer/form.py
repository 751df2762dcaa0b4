"""A tune with a chosen form: parts that repeat exactly, and bars that cadence.

``FormGuide`` is a constraint (see constraints.py) that walks a script of the written tune: repeat
signs to write, bars to generate, earlier bars to write again token by token. A repeat is a real
repeat: with a tokenizer that knows the signs the part is written once between ``|:`` and ``:|``
(the decoder plays it twice); with an older one its tokens are forced a second time. A part that comes
back later (ABAC) is forced again in either case. The model chooses everything else.

The last bar of a part cadences: its last note on a strong beat is one of the cadence pitch classes (the
tonic; or the tonic or the dominant, a half cadence, where the tune goes on) and holds at least a beat.
Notes before it must end by the bar's last strong beat that still leaves a beat, so a cadence can
always be reached; after it only the tune's last bar is silent, elsewhere a pickup into the next part
may follow (off the strong beats, as in the tunes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genmodels.core.errors import SettingsError
from genmodels.infer.constraints import Constraint
from genmodels.music.form import ENDING_1, ENDING_2, REPEAT_END, REPEAT_START, Form, beat_ticks, strong_beats
from genmodels.music.types import bar_ticks_for

HALF_CADENCE = "half"  # the last note is the tonic or the dominant
FULL_CADENCE = "full"  # the last note is the tonic


@dataclass(frozen=True)
class Step:
    kind: str  # "sign" | "gen" | "copy"
    sign: str = ""
    bars: int = 0
    cadence: str = ""  # of the last generated bar: "" | HALF_CADENCE | FULL_CADENCE
    source: int = -1  # copy: the index of the generated step whose tokens are written again


def form_script(form: Form, signs: bool, prompt_bars: int = 0, implicit_start: bool = True) -> list[Step]:
    """The written tune as steps. ``signs``: the tokenizer writes repeats with repeat signs.
    ``prompt_bars``: bars of the first part the prompt already holds. ``implicit_start``: a repeat from the
    first bar is written without "|:" (the tokenizer's ``implicit_start``)."""
    form = form.checked()
    n = form.part_bars
    room = n - 1 if form.endings and form.plan()[0][1] else n
    if prompt_bars >= room:
        raise SettingsError(
            f"The prompt has {prompt_bars} full bars; the first part of this form has room for {room - 1}: "
            "shorten the prompt"
        )
    steps: list[Step] = []
    made: dict[str, tuple[int, ...]] = {}  # letter -> the gen steps that write it (in order)
    plan = form.plan()
    for i, (letter, repeated, new) in enumerate(plan):
        end = FULL_CADENCE if letter == plan[-1][0] else HALF_CADENCE  # a part that ends the tune, now or later
        bars = n - (prompt_bars if i == 0 else 0)
        if not new:  # a part heard before comes back as it was (twice when it repeats)
            steps += [Step("copy", source=src) for src in made[letter] * (2 if repeated else 1)]
        elif not repeated:
            made[letter] = (_gen(steps, bars, end),)
        elif form.endings:
            made[letter] = _repeat_with_endings(steps, bars, signs, opening=i > 0 or not implicit_start)
        else:
            made[letter] = _repeat(steps, bars, end, signs, opening=i > 0 or not implicit_start)
    return steps


def _gen(steps: list[Step], bars: int, cadence: str) -> int:
    """Append a step the model writes; its index."""
    steps.append(Step("gen", bars=bars, cadence=cadence))
    return len(steps) - 1


def _repeat(steps: list[Step], bars: int, cadence: str, signs: bool, opening: bool = True) -> tuple[int, ...]:
    """A part played twice: between repeat signs, or written out again. ``opening``: write its "|:" (not
    where the tune's first part opens implicitly, as a tokenizer without styles writes it)."""
    if signs and opening:
        steps.append(Step("sign", REPEAT_START))
    part = _gen(steps, bars, cadence)
    steps.append(Step("sign", REPEAT_END) if signs else Step("copy", source=part))
    return (part,)


def _repeat_with_endings(steps: list[Step], bars: int, signs: bool, opening: bool = True) -> tuple[int, ...]:
    """A part played twice with a one-bar first ending (a half cadence) and second ending (a full one)."""
    if signs and opening:
        steps.append(Step("sign", REPEAT_START))
    body = _gen(steps, bars - 1, "") if bars - 1 else -1
    if signs:
        steps.append(Step("sign", ENDING_1))
    _gen(steps, 1, HALF_CADENCE)
    if signs:
        steps += [Step("sign", REPEAT_END), Step("sign", ENDING_2)]
    elif body >= 0:
        steps.append(Step("copy", source=body))
    second = _gen(steps, 1, FULL_CADENCE)
    return (body, second) if body >= 0 else (second,)


def script_written_bars(steps: list[Step], prompt_bars: int = 0) -> int:
    """Bars the script writes after a prompt of ``prompt_bars`` full bars (a copied step writes as many
    bars as its source; a copy of the first generated step writes the prompt's bars too)."""
    first = next((k for k, st in enumerate(steps) if st.kind == "gen"), None)
    total = 0
    for s in steps:
        if s.kind == "gen":
            total += s.bars
        elif s.kind == "copy":
            total += steps[s.source].bars + (prompt_bars if s.source == first else 0)
    return total


class FormGuide(Constraint):
    """Walk ``steps`` (form_script) over one row of melody tokens; ``tonic`` names the cadence pitches."""

    def __init__(self, tok, steps: list[Step], tonic: int, meter: tuple[int, int], prompt: list[int] = (), state=None):
        """``prompt``: the tokens of the prompt's bars (after the header and any leading sign), which
        belong to the first generated step; ``state``: the grammar state after them."""
        self.tok, self.steps, self.i = tok, steps, 0
        self.bt, self.beat = bar_ticks_for(meter), beat_ticks(meter)
        self.strong = strong_beats(meter)
        self.last_strong = max(s for s in self.strong if self.bt - s >= self.beat)
        p0, lo, n = tok.pitch0, tok.pitch_range[0], tok.pitch_range[1] - tok.pitch_range[0] + 1
        self._pitches = {p0 + k: (lo + k) % 12 for k in range(n)}
        self.cadence_pcs = {FULL_CADENCE: {tonic % 12}, HALF_CADENCE: {tonic % 12, (tonic + 7) % 12}}
        self.made: dict[int, list[int]] = {}  # gen step -> its tokens
        self.copy_pos = 0
        self.bars = 0  # bars begun in the current gen step
        self.pos = 0  # ticks into the current bar
        self.pending: int | None = None  # the slot waiting for its duration
        self.cadenced = False  # the cadence note of this bar has sounded
        self._forced: dict[int, torch.Tensor] = {}
        self._copied = {st.source for st in steps if st.kind == "copy"}
        self._no_hold = torch.zeros(tok.vocab_size)
        self._no_hold[tok.hold_id] = -math.inf
        while (
            self.step is not None
            and self.step.kind == "sign"
            and list(prompt[:1]) == [tok.sign_ids.get(self.step.sign)]
        ):
            self.i += 1
            prompt = prompt[1:]
        first = next((k for k, st in enumerate(steps) if st.kind == "gen"), None)
        if first is not None and prompt:
            self.made[first] = list(prompt)
        if state is not None and state.expecting not in ("bar", "bar_or_eos"):
            self.bars, self.pos = 1, self.bt - state.remaining  # the prompt's open bar is the step's first

    # ------------------------------------------------------------------------------------------
    def _only(self, token: int) -> torch.Tensor:
        b = self._forced.get(token)
        if b is None:
            b = torch.full((self.tok.vocab_size,), -math.inf)
            b[token] = 0.0
            self._forced[token] = b
        return b

    @property
    def step(self) -> Step | None:
        return self.steps[self.i] if self.i < len(self.steps) else None

    def _tune_end(self) -> bool:
        return all(st.kind == "sign" for st in self.steps[self.i + 1 :])

    def _in_cadence_bar(self) -> str:
        s = self.step
        return s.cadence if s is not None and s.kind == "gen" and s.cadence and self.bars == s.bars else ""

    def bias(self, state) -> torch.Tensor | None:
        s = self.step
        between = state.expecting in ("bar", "bar_or_eos")
        if s is None:
            return self._only(self.tok.eos_id) if between else None
        if s.kind == "sign":
            return self._only(self.tok.sign_ids[s.sign])
        if s.kind == "copy":
            return self._only(self.made[s.source][self.copy_pos])
        if between:
            return self._only(self.tok.bar_id)
        kind = self._in_cadence_bar()
        b = self._cadence_bias(state, kind) if kind else None
        if self.i in self._copied and self.bars == 1 and self.pos == 0 and state.expecting == "event":
            # written again after other music: its first note cannot be tied in from what came before
            b = self._no_hold if b is None else b + self._no_hold
        return b

    def _cadence_bias(self, state, kind: str) -> torch.Tensor:
        b = torch.zeros(self.tok.vocab_size)
        pos = self.bt - state.remaining
        if state.expecting == "event":
            if self.cadenced:  # after the tune's last note: rests to the bar line; elsewhere a pickup may follow
                if self._tune_end():
                    b[:] = -math.inf
                    b[self.tok.rest_id] = 0.0
            elif pos >= self.last_strong:  # the last place a cadence fits: it comes now
                b[:] = -math.inf
                for t, pc in self._pitches.items():
                    if pc in self.cadence_pcs[kind]:
                        b[t] = 0.0
            return b
        if state.expecting == "duration":
            slot = self.pending
            cadence_here = (
                slot in self._pitches and self._pitches[slot] in self.cadence_pcs[kind] and pos in self.strong
            )
            for d in range(1, state.remaining + 1):
                end = pos + d
                ok = end <= self.last_strong or self.cadenced
                if cadence_here and d >= self.beat:
                    ok = True
                if not ok:
                    b[self.tok.dur_id(d)] = -math.inf
            return b
        return b

    def advance(self, token: int) -> None:
        s = self.step
        if s is None:
            return
        if s.kind == "sign":
            self.i += 1
            return
        if s.kind == "copy":
            self.copy_pos += 1
            if self.copy_pos >= len(self.made[s.source]):
                self.i, self.copy_pos = self.i + 1, 0
            return
        self.made.setdefault(self.i, []).append(int(token))
        tok = self.tok
        if token == tok.bar_id:
            self.bars += 1
            self.pos, self.cadenced = 0, False
            return
        if token == tok.rest_id or token == tok.hold_id or token in self._pitches:
            self.pending = int(token)
            return
        d = int(token) - tok.dur0 + 1
        kind = self._in_cadence_bar()
        if kind and self.pending in self._pitches and self.pos + d > self.last_strong:
            self.cadenced = True
        self.pos += d
        if self.pos >= self.bt and self.bars >= s.bars:
            self.i, self.bars, self.pos, self.cadenced = self.i + 1, 0, 0, False
