"""Probabilities of single positions of a fitted KneserNey model, for checking it by hand in tests."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from genmodels.eval.ngram import KneserNey, _as_list, _as_list_or_str


class _Unseen:
    """A symbol equal to nothing in any vocabulary."""

    def __hash__(self) -> int:
        return id(self)


def logprob(m: KneserNey, seq: Sequence[Hashable], start: int = 0) -> float:
    """Total natural-log probability of ``seq[start:]``, each symbol given up to order-1 previous
    symbols of ``seq`` (the context restarts at the beginning of ``seq``)."""
    p, _ = m._position_probs([_as_list_or_str(seq)])
    return float(np.log(p[start:]).sum())


def prob(m: KneserNey, context: Sequence[Hashable], symbol: Hashable) -> float:
    """p(symbol | last order-1 symbols of context)."""
    return float(m._position_probs([_as_list(context) + [symbol]])[0][-1])


def distribution(m: KneserNey, context: Sequence[Hashable]) -> dict[Hashable, float]:
    """p(w | context) for every training symbol w, plus key ``None`` for the total mass of the
    vocab_size - len(symbols) other slots of the floor (the values sum to 1)."""
    ctx = _as_list(context)
    probs, _ = m._position_probs([ctx + [w] for w in m.symbols] + [ctx + [_Unseen()]])
    ends = np.cumsum([len(ctx) + 1] * (len(m.symbols) + 1)) - 1
    out = {w: float(probs[e]) for w, e in zip(m.symbols, ends[:-1], strict=False)}
    out[None] = float(probs[ends[-1]]) * (m.vocab_size - len(m.symbols))
    return out
