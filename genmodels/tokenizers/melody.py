"""The melody tokenizer: one vocabulary for every tune, the grammar that keeps bars complete, and
the torch masks that let sampling obey it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import torch

from genmodels.core.errors import CheckpointError, MidiError
from genmodels.music.form import (
    ENDING_1,
    ENDING_2,
    REPEAT_END,
    REPEAT_START,
    SIGNS,
    check_form,
    play_written,
    written_order,
)
from genmodels.music.types import (
    MAX_DURATION_TOKEN,
    MODES,
    PITCH_RANGE,
    SUPPORTED_METERS,
    TICKS_PER_QUARTER,
    Melody,
    Note,
    bar_ticks_for,
)

FIRST_MODES = ("major", "minor")  # the modes of the first vocabulary; their key tokens sit after the meters


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
    phase: str = ""  # '' | 'body' (after |:) | 'ending1' (after [1) | 'await2' (after :| that closed [1) | 'ending2'
    phase_bars: int = 0  # bars written since the last sign
    body_bars: int = 0  # bars of the open repeat's body
    body_end_note: bool = False  # the body's last event is a note (a second ending may hold it)
    played_bars: int = 0  # bars of the tune as played: written bars plus the second passes closed so far


class MelodyTokenizer:
    """One vocabulary for all tunes: header (meter, key), bars of (pitch-slot, duration) events.

    Sequence: <bos> meter key bar ev ev ... bar ev ... <eos>; each event is a slot token
    ("p:60", "rest" or "hold") followed by a duration token "d:N" (ticks). Every bar sums to
    exactly bar_ticks; notes across bar lines continue with "hold" in the next bar.

    With ``form`` (the default), the repeat signs "|:", ":|", "[1", "[2" may stand between bars: a
    tune is written with its repeats (``Melody.form``) and decoded played out. The grammar keeps them
    well formed: a body of at least one bar, "[2" right after the ":|" that closes a "[1", no <eos>
    while a repeat is open, no note tied into a repeat.
    """

    header_length = 3

    def __init__(self, modes: Sequence[str] = MODES, form: bool = True) -> None:
        if not set(FIRST_MODES) <= set(modes) <= set(MODES):
            raise CheckpointError(f"A melody tokenizer's modes are major and minor plus some of {MODES}; got {modes}")
        self.modes = tuple(m for m in MODES if m in modes)
        vocab = ["<pad>", "<bos>", "<eos>", "bar"]
        vocab += [f"meter:{n}/{d}" for n, d in SUPPORTED_METERS]
        vocab += [f"key:{t}:{m}" for m in FIRST_MODES for t in range(12)]
        vocab += [f"p:{p}" for p in range(PITCH_RANGE[0], PITCH_RANGE[1] + 1)]
        vocab += ["rest", "hold"]
        vocab += [f"d:{d}" for d in range(1, MAX_DURATION_TOKEN + 1)]
        # Modes added later go at the end, so every older token keeps its id (models fine-tune across).
        vocab += [f"key:{t}:{m}" for m in self.modes if m not in FIRST_MODES for t in range(12)]
        self.form = bool(form)
        if self.form:  # after the modes, for the same reason
            vocab += list(SIGNS)
        self.vocab: list[str] = vocab
        self.index = {t: i for i, t in enumerate(vocab)}
        self.pad_id, self.bos_id, self.eos_id, self.bar_id = 0, 1, 2, 3
        self.rest_id, self.hold_id = self.index["rest"], self.index["hold"]
        self.meter_ids = {m: self.index[f"meter:{m[0]}/{m[1]}"] for m in SUPPORTED_METERS}
        self.id_meter = {i: m for m, i in self.meter_ids.items()}
        self.key_ids = {(t, m): self.index[f"key:{t}:{m}"] for m in self.modes for t in range(12)}
        self.id_key = {i: k for k, i in self.key_ids.items()}
        self.pitch0 = self.index[f"p:{PITCH_RANGE[0]}"]
        self.dur0 = self.index["d:1"]
        V = len(vocab)
        self._mask_bar = torch.zeros(V, dtype=torch.bool)
        self._mask_bar[self.bar_id] = True
        self._mask_bar_eos = self._mask_bar.clone()
        self._mask_bar_eos[self.eos_id] = True
        self._mask_event = torch.zeros(V, dtype=torch.bool)
        self._mask_event[self.pitch0 : self.pitch0 + PITCH_RANGE[1] - PITCH_RANGE[0] + 1] = True
        self._mask_event[self.rest_id] = True
        self._mask_event_hold = self._mask_event.clone()
        self._mask_event_hold[self.hold_id] = True
        self._mask_dur = []
        for r in range(MAX_DURATION_TOKEN + 1):
            m = torch.zeros(V, dtype=torch.bool)
            m[self.dur0 : self.dur0 + r] = True
            self._mask_dur.append(m)
        self._mask_none = torch.zeros(V, dtype=torch.bool)
        self.sign_ids = {s: self.index[s] for s in SIGNS} if self.form else {}
        self.id_sign = {i: s for s, i in self.sign_ids.items()}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MelodyTokenizer) and other.vocab == self.vocab

    # ----- config -----
    def to_config(self) -> dict:
        return {"type": "melody", "ticks_per_quarter": TICKS_PER_QUARTER, "vocab": list(self.vocab)}

    @classmethod
    def from_config(cls, d: dict) -> MelodyTokenizer:
        """The tokenizer a checkpoint was trained with: any version's vocabulary (older ones know fewer modes)."""
        if not isinstance(d, dict) or d.get("type", "melody") != "melody":
            raise CheckpointError("Not a melody tokenizer config")
        vocab = list(d.get("vocab", cls().vocab))
        modes = [m for m in MODES if f"key:0:{m}" in vocab]
        try:
            tok = cls(modes, form=REPEAT_START in vocab)
        except CheckpointError:
            tok = None
        if tok is None or d.get("ticks_per_quarter", TICKS_PER_QUARTER) != TICKS_PER_QUARTER or vocab != tok.vocab:
            raise CheckpointError("Melody tokenizer config does not match this version's vocabulary")
        return tok

    # ----- header -----
    def header(self, meter: tuple[int, int], key: tuple[int, str]) -> list[int]:
        meter, key = tuple(meter), tuple(key)
        if meter not in self.meter_ids:
            raise MidiError(f"Unsupported meter {meter}")
        if key not in self.key_ids:
            if key[1] not in self.modes:
                raise MidiError(
                    f"This model knows only {' and '.join(self.modes)} keys, not {key[1]}: choose one of those "
                    "modes, or a model trained with it"
                )
            raise MidiError(f"Invalid key {key}")
        return [self.bos_id, self.meter_ids[meter], self.key_ids[key]]

    def pitch_id(self, pitch: int) -> int:
        if not (PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]):
            raise MidiError(f"Pitch {pitch} is outside {PITCH_RANGE[0]}-{PITCH_RANGE[1]}")
        return self.pitch0 + pitch - PITCH_RANGE[0]

    def dur_id(self, ticks: int) -> int:
        return self.dur0 + ticks - 1

    pitch_range = PITCH_RANGE

    def is_pitch(self, token_id: int) -> bool:
        return self.pitch0 <= int(token_id) < self.pitch0 + PITCH_RANGE[1] - PITCH_RANGE[0] + 1

    # ----- encode -----
    def encode(self, melody: Melody, add_eos: bool = True) -> list[int]:
        """Melody -> token ids; MidiError for an empty melody, pitches outside PITCH_RANGE, or a form
        whose repeats do not play their bars again. A tokenizer without repeat signs writes the tune
        played out."""
        if not melody.notes:
            raise MidiError("Cannot encode an empty melody")
        ids = self.header(melody.meter, melody.key)
        bars = self._bar_tokens(melody)
        if self.form and melody.form:
            check_form(melody)
            for it in written_order(melody.form, len(bars)):
                if isinstance(it, int):
                    ids += bars[it]
                else:
                    ids.append(self.sign_ids[it])
        else:
            for b in bars:
                ids += b
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def _bar_tokens(self, melody: Melody) -> list[list[int]]:
        """The played-out bars as token lists, each starting with "bar"."""
        bt = melody.bar_ticks
        # Segments covering [0, n_bars*bt): (pitch or None, start, end).
        segs: list[tuple[int | None, int, int]] = []
        t = 0
        for n in melody.notes:
            if n.start > t:
                segs.append((None, t, n.start))
            segs.append((self.pitch_id(n.pitch), n.start, n.end))
            t = n.end
        if melody.end > t:  # trailing rests (melody.length): their own rest, apart from the bar's padding
            segs.append((None, t, melody.end))
            t = melody.end
        total = melody.n_bars * bt
        if total > t:
            segs.append((None, t, total))
        bars: list[list[int]] = []
        bar = -1
        for slot, s, e in segs:
            pos = s
            while pos < e:
                b = pos // bt
                if b != bar:
                    bars.append([self.bar_id])
                    bar = b
                seg_end = min(e, (b + 1) * bt)
                if slot is None:
                    bars[-1].append(self.rest_id)
                else:
                    bars[-1].append(slot if pos == s else self.hold_id)
                bars[-1].append(self.dur_id(seg_end - pos))
                pos = seg_end
        return bars

    # ----- grammar -----
    def grammar_state(self, ids: Sequence[int]) -> GrammarState:
        """State after a valid prefix that starts with the 3-token header."""
        ids = [int(i) for i in ids]
        if len(ids) < 3 or ids[0] != self.bos_id or ids[1] not in self.id_meter or ids[2] not in self.id_key:
            raise MidiError("invalid melody token sequence: it must start with <bos> meter key")
        state = GrammarState(bar_ticks=bar_ticks_for(self.id_meter[ids[1]]))
        for tok in ids[3:]:
            state = self.advance(state, tok)
        return state

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
        if ph == "body" and n:
            m[self.sign_ids[REPEAT_END]] = m[self.sign_ids[ENDING_1]] = True
        elif ph == "ending1" and n:
            m[self.sign_ids[REPEAT_END]] = True
        elif ph == "" or (ph == "ending2" and n):
            m[self.sign_ids[REPEAT_START]] = True
            m[self.eos_id] = state.expecting == "bar_or_eos"
        return m

    def _advance_sign(self, state: GrammarState, sign: str) -> GrammarState | None:
        """The state after a repeat sign, or None where it is not legal."""
        ph, n = state.phase, state.phase_bars
        if sign == REPEAT_START and (ph == "" or (ph == "ending2" and n)):
            return replace(state, phase="body", phase_bars=0, body_bars=0, last_was_note=False)
        if sign == ENDING_1 and ph == "body" and n:
            return replace(state, phase="ending1", phase_bars=0, body_bars=n, body_end_note=state.last_was_note)
        if sign == REPEAT_END and ph == "body" and n:
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
            and state.phase in ("", "ending2")
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

    # ----- decode -----
    def decode(self, ids: Iterable[int]) -> Melody:
        """Token ids -> Melody. Accepts any prefix of a valid sequence (drops a dangling slot);
        header tokens are optional (defaults 4/4, C major); stops at <eos>; trailing <pad> ignored.
        Rests after the last note are kept as the melody's `length`."""
        ids = [int(i) for i in ids]
        while ids and ids[-1] == self.pad_id:
            ids.pop()
        i = 0
        if i < len(ids) and ids[i] == self.bos_id:
            i += 1
        meter, key = (4, 4), (0, "major")
        if i < len(ids) and ids[i] in self.id_meter:
            meter = self.id_meter[ids[i]]
            i += 1
        if i < len(ids) and ids[i] in self.id_key:
            key = self.id_key[ids[i]]
            i += 1
        state = GrammarState(bar_ticks=bar_ticks_for(meter))
        written: list = []  # signs and bar numbers, in written order
        bars: list[list[tuple[int, int]]] = []  # each written bar's (slot, ticks) events
        slot = -1
        for tok in ids[i:]:
            state_before = state
            state = self.advance(state, tok)
            if state.expecting == "done":
                break
            if tok in self.id_sign:
                written.append(self.id_sign[tok])
            elif tok == self.bar_id:
                written.append(len(bars))
                bars.append([])
            elif state_before.expecting == "event":
                slot = tok
            elif state_before.expecting == "duration":
                bars[-1].append((slot, tok - self.dur0 + 1))
        order, form = play_written(written)
        notes: list[list[int]] = []  # [pitch, start, duration]
        pos = 0
        for b in order:
            for slot, d in bars[b]:
                if slot == self.hold_id:
                    notes[-1][2] += d
                elif slot != self.rest_id:
                    notes.append([slot - self.pitch0 + PITCH_RANGE[0], pos, d])
                pos += d
        length = pos if notes and pos > notes[-1][1] + notes[-1][2] else 0  # rests after the last note stay
        notes_ = [Note(p, s, d) for p, s, d in notes]
        try:
            return Melody(notes=notes_, meter=meter, key=key, length=length, form=form)
        except MidiError:  # a prefix that stops inside a repeat's last bar: the notes stand without the form
            return Melody(notes=notes_, meter=meter, key=key, length=length)

    def count_notes(self, ids: Iterable[int]) -> int:
        """Notes as written (a repeat's bars count once; a note held over a bar line once): the
        denominator of nats per note."""
        n = 0
        for t in ids:
            if t == self.eos_id:
                break
            n += self.is_pitch(t)
        return n
