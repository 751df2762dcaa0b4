"""Text being sampled: the stop rules and repetition control (``TextSteering``) applied row by row, the text
each candidate shows so far, the results and the stream of new text."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from genmodels.core.errors import SettingsError
from genmodels.core.options import option
from genmodels.infer.decoding import CandidateRandom, Settings, choose
from genmodels.infer.healing import HealingConstraint
from genmodels.infer.repetition import MAX_NGRAM, MAX_PENALTY, no_repeat_ngram, repetition_penalty
from genmodels.infer.stopping import StopRules, stop_index
from genmodels.infer.threads import single_threaded
from genmodels.tokenizers.text import StreamDecoder


@dataclass(frozen=True)
class TextSteering:
    """Text-only steering of Generate: token healing, stop rules and repetition control (defaults: off,
    healing on)."""

    end_of_line: bool = option(False, "text: stop at the end of the line")
    end_of_speech: bool = option(False, "text: stop at the end of the speech (a blank line or a speaker's name)")
    sentences: int = option(0, "text: stop after this many sentences", shown="0: off")
    repetition_penalty: float = option(
        1.0, f"text: divide the logits of tokens already seen by this (1 to {MAX_PENALTY:g})", shown="1: off"
    )
    no_repeat_ngram: int = option(
        0, f"text: never repeat an n-gram of this many tokens (up to {MAX_NGRAM})", shown="0: off"
    )
    heal: bool = option(True, "text: token healing (a prompt ending mid-word continues that word)", flag="--no-heal")

    @property
    def stop_rules(self) -> StopRules:
        return StopRules(self.end_of_line, self.end_of_speech, self.sentences)

    def checked(self) -> TextSteering:
        """These settings when valid; SettingsError otherwise."""
        self.stop_rules.checked()
        p, n = self.repetition_penalty, self.no_repeat_ngram
        if isinstance(p, bool) or not isinstance(p, (int, float)) or math.isnan(p) or not 1 <= p <= MAX_PENALTY:
            raise SettingsError(f"The repetition penalty must be from 1 (off) to {MAX_PENALTY:g}; got {p}")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_NGRAM:
            raise SettingsError(
                f"The no-repeat n-gram size must be a whole number from 0 (off) to {MAX_NGRAM}; got {n!r}"
            )
        return dataclasses.replace(self, repetition_penalty=float(p))


WORD_TAIL = 12  # tokens past the length that may finish the word the length cut


def is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "'’-"


class SteeredRows:
    """Per-candidate bookkeeping of ``TextSteering`` inside the sampling loop: masks the logits (healing,
    repetition), hides the prompt characters that healing spells again, and cuts each row where a stop
    rule fires (a stopped row shows nothing more; the loop ends once every row has stopped)."""

    def __init__(self, steering: TextSteering, prompt: str, ids: list[int], n: int, healing: HealingConstraint | None):
        self.steering, self.prompt, self.rules = steering, prompt, steering.stop_rules
        self.healing = healing
        self.history = [list(ids) for _ in range(n)]
        self.skip = [len(healing.removed_text) if healing is not None else 0] * n
        self.shown = [""] * n
        self.done = [False] * n

    @property
    def finished(self) -> bool:
        return all(self.done)

    def logits(self, logits: torch.Tensor) -> torch.Tensor:
        st = self.steering
        if self.healing is not None and self.healing.active:
            logits = self.healing.apply(logits)
        if st.repetition_penalty != 1:
            logits = repetition_penalty(logits, self.history, st.repetition_penalty)
        if st.no_repeat_ngram:
            logits = no_repeat_ngram(logits, self.history, st.no_repeat_ngram)
        return logits

    def advance(self, tokens: torch.Tensor) -> None:
        if self.healing is not None and self.healing.active:
            self.healing.advance(tokens)
        for h, t in zip(self.history, tokens.tolist(), strict=True):
            h.append(t)

    def at_length(self) -> None:
        """The length is reached: rows that stand at a word's end stop; the others may finish their word."""
        for i in range(len(self.done)):
            text = self.prompt + self.shown[i]
            if not text or not is_word_char(text[-1]):
                self.done[i] = True

    def word_tail(self, deltas: list[str]) -> list[str]:
        """Past the length: a row's delta that starts a new word (or a space, a mark) ends the row unshown;
        one that goes on with the word is shown, and the row ends once its text stands at a word's end."""
        out = []
        for i, delta in enumerate(deltas):
            if not self.done[i] and delta and not is_word_char(delta[0]):
                self.done[i] = True
            out.append(delta)
        return out

    def end_words(self) -> None:
        for i in range(len(self.done)):
            if self.shown[i] and not is_word_char(self.shown[i][-1]):
                self.done[i] = True

    def visible(self, deltas: list[str]) -> list[str]:
        """The part of each row's decoded delta that is new text before any stop."""
        out = []
        for i, delta in enumerate(deltas):
            if self.done[i]:
                out.append("")
                continue
            if self.skip[i]:
                cut = min(self.skip[i], len(delta))
                self.skip[i] -= cut
                delta = delta[cut:]
            before = len(self.shown[i])
            self.shown[i] += delta
            if self.rules.active and delta:
                at = stop_index(self.shown[i], self.rules, self.prompt)
                if at is not None:
                    self.shown[i] = self.shown[i][: max(at, before)]
                    self.done[i] = True
            out.append(self.shown[i][before:])
        return out


