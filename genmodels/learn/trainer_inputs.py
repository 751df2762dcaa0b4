"""What a training run starts from: its output folder, the corpus as token streams, and the parent checkpoint
of a fine-tune."""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels.core.errors import SettingsError
from genmodels.io import checkpoint as ckpt
from genmodels.learn.data import TokenData
from genmodels.nn.rnn import REGULARISERS, ModelConfig


def grown_state(
    parent: dict[str, torch.Tensor], own: dict[str, torch.Tensor], like: dict[int, int] | None = None
) -> dict[str, torch.Tensor]:
    """The parent's weights for a model whose vocabulary extends the parent's at the end: the rows of
    the old tokens are copied; each new token's embedding and output row start at the mean of the old
    rows (a neutral token the fine-tuning moves), or, for a token of ``like`` (new id -> old id), at the
    rows of the old token it stands in for."""
    out = {}
    for k, w in parent.items():
        target = own[k]
        if w.shape == target.shape:
            out[k] = w
            continue
        if w.shape[1:] != target.shape[1:] or w.shape[0] > target.shape[0]:
            raise SettingsError(f"--init-from: weight {k} {tuple(w.shape)} cannot grow to {tuple(target.shape)}")
        grown = w.mean(0, keepdim=True).expand(target.shape[0], *w.shape[1:]).clone()
        grown[: w.shape[0]] = w
        for new, old in (like or {}).items():
            if w.shape[0] <= new < target.shape[0] and old < w.shape[0]:
                grown[new] = w[old]
        out[k] = grown
    return out


def _network_shape(mcfg: ModelConfig) -> dict:
    """What a fine-tune must share with its parent: the model settings other than the regularisers and the
    vocabulary size (a newer tokenizer may add tokens)."""
    return {k: v for k, v in mcfg.to_dict().items() if k not in (*REGULARISERS, "vocab_size")}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shape_difference(theirs: dict, ours: dict) -> str:
    """Which shape flags of this run differ from the parent's, and what a fine-tune may change instead."""
    diff = ", ".join(f"{_flag(k)} {ours.get(k)} (its {theirs.get(k)})" for k in ours if theirs.get(k) != ours.get(k))
    return (
        f"its model differs from this run's: {diff}. A fine-tune keeps the parent's network shape "
        f"({'/'.join(_flag(k) for k in theirs)}): leave those flags out to take it. What may change: "
        f"{'/'.join(_flag(k) for k in REGULARISERS)} and every training setting"
    )


class TrainerInputs:
    """What a training run starts from: its folder, its data, a parent checkpoint."""

    def _init_dir(self) -> None:
        extra = {"train": self.cfg.to_dict()}
        for k in ("pitch_range", "styles"):  # what sampling needs to know of the data (melody)
            if k in self.data.info:
                extra[k] = self.data.info[k]
        ckpt.init_checkpoint_dir(self.out, self.domain, self.model, self.data.tokenizer, extra)

    def _init_from(self, mcfg: ModelConfig):
        parent = ckpt.load_checkpoint(self.cfg.init_from)
        if not isinstance(parent.model.config, ModelConfig):
            raise SettingsError(
                f"--init-from {self.cfg.init_from}: a mixture of models is not trained as a whole; "
                "fine-tune one of its members (its card lists them)"
            )
        theirs, ours = _network_shape(parent.model.config), _network_shape(mcfg)
        if parent.domain is not self.domain:
            raise SettingsError(
                f"--init-from {self.cfg.init_from}: a {parent.domain.name} model cannot start a "
                f"{self.domain.name} run; give --domain {parent.domain.name} or another checkpoint"
            )
        if theirs != ours:
            raise SettingsError(f"--init-from {self.cfg.init_from}: {_shape_difference(theirs, ours)}")
        like = self.domain.grown_like(self.data.tokenizer)
        self.model.load_state_dict(grown_state(parent.model.state_dict(), self.model.state_dict(), like))
        return parent

    def _load_data(self) -> TokenData:
        """The corpus, with the tokenizer of the run being resumed or of the model being fine-tuned (or the
        newer version of it that the domain offers: it only adds tokens at the end)."""
        c = self.cfg
        tokenizer = None
        if self.state_prev:
            tokenizer = self.domain.load_tokenizer(self.out)
        elif c.init_from:
            tokenizer = self.domain.fine_tune_tokenizer(self.domain.load_tokenizer(Path(c.init_from)))
        return self.domain.load_data(
            Path(c.data) if c.data else self.domain.default_data,
            tokenizer=tokenizer,
            vocab_size=c.model.vocab_size,
            augment=c.augment,
            seed=c.seed,
        )
