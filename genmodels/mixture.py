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

from genmodels.errors import SettingsError
from genmodels.model import ModelConfig, RNNLanguageModel, State


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


@torch.no_grad()
def token_logprobs(
    model: nn.Module, stream: torch.Tensor, bos_id: int, rows: int = 16, bptt: int = 256
) -> torch.Tensor:
    """The log-probability the model gives each target of ``stream`` (every token but the first and the
    ``<bos>`` marks), read as ``train.evaluate`` reads it."""
    from genmodels.data import window
    from genmodels.train import eval_rows

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


def mix_checkpoints(
    paths: list[str], out: str, weights: list[float] | None = None, command: str = "", fit: bool = False
) -> dict:
    """Join trained checkpoints into one mixture checkpoint at ``out`` (config, tokenizer, weights, card)
    and score it on the validation split; returns the card. ``weights``: each model's share (default
    equal); ``fit``: the shares that best predict the validation split instead. Typed errors for models
    that cannot mix."""
    from pathlib import Path

    from genmodels.card import write_card
    from genmodels.checkpoint import init_checkpoint_dir, load_checkpoint, save_weights
    from genmodels.evaluate import _data_path, data_dir
    from genmodels.train import evaluate

    if len(paths) < 2:
        raise SettingsError("mix needs at least two checkpoints")
    target = Path(out).resolve()
    if any(Path(p).resolve() == target for p in paths):
        raise SettingsError(f"--out {out} is one of the models being mixed; choose a new folder")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SettingsError(f"--out {out} already exists and is not an empty folder; choose a new folder")
    if len({Path(p).resolve() for p in paths}) < len(paths):
        raise SettingsError("a checkpoint is listed twice; a mixture needs different models")
    cks = [load_checkpoint(p) for p in paths]
    first = cks[0]
    for c in cks[1:]:
        if c.domain is not first.domain:
            raise SettingsError(f"{c.path} is a {c.domain.name} model and {first.path} a {first.domain.name} one")
        if c.tokenizer.to_config() != first.tokenizer.to_config() or _pieces(c) != _pieces(first):
            raise SettingsError(f"{c.path} and {first.path} have different tokenizers: a mixture needs one")
    if not first.domain.language_model:
        raise SettingsError(f"{first.domain.name} models cannot be mixed")
    if any(isinstance(c.model, MixtureLanguageModel) for c in cks):
        raise SettingsError("mix models that are single networks (one of these is already a mixture)")
    if fit and weights:
        raise SettingsError("give --weights or --fit-weights, not both")
    d = first.domain.load_data(_data_path(first, None), tokenizer=first.tokenizer, augment=False)
    if fit:
        weights = fit_shares([token_logprobs(c.model, d.valid, first.tokenizer.bos_id) for c in cks])
    config = MixtureConfig([c.model.config for c in cks], list(weights) if weights else [1.0] * len(cks))
    model = MixtureLanguageModel(config)
    for m, c in zip(model.members, cks, strict=True):
        m.load_state_dict(c.model.state_dict())
    model.eval()
    valid = evaluate(model, d.valid, d.valid_units, first.domain, first.tokenizer.bos_id)["value"]
    ranges = [c.config["pitch_range"] for c in cks if c.config.get("pitch_range")]  # melody: what sampling allows
    extra = {"pitch_range": [min(r[0] for r in ranges), max(r[1] for r in ranges)]} if ranges else None
    init_checkpoint_dir(target, first.domain, model, first.tokenizer, extra)
    wid = save_weights(target, model)
    card = {
        "name": target.name,
        "domain": first.domain.name,
        "cell": config.cell,
        "parameters": model.n_params,
        "metric": first.domain.metric,
        "hyperparameters": {"model": config.to_dict()},
        "members": [
            {
                "path": str(p),
                "weights": c.weights_id,
                "share": round(w / sum(config.weights), 4),
                "valid": c.card.get("valid"),
                "test": (c.card.get("test") or {}).get("value"),
                "trained_with": [h["command"] for h in c.card.get("commands", [])] or [c.card.get("command", "?")],
                "cpu_time_s": c.card.get("cpu_time_s"),
            }
            for p, c, w in zip(paths, cks, config.weights, strict=True)
        ],
        "command": command or f"python -m genmodels mix {' '.join(paths)} --out {out}",
        "note": (
            f"A mixture of {len(cks)} trained models: each next token's probability is the weighted mean of "
            "theirs, so one step costs one step of every member. Not trained as a whole; each member's "
            "own card lists how it was trained."
            + (
                " The shares were fitted to the validation split (expectation-maximisation), so the validation "
                "figure flatters it slightly; the test split is held out."
                if fit
                else ""
            )
        ),
        "data": {"data": data_dir(first, None), "split": (first.card.get("data") or {}).get("split", {})},
        "tokenizer": first.tokenizer.to_config(),
        "members_steps": sum(int(c.card.get("steps") or 0) for c in cks),
        "wall_time_s": sum(float(c.card.get("wall_time_s") or 0) for c in cks),
        "cpu_time_s": sum(float(c.card.get("cpu_time_s") or 0) for c in cks),
        "hardware": first.card.get("hardware", "?"),
        "valid": round(valid, 4),
        "weights": wid,
    }
    write_card(target, card)
    return card


def _pieces(c) -> list[str]:
    """A text tokenizer's pieces (equal settings can still mean different pieces); [] for other domains."""
    sp = getattr(c.tokenizer, "sp", None)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())] if sp is not None else []