@dataclass
class TextResult:
    prompt: str
    continuation: str
    tokens: list[tuple[str, float]] = field(default_factory=list)  # (text piece, model probability)


class TextStream:
    """Streaming text generation: iterate for deltas; ``results`` is filled when the stream ends."""

    def __init__(
        self,
        g: Any,  # the Sampler that runs the model
        prompt: str,
        ids: list[int],
        length: int,
        s: Settings,
        steering: TextSteering | None = None,
        healing: HealingConstraint | None = None,
    ):
        self.g, self.prompt, self.ids, self.length, self.s = g, prompt, ids, length, s
        self.steering, self.healing = steering or TextSteering(heal=False), healing
        self.results: list[TextResult] = []

    def __iter__(self) -> Iterator[list[str]]:
        with single_threaded():  # token-by-token steps of a few rows: threads would wait on each other
            yield from self._deltas()

    def _deltas(self) -> Iterator[list[str]]:
        g, s = self.g, self.s
        gen = CandidateRandom(s.seed, s.n)
        logits, state = g._prefill(self.ids, s.n)
        steer = self.steer = SteeredRows(self.steering, self.prompt, self.ids, s.n, self.healing)
        decoders = [StreamDecoder(g.tok, self.ids) for _ in range(s.n)]
        pieces: list[list[tuple[str, float]]] = [[] for _ in range(s.n)]
        pending: list[float | None] = [None] * s.n  # lowest probability of tokens not yet shown as text
        for step in range(self.length + WORD_TAIL if self.length else 0):
            if step == self.length:
                steer.at_length()
            if steer.finished:
                break
            tokens, probs = choose(steer.logits(logits).masked_fill(g._banned, -math.inf), s, gen)
            steer.advance(tokens)
            raw = [d.push(t) for d, t in zip(decoders, tokens.tolist(), strict=True)]
            if step >= self.length:  # finishing the word the length cut, never starting another
                raw = steer.word_tail(raw)
            deltas = steer.visible(raw)
            if step >= self.length:
                steer.end_words()
            for i, (delta, p) in enumerate(zip(deltas, probs.tolist(), strict=False)):
                p = p if pending[i] is None else min(p, pending[i])
                if delta:
                    pieces[i].append((delta, p))
                    pending[i] = None
                else:
                    pending[i] = p
            yield deltas
            logits, state = g.model.step(tokens, state)
        tails = steer.visible([d.flush() for d in decoders])
        for i, t in enumerate(tails):
            if t:
                pieces[i].append((t, pending[i] or 0.0))
        if any(tails):
            yield tails
        self.results = [TextResult(self.prompt, steer.shown[i], pieces[i]) for i in range(s.n)]
