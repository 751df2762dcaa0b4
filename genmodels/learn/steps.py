"""One optimiser step on a batch, and evaluation over a whole stream in rows."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genmodels.core.registry import Domain
from genmodels.learn.data import window
from genmodels.nn.losses import masked_loss, start_ids
from genmodels.nn.rnn import RNNLanguageModel, State


def train_step(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    hidden: State | None,
    starts: int | Sequence[int],
    clip: float,
    precision: str = "fp32",
) -> tuple[float, State | None]:
    """One optimiser step on a (B, T) batch; returns (mean loss, new hidden) or (loss, None) if the
    loss was not finite (then nothing is updated). ``precision="bf16"``: the forward pass and the loss
    run under bf16 autocast; the weights, their gradients, the optimiser state and the loss stay fp32."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits, new_hidden = net(x, hidden)
        loss_sum, n = masked_loss(logits, y, starts)
    loss = loss_sum.float() / max(n, 1)
    if precision == "bf16" and new_hidden is not None:  # the carried state is kept (and saved) in fp32
        new_hidden = tuple(h.float() for h in new_hidden) if isinstance(new_hidden, tuple) else new_hidden.float()
    opt.zero_grad(set_to_none=True)
    loss.backward()  # always, so DDP processes stay in step; the (averaged) norm decides for all of them
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
    if not (torch.isfinite(loss) and torch.isfinite(norm)):
        opt.zero_grad(set_to_none=True)
        return float(loss.detach()), None
    opt.step()
    return float(loss.detach()), new_hidden


def eval_rows(stream: torch.Tensor, rows: int, pad_id: int) -> torch.Tensor:
    """(rows, L + 1) slices of ``stream`` for evaluation: row r starts where row r - 1 ends (they share
    that token), so every token after the first is a target exactly once; the end is padded with
    ``pad_id`` (``<bos>``: never a target)."""
    n = stream.numel() - 1
    width = -(-n // rows)
    pad = stream.new_full((rows * width + 1 - stream.numel(),), pad_id)
    return torch.cat([stream, pad]).unfold(0, width + 1, width)


@torch.no_grad()
def evaluate(
    model: RNNLanguageModel,
    stream: torch.Tensor,
    units: int,
    domain: Domain,
    starts: int | Sequence[int],
    rows: int = 16,
    bptt: int = 256,
    max_tokens: int = 0,
) -> dict:
    """The domain metric over a whole stream (total nats ÷ units), in eval mode."""
    was_training = model.training
    model.eval()
    if max_tokens and stream.numel() > max_tokens:
        units = round(units * max_tokens / stream.numel())
        stream = stream[:max_tokens]
    rows = max(1, min(rows, stream.numel() // 2))
    data = eval_rows(stream, rows, start_ids(starts)[0])
    state, nats, count = None, 0.0, 0
    for i in range(0, data.size(1) - 1, bptt):
        x, y = window(data, i, bptt)
        logits, state = model(x, state)
        loss, n = masked_loss(logits, y, starts)
        nats += float(loss)
        count += n
    # Every token after the first is a target once (eval_rows), so the units are those of the stream.
    model.train(was_training)
    return {"nats": nats, "tokens": count, "units": units, "value": domain.nats_to_metric(nats, units)}
