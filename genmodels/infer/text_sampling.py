"""Continuing text: a prompt's token ids (healed where it ends mid-word, cut to the context window), streamed
continuations with stop rules and repetition control, several candidates, the next token's probabilities, and a
copy of the model adapted to the prompt."""

from __future__ import annotations

import copy
from typing import Self

import torch

from genmodels.core.errors import SeedError, SettingsError
from genmodels.infer.decoding import (
    CONTEXT_TOKENS,
    MAX_PROMPT_CHARS,
    MAX_TEXT_TOKENS,
    TEXT_LENGTH,
    Settings,
)
from genmodels.infer.dynamic import adapted_copy
from genmodels.infer.healing import HealingConstraint, prepare_prompt
from genmodels.infer.text_rows import TextResult, TextSteering, TextStream


class TextSampling:
    """Text: the half of ``Sampler`` that continues prompts."""

    def _text_ids(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise SeedError("The prompt must be text")
        if len(text) > MAX_PROMPT_CHARS:
            raise SeedError(f"The prompt is {len(text):,} characters; the limit is {MAX_PROMPT_CHARS:,}")
        ids = self.tok.encode(text)
        return [self.tok.bos_id] + ids[-CONTEXT_TOKENS:]

    def adapted_to(self, text: str) -> Self:
        """A sampler over a private copy of the model adapted to ``text`` by dynamic evaluation (its last
        MAX_ADAPT_TOKENS tokens); this sampler and its model are unchanged, so nothing one user's text
        teaches the model reaches anyone else."""
        twin = copy.copy(self)
        twin.model = adapted_copy(self.model, self._text_ids(text), self.tok.bos_id)
        twin.model.prepare_step()
        return twin

    def prompt_was_cut(self, text: str) -> bool:
        """True when the prompt is longer than the context window and only its end is used."""
        return len(self.tok.encode(text[-(MAX_PROMPT_CHARS):])) > CONTEXT_TOKENS

    # text ---------------------------------------------------------------------------------------
    def stream_text(
        self,
        prompt: str,
        length: int = TEXT_LENGTH,
        settings: Settings = Settings(),
        steering: TextSteering = TextSteering(),
    ) -> TextStream:
        """An iterator over per-step text deltas (one string per candidate); once it is exhausted,
        its ``results`` hold the full ``TextResult`` of each candidate (with token probabilities).
        ``steering``: token healing, stop rules and repetition control."""
        self._require("text")
        s = settings.checked(self.vocab_size)
        if not isinstance(length, int) or not 0 <= length <= MAX_TEXT_TOKENS:
            raise SettingsError(f"Length must be from 0 to {MAX_TEXT_TOKENS} tokens; got {length}")
        steering = steering.checked()
        if steering.heal:
            ids, healing = self._healed_text_ids(prompt, s.n)
            return TextStream(self, prompt, ids, length, s, steering, healing)
        return TextStream(self, prompt, self._text_ids(prompt), length, s, steering)

    def _healed_text_ids(self, prompt: str, n: int) -> tuple[list[int], HealingConstraint]:
        """BOS + the healed prompt's last CONTEXT_TOKENS tokens, and the constraint that re-spells the rest."""
        self._text_ids(prompt)  # the same checks (type, length) as without healing
        ids, healing = prepare_prompt(self.tok, prompt, batch=n)
        return [self.tok.bos_id] + ids[-CONTEXT_TOKENS:], healing

    def complete(
        self,
        prompt: str,
        length: int = TEXT_LENGTH,
        settings: Settings = Settings(),
        steering: TextSteering = TextSteering(),
    ) -> list[TextResult]:
        """``settings.n`` continuations of ``prompt``, with each generated token's probability."""
        stream = self.stream_text(prompt, length, settings, steering)
        for _ in stream:
            pass
        return stream.results

    def next_token_probs(self, prompt: str | list[int], k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens after ``prompt`` (text, or token ids) and their probabilities."""
        ids = self._text_ids(prompt) if isinstance(prompt, str) else list(prompt)
        logits, _ = self._prefill(ids, 1)
        probs = torch.softmax(logits[0], -1)
        top = torch.topk(probs, min(k, probs.numel()))
        return [
            (self.domain.token_label(self.tok, int(i)), float(p)) for p, i in zip(top.values, top.indices, strict=False)
        ]
