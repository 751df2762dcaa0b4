"""The cache weights of a melody checkpoint (``genmodels.nn.cache``), fitted by maximum likelihood on the
validation split, and the score of tunes with them.

Each tune is read whole from a fresh state; for every target the network's probability of the true token
and each applicable copy's share of it are kept, so the weights are fitted (Adam on their logarithms, a
few hundred steps over every target at once) without running the network again. ``score_tunes`` gives
nats per note of the same reading with and without the copies, so the two figures differ only by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from genmodels.core.errors import DataError
from genmodels.io.checkpoint import Checkpoint, load_checkpoint, update_config
from genmodels.nn.cache import BAR_DISTANCES, PREFIX_BUCKETS, SUFFIX_BUCKETS, CacheWeights, copy_features
from genmodels.nn.losses import split_tunes, start_ids

KINDS = 1 + len(BAR_DISTANCES)
WIDTH = max(len(SUFFIX_BUCKETS), len(PREFIX_BUCKETS))


class Targets:
    """Every target of some tunes: the network's probability of it (``p``), which copies applied in which
    bucket (``active``, targets × kinds × buckets) and their share of it (``share``)."""

    def __init__(self, model, tok, tunes: Sequence[Sequence[int]]):
        starts = set(start_ids(tok.start_ids))
        p, active, share = [], [], []
        model.eval()
        for ids in tunes:
            if len(ids) < 2:
                continue
            with torch.inference_mode():
                logits, _ = model(torch.tensor([list(ids)], dtype=torch.long))
                logp = torch.log_softmax(logits[0].float(), -1)
            for t, copies in copy_features(ids, tok.bar_id, starts):
                a = torch.zeros(KINDS, WIDTH)
                q = torch.zeros(KINDS, WIDTH)
                for c in copies:
                    a[c.kind, c.bucket] = 1.0
                    q[c.kind, c.bucket] = c.votes.get(ids[t], 0.0)
                p.append(float(logp[t - 1, ids[t]].exp()))
                active.append(a)
                share.append(q)
        if not p:
            raise DataError("No tunes to fit or score the cache on")
        self.p = torch.tensor(p, dtype=torch.float64)
        self.active = torch.stack(active).double()
        self.share = torch.stack(share).double()

    def nats(self, weights: torch.Tensor | None) -> torch.Tensor:
        """Total nats of the targets with ``weights`` (kinds × buckets), or the network's alone."""
        if weights is None:
            return -self.p.log().sum()
        w = weights.double() * self.active
        return -((self.p + (w * self.share).sum((1, 2))) / (1 + w.sum((1, 2)))).log().sum()


def fit_weights(targets: Targets, steps: int = 400, lr: float = 0.1) -> CacheWeights:
    """The weights that maximise the likelihood of ``targets``; a copy never seen in a bucket gets 0."""
    log_w = torch.full((KINDS, WIDTH), -3.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([log_w], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = targets.nats(log_w.exp()) / len(targets.p)
        loss.backward()
        opt.step()
    seen = targets.active.sum(0) > 0
    w = torch.where(seen, log_w.detach().exp(), torch.zeros_like(log_w)).tolist()
    return CacheWeights(tuple(w[0][: len(SUFFIX_BUCKETS)]), tuple(tuple(r[: len(PREFIX_BUCKETS)]) for r in w[1:]))


def weight_tensor(weights: CacheWeights) -> torch.Tensor:
    return torch.tensor(weights.table(), dtype=torch.float64)


def score_tunes(model, tok, tunes: Sequence[Sequence[int]], notes: int, weights: CacheWeights | None) -> dict:
    """Nats per note of ``tunes`` (each read whole from a fresh state) by the network alone and, with
    ``weights``, with the copies."""
    if notes <= 0:
        raise DataError("No notes to score")
    targets = Targets(model, tok, tunes)
    out = {"network": round(float(targets.nats(None)) / notes, 4), "notes": notes, "tokens": len(targets.p)}
    if weights is not None:
        out["with_cache"] = round(float(targets.nats(weight_tensor(weights))) / notes, 4)
    return out


def fit_checkpoint_cache(checkpoint: Checkpoint | str | Path, data, source: str = "validation split") -> dict:
    """Fit the cache weights of a checkpoint (loaded, or its folder) on ``data``'s validation split (a TokenData
    of its tokenizer) and save them in its config; returns the validation nats per note without and with them."""
    c = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    targets = Targets(c.model, c.tokenizer, split_tunes(data.valid, c.tokenizer.start_ids))
    weights = fit_weights(targets)
    report = {
        "data": source,
        "notes": data.valid_units,
        "network": round(float(targets.nats(None)) / data.valid_units, 4),
        "with_cache": round(float(targets.nats(weight_tensor(weights))) / data.valid_units, 4),
    }
    update_config(c.path, cache=weights.to_config(), cache_fit=report)
    return report
