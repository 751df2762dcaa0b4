"""Token ids back to a melody: the tune as written, played out through its repeats, and its notes counted as
written (the unit of nats per note)."""

from __future__ import annotations

from collections.abc import Iterable

from genmodels.core.errors import MidiError
from genmodels.music.form import (
    play_written,
)
from genmodels.music.types import (
    PITCH_RANGE,
    Melody,
    Note,
)


class MelodyDecoder:
    """Decoding: the half of ``MelodyTokenizer`` that reads token ids back."""

    # ----- decode -----
    def decode(self, ids: Iterable[int]) -> Melody:
        """Token ids -> Melody. Accepts any prefix of a valid sequence (drops a dangling slot);
        header tokens are optional (defaults 4/4, C major); stops at <eos>; trailing <pad> ignored.
        Rests after the last note are kept as the melody's `length`."""
        ids = [int(i) for i in ids]
        while ids and ids[-1] == self.pad_id:
            ids.pop()
        i = 1 if ids and ids[0] in self.start_ids else 0
        meter, key = (4, 4), (0, "major")
        if i < len(ids) and ids[i] in self.id_meter:
            meter = self.id_meter[ids[i]]
            i += 1
        if i < len(ids) and ids[i] in self.id_key:
            key = self.id_key[ids[i]]
            i += 1
        written, bars = self._written_bars(ids[i:], meter)
        order, form = play_written(written, implicit_start=self.implicit_start)
        notes, length = self._played_notes(bars, order)
        try:
            return Melody(notes=notes, meter=meter, key=key, length=length, form=form)
        except MidiError:  # a prefix that stops inside a repeat's last bar: the notes stand without the form
            return Melody(notes=notes, meter=meter, key=key, length=length)

    def _written_bars(self, ids: list[int], meter: tuple[int, int]) -> tuple[list, list[list[tuple[int, int]]]]:
        """(signs and bar numbers in written order, each written bar's (slot, ticks) events) of the body tokens."""
        state = self.initial_state(meter)
        written: list = []
        bars: list[list[tuple[int, int]]] = []
        slot = -1
        for tok in ids:
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
        return written, bars

    def _played_notes(self, bars: list[list[tuple[int, int]]], order: list[int]) -> tuple[list[Note], int]:
        """The notes of the bars played in ``order`` (holds lengthen the note before), and the tune's length when
        rests follow its last note (else 0)."""
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
        return [Note(p, s, d) for p, s, d in notes], length

    def count_notes(self, ids: Iterable[int]) -> int:
        """Notes as written (a repeat's bars count once; a note held over a bar line once): the
        denominator of nats per note."""
        n = 0
        for t in ids:
            if t == self.eos_id:
                break
            n += self.is_pitch(t)
        return n
