"""A mixture of trained language models: the next-token probabilities are the weighted mean of theirs.

Independently trained networks make different mistakes, so averaging their predictions (an ensemble)
usually scores better than any one of them; it costs one step of each member per token. A mixture
behaves as one model everywhere a model is used (sampling, suggestions, evaluation, dynamic evaluation,
the app): ``forward`` and ``step`` return logits whose softmax is the mixture (``_mix``), and the state
is the members' states stacked along the layer axis, so candidates are copied and chosen as for a single
network. The members must share the domain, the tokenizer, the cell and the width; they are trained on
their own (``train``) and joined with ``python -m genmodels mix``. A mixture is not trained further as a
whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from genmodels.core.errors import SettingsError
from genmodels.nn.rnn import ModelConfig, RNNLanguageModel, State


@dataclass
class MixtureConfig:
    members: list[ModelConfig]
    weights: list[float]

    def __post_init__(self) -> None:
        m = self.members
        if len(m) < 2:
            raise SettingsError("a mixture needs at least two models")
        if len(self.weights) != len(m):
            raise SettingsError(f"{len(self.weights)} weights for {len(m)} models: give one weight per model")
        if not all(math.isfinite(w) and w > 0 for w in self.weights):
            raise SettingsError(f"mixture weights must be positive numbers, not {self.weights}")
        for name, what in (("vocab_size", "vocabulary"), ("cell", "cell"), ("hidden", "number of units")):
            values = sorted({getattr(c, name) for c in m}, key=str)
            if len(values) > 1:
                raise SettingsError(f"the models of a mixture must share their {what}; these have {values}")

    # What the rest of the library reads from a model's config: the members' common shape.
    @property
    def cell(self) -> str:
        return self.members[0].cell

    @property
    def hidden(self) -> int:
        return self.members[0].hidden

    @property
    def vocab_size(self) -> int:
        return self.members[0].vocab_size

    @property
    def layers(self) -> int:
        """Layers of state: the members' together (their states are stacked)."""
        return sum(c.layers for c in self.members)

    def to_dict(self) -> dict:
        first = self.members[0]
        # the common shape beside the members, for readers of config.json that do not load the model
        return {
            "mixture": [c.to_dict() for c in self.members],
            "weights": list(self.weights),
            "cell": first.cell,
            "hidden": first.hidden,
            "vocab_size": first.vocab_size,
        }

    @classmethod
    def from_dict(cls, d: dict) -> MixtureConfig:
        members = d["mixture"]
        if not isinstance(members, list) or not all(isinstance(c, dict) for c in members):
            raise TypeError("'mixture' must be a list of model settings")
        weights = d.get("weights") or [1.0] * len(members)
        return cls([ModelConfig(**c) for c in members], [float(w) for w in weights])


def is_mixture_config(d: dict) -> bool:
    return isinstance(d, dict) and "mixture" in d


class MixtureLanguageModel(nn.Module):
    def __init__(self, config: MixtureConfig):
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(RNNLanguageModel(c) for c in config.members)
        total = sum(config.weights)
        self.register_buffer("_log_w", torch.tensor([math.log(w / total) for w in config.weights]), persistent=False)
        self._layers = [c.layers for c in config.members]

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # states ------------------------------------------------------------------------------------------
    def _split(self, state: State | None) -> list[State | None]:
        if state is None:
            return [None] * len(self.members)
        if isinstance(state, tuple):
            parts = [s.split(self._layers, dim=0) for s in state]
            return [tuple(p[i] for p in parts) for i in range(len(self.members))]
        return list(state.split(self._layers, dim=0))

    @staticmethod
    def _join(states: list[State]) -> State:
        if isinstance(states[0], tuple):
            return tuple(torch.cat([s[j] for s in states]) for j in range(len(states[0])))
        return torch.cat(states)

    def init_state(self, batch: int = 1) -> State:
        return self._join([m.init_state(batch) for m in self.members])

    def _mix(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """Logits of the mixture: log Σᵢ wᵢ softmax(logitsᵢ), plus the members' log-normalisers averaged
        with the same weights. The offset changes no probability; it keeps the logits on a single model's
        scale, so what acts on logits themselves (the repetition penalty divides positive ones and
        multiplies negative ones) acts as on one network: a mixture of copies of a model returns exactly
        that model's logits."""
        x = torch.stack([v.float() for v in logits])
        w = self._log_w.view(-1, *([1] * logits[0].dim()))
        norm = torch.logsumexp(x, -1, keepdim=True)
        return torch.logsumexp(x - norm + w, dim=0) + (w.exp() * norm).sum(0)

    # the model interface ---------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        outs = [m(tokens, s) for m, s in zip(self.members, self._split(state), strict=True)]
        return self._mix([o[0] for o in outs]), self._join([o[1] for o in outs])

    def prepare_step(self) -> list[dict]:
        return [m.prepare_step() for m in self.members]

    @torch.no_grad()
    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        outs = [m.step(token, s) for m, s in zip(self.members, self._split(state), strict=True)]
        return self._mix([o[0] for o in outs]), self._join([o[1] for o in outs])

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        logits, state = self.forward(tokens, state)
        return logits[:, -1], state


def members_of(model: nn.Module) -> list[RNNLanguageModel]:
    """The networks a model runs per token: a mixture's members, or the model itself."""
    return list(model.members) if isinstance(model, MixtureLanguageModel) else [model]
