"""What a training run keeps on disk: the train state it resumes from (weights, optimiser, random state, carried
hidden state, position), and the model card with its history."""

from __future__ import annotations

import math
import time

import torch

from genmodels.core.errors import CheckpointError
from genmodels.core.options import flatten
from genmodels.core.paths import atomic_write_json
from genmodels.io import checkpoint as ckpt
from genmodels.io.card import carry_results, write_card
from genmodels.learn.config import TrainConfig, command_from_config
from genmodels.learn.optim import _cpu_name
from genmodels.learn.processes import (
    _rank,
)
from genmodels.nn.rnn import State

PROGRESS = ckpt.PROGRESS
PROGRESS_EVERY_S = 3.0


class TrainerFiles:
    """What a training run writes: the train state it resumes from, and the model card."""

    # state --------------------------------------------------------------------------------------
    def _train_state(self, hidden: State | None) -> dict:
        """What ``--resume`` needs; ``hidden``: the carried state of the whole batch (every process's rows)."""
        return {
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "pos": self.pos,
            "best": self.best,
            "history": self.history,
            "wall": self.wall,
            "rng": torch.get_rng_state(),
            "hidden": list(hidden) if isinstance(hidden, tuple) else hidden,
            "commands": self.commands,
            "lr_scale": self.lr_scale,
            "cpu": self.cpu,
            "tokens": self.tokens,
            "since_best": self.since_best,
            "parent_valid": self.parent_valid,
        }

    def _restore(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        # The optimiser keeps its saved moments and takes this invocation's settings (lr, weight decay, ...;
        # AdamW's two groups or SGD's one). Another --optimizer has no moments to carry: it starts afresh.
        if flatten(s["config"]).get("optimizer", "adamw") == self.cfg.optimizer:
            wanted = [{k: v for k, v in g.items() if k != "params"} for g in self.opt.param_groups]
            self.opt.load_state_dict(s["opt"])
            for group, settings in zip(self.opt.param_groups, wanted, strict=True):  # new settings, saved moments
                group.update(settings)
        self.step, self.epoch, self.pos = s["step"], s["epoch"], s["pos"]
        self.best, self.history, self.wall = s["best"], s["history"], s["wall"]
        self.lr_scale, self.cpu, self.tokens = s.get("lr_scale", 1.0), s.get("cpu", 0.0), s.get("tokens", 0)
        self.since_best, self.parent_valid = s.get("since_best", 0), s.get("parent_valid")
        reconstructed = command_from_config(TrainConfig.from_dict(s["config"]))
        self.commands = list(
            s.get("commands")
            or [{"step": 0, "command": reconstructed + "  (reconstructed from the saved configuration)"}]
        )
        torch.set_rng_state(s["rng"])
        self.hidden = self._own_rows(s["hidden"])

    def _own_rows(self, h) -> State | None:
        """This process's rows of a saved whole-batch hidden state (None: start from zeros)."""
        h = tuple(h) if isinstance(h, list) else h
        first = h[0] if isinstance(h, tuple) else h
        if first is None or first.size(1) != self.cfg.batch:  # e.g. rank 0's rows only (older DDP saves)
            return None
        rows = self.cfg.batch // self.world
        take = slice(_rank() * rows, (_rank() + 1) * rows)
        return tuple(x[:, take].clone() for x in h) if isinstance(h, tuple) else h[:, take].clone()

    def _whole_batch_hidden(self) -> State | None:
        """Every process's carried hidden state, concatenated in rank order on rank 0 (a collective)."""
        if self.world == 1:
            return self.hidden
        parts = [None] * self.world if _rank() == 0 else None
        torch.distributed.gather_object(self.hidden, parts, dst=0)
        if _rank() != 0 or any(p is None for p in parts):
            return None
        if isinstance(parts[0], tuple):
            return tuple(torch.cat([p[i] for p in parts], dim=1) for i in range(len(parts[0])))
        return torch.cat(parts, dim=1)

    def save_state(self) -> None:
        """Save the train state (every process takes part: their hidden states are gathered)."""
        hidden = self._whole_batch_hidden()
        if _rank() == 0:
            ckpt.save_train_state(self.out, self._train_state(hidden))

    def report_progress(self, train_loss: float, final: bool) -> None:
        """``progress.json``: where the run is, for a watcher (the app's Train page) that cannot read the
        progress bar; rewritten every few seconds and at the end, never mid-write."""
        now = time.time()
        if _rank() != 0 or not (final or now - getattr(self, "_progress_at", 0.0) >= PROGRESS_EVERY_S):
            return
        self._progress_at = now
        progress = {
            "step": self.step,
            "steps": self.cfg.steps,
            "time_budget_min": self.cfg.time_budget,
            "cpu_s": round(self.cpu, 1),
            "wall_s": round(self.wall, 1),
            "tokens": self.tokens,
            "train_loss": round(train_loss, 4),
            "best": self.best if math.isfinite(self.best) else None,
            "parent_valid": self.parent_valid,
            "metric": self.data.metric,
            "history": self.history,
            "final": final,
            "updated": now,
        }
        atomic_write_json(self.out / PROGRESS, progress)

    # card ---------------------------------------------------------------------------------------
    def write_card(self, valid: dict, weights: str) -> None:
        """The card of the weights just saved (``weights``: their identity)."""
        c = self.cfg
        card = {
            "name": self.out.name,
            "domain": self.domain.name,
            "cell": c.model.cell,
            "data": self.data.info,
            "tokenizer": self.data.tokenizer.to_config(),
            "parameters": self.model.n_params,
            "hyperparameters": c.to_dict(),
            "command": self.commands[0]["command"],
            "steps": self.step,
            "commands": self.commands,
            "wall_time_s": round(self.wall, 1),
            "hardware": f"{_cpu_name()} CPU, {torch.get_num_threads()} threads x {self.world} processes",
            "precision": self.precision,
            "time_budget_min": c.time_budget,
            "cpu_time_s": round(self.cpu, 1),
            "tokens": self.tokens,
            "metric": self.data.metric,
            "valid": round(valid["value"], 4),
            "weights": weights,
            "history": self.history[-50:],
        }
        if self.parent_valid is not None:
            card["parent_valid"] = self.parent_valid
        try:
            old = ckpt.read_card(self.out)
        except CheckpointError:
            old = {}
        card.update(carry_results(old, weights))  # eval's results: kept if of these weights, else stale
        write_card(self.out, card)
