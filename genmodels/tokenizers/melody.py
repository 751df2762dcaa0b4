"""The melody tokenizer: one vocabulary for every tune, the grammar that keeps bars complete, and
the torch masks that let sampling obey it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genmodels.core.errors import CheckpointError, MidiError
from genmodels.music.form import (
    HOLD,
    REPEAT_START,
    SIGNS,
    check_form,
    grid_bars,
    written_order,
)
from genmodels.music.types import (
    MAX_DURATION_TOKEN,
    MODES,
    PITCH_RANGE,
    SUPPORTED_METERS,
    TICKS_PER_QUARTER,
    Melody,
)
from genmodels.tokenizers.melody_decoder import MelodyDecoder
from genmodels.tokenizers.melody_grammar import MelodyGrammar

FIRST_MODES = ("major", "minor")  # the modes of the first vocabulary; their key tokens sit after the meters
# The kinds of tune a style token names, in its place of <bos>: fiddle and pipe tunes of the ABC tune books (parts
# that repeat), folk songs (through-sung verses), chorales. A tune with <bos> is of any style, its repeats played out.
STYLES = ("tunebook", "folksong", "chorale")
STYLE_NAMES = {"tunebook": "fiddle tune", "folksong": "folk song", "chorale": "chorale"}  # as pages and messages say it


class MelodyTokenizer(MelodyDecoder, MelodyGrammar):
    """One vocabulary for all tunes: header (meter, key), bars of (pitch-slot, duration) events.

    Sequence: <bos> meter key bar ev ev ... bar ev ... <eos>; each event is a slot token
    ("p:60", "rest" or "hold") followed by a duration token "d:N" (ticks). Every bar sums to
    exactly bar_ticks; notes across bar lines continue with "hold" in the next bar.

    With ``form`` (the default), the repeat signs "|:", ":|", "[1", "[2" may stand between bars: a
    tune is written with its repeats (``Melody.form``) and decoded played out. The grammar keeps them
    well formed: a body of at least one bar, "[2" right after the ":|" that closes a "[1", no <eos>
    while a repeat is open, no note tied into a repeat.

    With ``styles`` (the default), a style token may stand in place of <bos>: the tune is of that kind
    (``STYLES``) and written with its repeat signs. It is given, never predicted: a condition, like the meter.
    Every repeat opens with "|:", so a tune says whether it repeats from its first bar, given its style. Without
    styles (an older vocabulary) a repeat from the first bar is written without "|:", as in ABC: until the
    first sign the tune may close one (``MelodyGrammar.initial_state``).
    """

    header_length = 3

    def __init__(self, modes: Sequence[str] = MODES, form: bool = True, styles: bool = True) -> None:
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
        self.styles = STYLES if styles and self.form else ()
        # Where the style says whether a tune is the kind that repeats, a repeat from the first bar opens with "|:"
        # as any other does; without styles it opens implicitly (see MelodyGrammar.initial_state).
        self.implicit_start = self.form and not self.styles
        vocab += [f"style:{s}" for s in self.styles]
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
        self.style_ids = {s: self.index[f"style:{s}"] for s in self.styles}
        self.start_ids = (self.bos_id, *self.style_ids.values())  # document starts: never a training target

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
            tok = cls(modes, form=REPEAT_START in vocab, styles=f"style:{STYLES[0]}" in vocab)
        except CheckpointError:
            tok = None
        if tok is None or d.get("ticks_per_quarter", TICKS_PER_QUARTER) != TICKS_PER_QUARTER or vocab != tok.vocab:
            raise CheckpointError("Melody tokenizer config does not match this version's vocabulary")
        return tok

    # ----- header -----
    def header(self, meter: tuple[int, int], key: tuple[int, str], style: str | None = None) -> list[int]:
        """<bos> (or ``style``'s token) meter key."""
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
        return [self.start_id(style), self.meter_ids[meter], self.key_ids[key]]

    def start_id(self, style: str | None) -> int:
        """The first token: <bos>, or the style token (MidiError for a style this vocabulary lacks)."""
        if style is None:
            return self.bos_id
        if style not in self.style_ids:
            known = ", ".join(self.styles) or "none"
            raise MidiError(f"This model knows no style {style!r} (its styles: {known})")
        return self.style_ids[style]

    def style_of(self, ids: Sequence[int]) -> str | None:
        """The style a sequence starts with, or None (<bos>)."""
        return next((s for s, i in self.style_ids.items() if ids and int(ids[0]) == i), None)

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
    def encode(
        self, melody: Melody, add_eos: bool = True, from_start: bool = True, style: str | None = None
    ) -> list[int]:
        """Melody -> token ids; MidiError for an empty melody, pitches outside PITCH_RANGE, or a form
        whose repeats do not play their bars again. A tokenizer without repeat signs writes the tune
        played out. ``from_start=False``: the melody is cut from the middle of a tune, so a repeat at its
        first bar keeps its "|:" (the implicit start would reach back to the tune's first bar). ``style``: the
        first token names the tune's kind (``STYLES``) instead of <bos>."""
        if not melody.notes:
            raise MidiError("Cannot encode an empty melody")
        ids = self.header(melody.meter, melody.key, style)
        bars = self._bar_tokens(melody)
        if self.form and melody.form:
            check_form(melody)
            order = written_order(melody.form, len(bars))
            if from_start and self.implicit_start and order[0] == REPEAT_START:  # it opens implicitly
                order = order[1:]
            for it in order:
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
        """The played-out bars as token lists, each starting with "bar": the melody's bar grid (``grid_bars``),
        each event a slot token (pitch, rest or hold) and its duration token."""

        def slot_id(slot) -> int:
            return self.rest_id if slot is None else self.hold_id if slot == HOLD else self.pitch_id(slot)

        return [
            [self.bar_id] + [t for slot, ticks in bar for t in (slot_id(slot), self.dur_id(ticks))]
            for bar in grid_bars(melody)
        ]
