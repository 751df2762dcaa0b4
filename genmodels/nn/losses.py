"""Losses shared by training, evaluation and dynamic evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def start_ids(starts: int | Sequence[int]) -> tuple[int, ...]:
    """The document-start tokens (``<bos>``, or a melody's style tokens) as a tuple, from one id or several."""
    return (int(starts),) if isinstance(starts, int) else tuple(int(s) for s in starts)


def start_targets(targets: torch.Tensor, starts: int | Sequence[int]) -> tuple[torch.Tensor, int]:
    """``targets`` with every document-start token (``<bos>``, or a melody's style token, which is given,
    never predicted) written as the first of ``starts``; and that token, the one to ignore."""
    starts = start_ids(starts)
    if len(starts) > 1:
        targets = targets.masked_fill(torch.isin(targets, torch.tensor(starts, device=targets.device)), starts[0])
    return targets, starts[0]


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, starts: int | Sequence[int]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over targets, skipping document starts (``starts``); (loss, targets counted)."""
    targets, ignore = start_targets(targets, starts)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=ignore, reduction="sum"
    )
    return loss, int((targets != ignore).sum())


def split_tunes(stream, starts: int | Sequence[int]) -> list[list[int]]:
    """Cut a 1-D stream of concatenated tunes into tunes, each starting at a document-start token."""
    ids = stream.tolist() if hasattr(stream, "tolist") else list(stream)
    starts = set(start_ids(starts))
    tunes: list[list[int]] = []
    for t in ids:
        if t in starts or not tunes:
            tunes.append([])
        tunes[-1].append(int(t))
    return tunes
