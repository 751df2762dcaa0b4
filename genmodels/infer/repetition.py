"""Repetition control as logit processors on a (B, V) batch: pure functions of the logits and each row's
token history (prompt and generated ids), testable on hand-built logits.

- ``repetition_penalty``: CTRL's penalty (Keskar et al. 2019, as most generators apply it): the logit of
  every token already in the row's history is divided by ``penalty`` where positive and multiplied by
  it where negative, so a penalty above 1 always makes a repeat less likely.
- ``no_repeat_ngram``: a token that would complete an n-gram already present in the history gets
  −inf (``size`` 0: off; 1: no token twice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genmodels.core.errors import SettingsError

MAX_PENALTY = 10.0
MAX_NGRAM = 32


def _histories(history, batch: int) -> list[torch.Tensor]:
    if isinstance(history, torch.Tensor):
        empty = history.dim() == 0 or history.numel() == 0
        rows = [history.new_zeros(0)] * batch if empty else list(history.reshape(batch, -1))
    else:
        rows = [torch.as_tensor(list(h), dtype=torch.long) for h in history]
    if len(rows) != batch:
        raise SettingsError(f"{len(rows)} token histories for {batch} rows of logits")
    return [r.long().reshape(-1) for r in rows]


def repetition_penalty(
    logits: torch.Tensor, history: Sequence[Sequence[int]] | torch.Tensor, penalty: float
) -> torch.Tensor:
    """CTRL repetition penalty; ``penalty`` 1 leaves the logits unchanged."""
    if not isinstance(penalty, (int, float)) or math.isnan(penalty) or not 0 < penalty <= MAX_PENALTY:
        raise SettingsError(
            f"The repetition penalty must be above 0 and at most {MAX_PENALTY} (1 = off); got {penalty}"
        )
    if penalty == 1:
        return logits
    seen = torch.zeros_like(logits, dtype=torch.bool)
    for b, h in enumerate(_histories(history, logits.size(0))):
        h = h[(h >= 0) & (h < logits.size(1))]
        if h.numel():
            seen[b, h] = True
    scaled = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, scaled, logits)


def no_repeat_ngram(logits: torch.Tensor, history: Sequence[Sequence[int]] | torch.Tensor, size: int) -> torch.Tensor:
    """Ban every token that would repeat an n-gram of length ``size`` from the row's history."""
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_NGRAM:
        raise SettingsError(
            f"The no-repeat n-gram size must be a whole number from 0 (off) to {MAX_NGRAM}; got {size!r}"
        )
    if size == 0:
        return logits
    banned = torch.zeros_like(logits, dtype=torch.bool)
    for b, h in enumerate(_histories(history, logits.size(0))):
        if h.numel() < size:
            continue
        if size == 1:
            nxt = h
        else:
            prefix = h[-(size - 1) :]
            windows = h[:-1].unfold(0, size - 1, 1)  # every (size-1)-gram that has a next token
            nxt = h[size - 1 :][(windows == prefix).all(1)]
        nxt = nxt[(nxt >= 0) & (nxt < logits.size(1))]
        banned[b, nxt] = True
    return logits.masked_fill(banned, -math.inf)
