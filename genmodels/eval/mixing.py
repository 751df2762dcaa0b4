"""Scoring the members of a mixture on a stream and fitting their shares (expectation-maximisation)."""

from __future__ import annotations

import math

import torch
from torch import nn

from genmodels.learn.data import window
from genmodels.learn.steps import eval_rows


@torch.no_grad()
def token_logprobs(
    model: nn.Module, stream: torch.Tensor, bos_id: int, rows: int = 16, bptt: int = 256
) -> torch.Tensor:
    """The log-probability the model gives each target of ``stream`` (every token but the first and the
    ``<bos>`` marks), read as ``train.evaluate`` reads it."""
    model.eval()
    data = eval_rows(stream, max(1, min(rows, stream.numel() // 2)), bos_id)
    state, out = None, []
    for i in range(0, data.size(1) - 1, bptt):
        x, y = window(data, i, bptt)
        logits, state = model(x, state)
        lp = torch.log_softmax(logits.float(), -1).gather(-1, y[..., None]).squeeze(-1)
        out.append(lp[y != bos_id])
    return torch.cat(out)


def fit_shares(logprobs: list[torch.Tensor], iterations: int = 100) -> list[float]:
    """The mixture shares that maximise the likelihood of the tokens the members scored (``logprobs``:
    one tensor per member, the same tokens), by expectation-maximisation from equal shares."""
    lp = torch.stack(logprobs).double()  # (members, tokens)
    log_w = torch.full((lp.size(0), 1), -math.log(lp.size(0)), dtype=torch.double)
    for _ in range(iterations):
        joint = lp + log_w
        resp = (joint - torch.logsumexp(joint, 0, keepdim=True)).exp()  # each member's share of each token
        log_w = resp.mean(1, keepdim=True).clamp_min(1e-9).log()
    return [max(round(float(w), 4), 1e-4) for w in log_w.exp().squeeze(1)]  # a share is never 0
