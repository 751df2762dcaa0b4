"""A tune's memory of itself beside the network: the next token may copy what followed the same context
earlier in the same tune.

A recurrent network hears a part come back but copies it loosely; tunes repeat exactly (a phrase of bar 1
again in bar 5, a bar the same as the one before). Two kinds of copy, mixed with the network's
distribution ``p``:

- **suffix** (a cache model: Kuhn & De Mori 1990; Grave et al. 2017's neural cache): the earlier places in
  the tune whose preceding tokens match the most recent ones longest; each votes for the token that
  followed it. Its weight grows with the length of the match.
- **bar lookback** (after Magenta's Lookback RNN, which shows the network the events one and two bars
  back): for a bar ``d`` bars back (d = 1, 2, 4, 8), when the current bar so far is that bar's beginning
  token for token, the token that came next there. Its weight depends on ``d`` and on how much of the
  bar already matches.

The next-token distribution is ``(p + Σ w_c q_c) / (1 + Σ w_c)`` over the copies ``c`` that apply now, so
with no match it is the network's. The weights are fitted by maximum likelihood on held-out tunes
(``genmodels.learn.cache_fit``) and saved in the checkpoint's config; a checkpoint without them samples
from the network alone. Everything here is a pure function of a token history: no state is shared.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from genmodels.core.errors import CheckpointError

SUFFIX_BUCKETS = (1, 2, 3, 5, 9, 17, 33)  # lower bounds of the suffix match length, in tokens
PREFIX_BUCKETS = (0, 1, 3, 5, 9)  # lower bounds of the tokens of a bar that already match
BAR_DISTANCES = (1, 2, 4, 8)  # bars back
MAX_WEIGHT = 1e4


def _bucket(bounds: Sequence[int], n: int) -> int:
    return bisect_right(bounds, n) - 1


@dataclass(frozen=True)
class CacheWeights:
    """Weight of each copy by bucket: ``suffix[b]`` by match length, ``bars[i][b]`` for ``BAR_DISTANCES[i]``
    by the bar's matched tokens."""

    suffix: tuple[float, ...]
    bars: tuple[tuple[float, ...], ...]

    def to_config(self) -> dict:
        return {
            "suffix_buckets": list(SUFFIX_BUCKETS),
            "prefix_buckets": list(PREFIX_BUCKETS),
            "bar_distances": list(BAR_DISTANCES),
            "suffix": [round(w, 5) for w in self.suffix],
            "bars": [[round(w, 5) for w in row] for row in self.bars],
        }

    @classmethod
    def from_config(cls, cfg: dict | None) -> CacheWeights | None:
        """The weights a config records, None where it has none; a CheckpointError where they are malformed."""
        if cfg is None:
            return None
        try:
            same = (
                tuple(cfg["suffix_buckets"]) == SUFFIX_BUCKETS
                and tuple(cfg["prefix_buckets"]) == PREFIX_BUCKETS
                and tuple(cfg["bar_distances"]) == BAR_DISTANCES
            )
            suffix = tuple(float(w) for w in cfg["suffix"])
            bars = tuple(tuple(float(w) for w in row) for row in cfg["bars"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"The config's cache weights are malformed: {e}") from None
        shapes = len(suffix) == len(SUFFIX_BUCKETS) and len(bars) == len(BAR_DISTANCES)
        shapes = shapes and all(len(row) == len(PREFIX_BUCKETS) for row in bars)
        values = [*suffix, *(w for row in bars for w in row)]
        if not (same and shapes and all(math.isfinite(w) and 0 <= w <= MAX_WEIGHT for w in values)):
            raise CheckpointError(
                "The config's cache weights do not fit this version's buckets or are out of range: fit them again "
                "(python -m genmodels fit-cache CHECKPOINT)"
            )
        return cls(suffix, bars)

    def table(self) -> list[list[float]]:
        """One row per copy (suffix, then each bar distance), padded to a common width: ``Copies.weights``'s
        index."""
        width = max(len(SUFFIX_BUCKETS), len(PREFIX_BUCKETS))
        rows = [list(self.suffix), *(list(r) for r in self.bars)]
        return [r + [0.0] * (width - len(r)) for r in rows]


@dataclass(frozen=True)
class Copy:
    """One copy that applies now: which (0 suffix, i bar distance ``BAR_DISTANCES[i-1]``), its bucket, and
    the tokens it votes for with their shares."""

    kind: int
    bucket: int
    votes: dict[int, float]


class History:
    """A tune's tokens so far, with what the copies need kept up to date token by token: the suffix match
    length of every earlier place (``match[j]``: how many tokens before ``j`` equal the last ones) and
    where each bar starts. Each call site owns its histories (one per row): nothing here is shared."""

    def __init__(self, bar_id: int, ids: Sequence[int] = ()):
        self.bar_id = bar_id
        self.ids: list[int] = []
        self._arr = np.zeros(64, dtype=np.int64)
        self.match = np.zeros(1, dtype=np.int32)  # match[j], j = 0..len(ids): common suffix of ids[:j], ids
        self.bar_starts: list[int] = []  # index of the first token after each bar token
        for t in ids:
            self.add(t)

    def add(self, token: int) -> None:
        t = len(self.ids)
        new = np.zeros(t + 2, dtype=np.int32)
        if t:
            new[1 : t + 1] = np.where(self._arr[:t] == token, self.match[:t] + 1, 0)
        self.match = new
        if t >= self._arr.size:
            self._arr = np.concatenate([self._arr, np.zeros_like(self._arr)])
        self._arr[t] = token
        self.ids.append(int(token))
        if token == self.bar_id:
            self.bar_starts.append(t + 1)

    def copies(self) -> list[Copy]:
        """The copies that apply to the next token."""
        out = []
        t = len(self.ids)
        if t >= 2:
            m = self.match[1:t]  # places 1..t-1: each has a next token ids[j]
            longest = int(m.max())
            if longest:
                nxt = self._arr[1:t][m == longest].tolist()
                votes = {v: k / len(nxt) for v, k in Counter(nxt).items()}
                out.append(Copy(0, _bucket(SUFFIX_BUCKETS, longest), votes))
        bar = len(self.bar_starts) - 1
        if bar >= 1:
            now = self.ids[self.bar_starts[-1] :]
            for i, d in enumerate(BAR_DISTANCES, 1):
                if bar - d < 0:
                    break
                s = self.bar_starts[bar - d]
                if s + len(now) < t and self.ids[s : s + len(now)] == now:
                    out.append(Copy(i, _bucket(PREFIX_BUCKETS, len(now)), {self.ids[s + len(now)]: 1.0}))
        return out


def _weighed(copies: Sequence[Copy], table: list[list[float]]) -> tuple[float, list[tuple[int, float]]]:
    """``1 + Σ w`` over the copies that apply, and each of their votes as (token, w·q)."""
    total, votes = 1.0, []
    for c in copies:
        w = table[c.kind][c.bucket]
        if w > 0:
            total += w
            votes += [(v, w * q) for v, q in c.votes.items()]
    return total, votes


def mix(probs: torch.Tensor, copies: Sequence[Sequence[Copy]], weights: CacheWeights) -> torch.Tensor:
    """Each row of ``probs`` (B, V) mixed with its copies: ``(p + Σ w q) / (1 + Σ w)`` (one scatter for the
    whole batch)."""
    table = weights.table()
    rows, cols, vals = [], [], []
    totals = []
    for b, row in enumerate(copies):
        total, votes = _weighed(row, table)
        totals.append(total)
        for v, x in votes:
            if 0 <= v < probs.size(1):
                rows.append(b)
                cols.append(v)
                vals.append(x)
    if not rows:
        return probs
    out = probs.detach().cpu().numpy().copy()  # small (B, V): numpy's per-call cost is a tenth of torch's
    np.add.at(out, (np.array(rows), np.array(cols)), np.array(vals, dtype=out.dtype))
    out /= np.array(totals, dtype=out.dtype)[:, None]
    return torch.from_numpy(out)


def mixed_log_probs(logits: torch.Tensor, histories: Sequence[History], weights: CacheWeights | None) -> torch.Tensor:
    """Log-probabilities of the next token for each row: the network's alone without weights, else mixed
    with each row's copies (a logit processor's input: −inf stays out of reach)."""
    logp = torch.log_softmax(logits.float(), -1)
    if weights is None:
        return logp
    copies = [h.copies() for h in histories]
    if not any(copies):
        return logp
    return torch.log(mix(logp.exp(), copies, weights))


def copy_features(
    ids: Sequence[int], bar_id: int, starts: Sequence[int] = (), start: int = 1
) -> list[tuple[int, list[Copy]]]:
    """For each target of a tune from index ``start`` on (every token that is not a document start): (its
    index, the copies that applied to it): the rows ``cache_fit`` fits on and scoring reads."""
    h = History(bar_id, ids[:start])
    rows = []
    for t in range(start, len(ids)):
        if ids[t] not in starts:
            rows.append((t, h.copies()))
        h.add(ids[t])
    return rows


def target_log_probs(
    logp: torch.Tensor, ids: Sequence[int], start: int, bar_id: int, weights: CacheWeights
) -> torch.Tensor:
    """log p(ids[t] | ids[:t]) for t = start..len(ids)-1, mixed with the copies, from the network's
    log-probabilities ``logp`` (row t-1 predicts ids[t]): teacher-forced scoring with the cache."""
    table = weights.table()
    out = []
    for t, copies in copy_features(ids, bar_id, start=start):
        total, votes = _weighed(copies, table)
        p = float(logp[t - 1, ids[t]].exp()) + sum(x for v, x in votes if v == ids[t])
        out.append(math.log(p / total) if p > 0 else -math.inf)
    return torch.tensor(out, dtype=torch.float64)
