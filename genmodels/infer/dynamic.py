"""Dynamic evaluation (Krause et al., 2018): the model adapts to the text in front of it.

While reading a document, the model scores a segment of ``segment`` tokens, then takes one gradient
step on that segment, and its weights decay back towards the trained ones:

    θ ← θ − lr · ∇loss(segment) + decay · (θ₀ − θ)

so the names and words of a new play become likely once they have appeared, and what was learnt from
one passage fades if it stops being useful. Every score is computed *before* the step on its own
segment: no token is predicted by weights that have seen it.

Two uses: ``dynamic_evaluate`` (``eval CK --dynamic``: test bits/char with adaptation, each document
starting again from the trained weights) and ``adapted_copy`` (the text page's "adapt to my text": a
copy of the model adapted to the last ``MAX_ADAPT_TOKENS`` tokens of a prompt; the shipped weights are
never touched, and every call makes its own copy, so one session's adaptation never reaches another).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genmodels.core.errors import SettingsError
from genmodels.nn.losses import masked_loss, start_ids
from genmodels.nn.rnn import RNNLanguageModel, State, detach_state

MAX_ADAPT_TOKENS = 1024  # the most tokens of a prompt the app adapts on (bounded work per request)


@dataclass(frozen=True)
class DynamicSettings:
    """Step size, decay towards the trained weights, and tokens per gradient step. The defaults were
    chosen on the first 20,000 validation tokens with text-gru (``python -m scripts.dynamic_tune text-gru
    --tokens 20000``: static 1.835, lr 0.03 → 1.784, 0.1 → 1.759, 0.2 → 1.773, 1.0 → 2.279 bits/char)."""

    lr: float = 0.1
    decay: float = 1e-3
    segment: int = 32

    def checked(self) -> DynamicSettings:
        if not (self.lr >= 0 and 0 <= self.decay <= 1 and 1 <= self.segment <= 4096):
            raise SettingsError(f"Dynamic evaluation needs lr >= 0, 0 <= decay <= 1, 1 <= segment <= 4096; got {self}")
        return self


class _Adapter:
    """The SGD-with-decay update on a model, remembering the trained weights θ₀."""

    def __init__(self, model: RNNLanguageModel, s: DynamicSettings):
        self.model, self.s = model, s
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.start = [p.detach().clone() for p in self.params]

    def reset(self) -> None:
        with torch.no_grad():
            for p, p0 in zip(self.params, self.start, strict=True):
                p.copy_(p0)

    def step(self, loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        with torch.no_grad():
            for p, g, p0 in zip(self.params, grads, self.start, strict=True):
                if g is not None:
                    p.add_(g, alpha=-self.s.lr)
                p.add_(p0 - p, alpha=self.s.decay)


def _read(
    adapter: _Adapter, ids: torch.Tensor, starts: int | Sequence[int], state: State | None
) -> tuple[float, int, State]:
    """Score ``ids`` (1-D) segment by segment, stepping after each; (nats, tokens scored, last state)."""
    _model, seg = adapter.model, adapter.s.segment
    nats, count = 0.0, 0
    with torch.enable_grad():  # callers may sit inside no_grad (sampling); adaptation needs gradients
        for i in range(0, ids.numel() - 1, seg):
            nats, count, state = _segment(adapter, ids[i : i + seg + 1], starts, state, nats, count)
    return nats, count, state


def _segment(
    adapter: _Adapter, piece: torch.Tensor, starts: int | Sequence[int], state: State | None, nats: float, count: int
):
    """Score one segment (its last token is only a target), then step on it."""
    x, y = piece[:-1][None], piece[1:][None]
    logits, new_state = adapter.model(x, state)
    loss, n = masked_loss(logits, y, starts)
    if adapter.s.lr > 0 and n:
        adapter.step(loss / n)
    return nats + float(loss.detach()), count + n, detach_state(new_state)


def documents(stream: torch.Tensor, starts: int | Sequence[int]) -> list[torch.Tensor]:
    """The stream cut at each document start (``<bos>``, a melody's style token; each piece starts with one)."""
    first = torch.isin(stream, torch.tensor(start_ids(starts)))
    cuts = first.nonzero().flatten().tolist()
    if not cuts or cuts[0] != 0:
        cuts = [0, *cuts]
    ends = [*cuts[1:], stream.numel()]
    return [stream[a:b] for a, b in zip(cuts, ends, strict=True) if b - a > 1]


def dynamic_evaluate(
    model: RNNLanguageModel,
    stream: torch.Tensor,
    units: int,
    domain,
    starts: int | Sequence[int],
    settings: DynamicSettings = DynamicSettings(),
    max_tokens: int = 0,
) -> dict:
    """The domain metric over ``stream`` with dynamic evaluation, each document read in order from the
    trained weights (``settings.lr == 0`` gives the static figure under the same segmentation). The
    model's weights are the trained ones again when it returns."""
    s = settings.checked()
    if max_tokens and stream.numel() > max_tokens:
        units = round(units * max_tokens / stream.numel())
        stream = stream[:max_tokens]
    was_training = model.training
    model.eval()  # no dropout: adaptation follows the text, not noise
    adapter = _Adapter(model, s)
    nats, count = 0.0, 0
    try:
        for doc in documents(stream, starts):
            adapter.reset()
            n, c, _ = _read(adapter, doc, starts, None)
            nats, count = nats + n, count + c
    finally:
        adapter.reset()
        model.train(was_training)
    return {
        "nats": nats,
        "tokens": count,
        "units": units,
        "value": domain.nats_to_metric(nats, units),
        "lr": s.lr,
        "decay": s.decay,
        "segment": s.segment,
    }


def adapted_copy(
    model: RNNLanguageModel, ids: list[int], starts: int | Sequence[int], settings: DynamicSettings = DynamicSettings()
) -> RNNLanguageModel:
    """A copy of ``model`` adapted to the last ``MAX_ADAPT_TOKENS`` of ``ids`` (in eval mode, ready for
    ``step``); ``model`` itself is not changed. Fewer than two tokens: an unadapted copy."""
    s = settings.checked()
    twin = copy.deepcopy(model)
    twin.eval()
    ids = list(ids)[-MAX_ADAPT_TOKENS:]
    if len(ids) >= 2:
        _read(_Adapter(twin, s), torch.tensor(ids, dtype=torch.long), starts, None)
    twin.train(False)  # drops any prepared step weights: they are rebuilt from the adapted ones
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin
