"""Losses shared by training, evaluation and dynamic evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_id: int) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over targets, skipping document starts (``<bos>``); (loss, targets counted)."""
    loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=ignore_id, reduction="sum"
    )
    return loss, int((targets != ignore_id).sum())
