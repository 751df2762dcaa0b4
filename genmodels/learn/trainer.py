"""Training: truncated BPTT over token streams, AdamW or plain SGD, clipping, warm-up + cosine or
divide-on-plateau schedule, bf16 autocast where the hardware has it, an optional CPU-time budget,
validation in the domain's metric, best model kept, atomic checkpoints, exact resume, and DDP under
``torchrun``.

Exact resume: the train state saved every ``save_every`` steps holds the weights, the optimiser, the
RNG state, the carried hidden state and the position in the epoch; the data order and the learning
rate are functions of (seed, epoch, step) and of the plateau schedule's divisions, which the state
keeps. A run stopped at any point and resumed from its last save with the same command ends with the
same weights as an uninterrupted run. (With ``--time-budget`` the stopping point and the cosine schedule
follow the CPU time used, which no two runs share, so such runs resume where they stopped but are not
bit-identical.)

- Under ``torchrun`` too: every process's carried hidden state is gathered into the save (the rows of
  the whole batch) and each process takes its own rows back on resume; the RNG state is rank 0's, which
  is every process's (all are seeded alike and draw alike). A stop signal is agreed on by all processes,
  so they stop and save after the same step. Not exact: resuming with another number of processes (the
  hidden state is kept, but dropout masks and the averaging of gradients differ), and resuming a save
  written under ``torchrun`` before hidden states were gathered (they restart from zeros).
- Options given with ``--resume`` (``--steps``, ``--lr``, ``--weight-decay``, ``--clip``, ``--schedule``,
  ``--precision``, ``--time-budget``, ...) apply from the resumed step on: the optimiser keeps its moments
  and takes the new settings (AdamW or SGD alike; a different ``--optimizer`` starts with fresh optimiser
  state); the schedule is recomputed for the new ``--steps`` or budget. The card records each invocation
  and what it changed. The run's data and shape (``RUN_IDENTITY``) always stay those of the save.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from genmodels.core.errors import CheckpointError, DataError, SettingsError
from genmodels.core.registry import Domain, get_domain
from genmodels.io import checkpoint as ckpt
from genmodels.learn.config import TrainConfig, _adopt_identity, _changed
from genmodels.learn.data import TokenData, batchify, window
from genmodels.learn.optim import lr_at, make_optimizer, resolve_precision
from genmodels.learn.processes import (
    _distributed,
    _handle_stop_signals,
    _is_dist,
    _rank,
    _restore_signals,
    _start_processes,
)
from genmodels.learn.steps import evaluate, train_step
from genmodels.learn.trainer_clock import TrainerClock
from genmodels.learn.trainer_files import TrainerFiles
from genmodels.learn.trainer_inputs import TrainerInputs
from genmodels.nn.rnn import State, detach_state


class Trainer(TrainerInputs, TrainerClock, TrainerFiles):
    def __init__(self, cfg: TrainConfig, resume: bool = False, command: str | None = None, progress: bool = True):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.command = command or " ".join(shlex.quote(a) for a in sys.argv)
        self.progress = progress and _rank() == 0
        self.world = _start_processes(cfg)
        self.precision = resolve_precision(cfg.precision)  # before any file is written: a clear error first
        self.state_prev: dict | None = ckpt.load_train_state(self.out) if resume else None
        if self.state_prev is not None:
            _adopt_identity(cfg, self.state_prev["config"])
        self.domain: Domain = get_domain(cfg.domain)
        self.data: TokenData = self._load_data()
        self.bos = self.data.tokenizer.start_ids  # document starts: never targets
        # The model's vocabulary is the tokenizer's (--vocab-size is the text tokenizer's target).
        mcfg = replace(cfg.model, vocab_size=self.data.tokenizer.vocab_size)
        torch.manual_seed(cfg.seed)
        self.model = self.domain.build_model(mcfg)
        parent = self._init_from(mcfg) if cfg.init_from and self.state_prev is None else None
        self.net = _distributed(self.model) if _is_dist() else self.model
        if cfg.precision == "auto" and self.precision == "fp32" and _rank() == 0:
            print("precision auto: this machine has no fast bf16; training in fp32", file=sys.stderr)
        self.opt = make_optimizer(cfg, self.model.named_parameters())
        self.lr_scale = 1.0  # the plateau schedule's divisions so far
        self.cpu = 0.0  # process CPU seconds spent training, over every invocation (the --time-budget clock)
        self.tokens = 0
        self.step, self.epoch, self.pos = 0, 0, 0
        self.best = math.inf
        self.since_best = 0  # validations since the last new best (--patience)
        self.parent_valid: float | None = None  # the --init-from model on this run's validation split
        self.history: list[dict] = []
        self.wall = 0.0
        self.hidden: State | None = None
        self.commands: list[dict] = []
        if parent is not None:  # the card keeps the whole history: the parent's commands and wall time
            self.commands = [
                dict(c, model=parent.name)
                for c in parent.card.get("commands") or [{"step": 0, "command": parent.card.get("command", "")}]
            ]
            self.wall = float(parent.card.get("wall_time_s", 0.0))
        if self.state_prev is not None:
            self._restore(self.state_prev)
        elif _rank() == 0:
            self._init_dir()
            if parent is not None:  # where the fine-tune starts, for the card's before-and-after
                self.parent_valid = round(self.validate()["value"], 4)
        # Every invocation (the first, then each --resume) with the step it started from and, on a
        # resume, the settings it changed.
        self.commands.append({"step": self.step, "command": self.command})
        if self.state_prev is not None:
            self.commands[-1]["changed"] = _changed(self.state_prev["config"], cfg)

    # loop ---------------------------------------------------------------------------------------
    def validate(self) -> dict:
        return evaluate(
            self.model, self.data.valid, self.data.valid_units, self.domain, self.bos, max_tokens=self.cfg.eval_tokens
        )

    def run(self, stop_after: int | None = None) -> dict:
        """Train to ``cfg.steps`` or to the end of the ``--time-budget``. ``stop_after`` simulates an interruption
        after that many steps of this run (the same path as Ctrl-C: save, then raise KeyboardInterrupt). The
        signal handlers it installs are restored however it ends."""
        previous = _handle_stop_signals()
        try:
            return self._run(stop_after)
        finally:
            _restore_signals(previous)

    def _run(self, stop_after: int | None) -> dict:
        bar = self._progress_bar()
        self._stopping = False
        try:
            last_valid = self._loop(bar, stop_after)
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            if self._stopping:  # between steps: the state is whole (a hard second Ctrl-C keeps the last save)
                self.save_state()
            if _rank() == 0:
                print(
                    f"\nInterrupted at step {self.step}; saved. Continue with the same command plus --resume.",
                    file=sys.stderr,
                )
            raise
        if bar is not None:
            bar.close()
        out = {"step": self.step, "best_valid": self.best, "last_valid": last_valid, "history": self.history}
        if _rank() == 0 and math.isfinite(self.best):  # on the best weights, as saved
            try:
                fitted = self.domain.after_training(self.out, self.data)
            except DataError as e:  # e.g. a validation split too small to fit on: the checkpoint works without
                fitted = {"skipped": str(e)}
            if fitted is not None:
                out["after_training"] = fitted
                if self.progress:
                    print(f"Fitted on the validation split: {json.dumps(fitted)}", file=sys.stderr)
        if _is_dist():
            torch.distributed.barrier()
        return out

    def _loop(self, bar, stop_after: int | None) -> dict | None:
        """Steps until ``cfg.steps`` or the ``--time-budget`` (validating and saving on schedule, and always
        at the end); the last validation."""
        c = self.cfg
        save_every = c.save_every or c.eval_every
        limit = c.steps or math.inf
        data = self._rows(self.epoch)
        self._clock = time.time()
        self._cpu0 = time.process_time() - self.cpu  # the budget clock goes on from the saved CPU time
        self._speed = [0.0, 0]  # CPU seconds in train_step and tokens, this invocation (for the log)
        bad_steps, last_valid, over = 0, None, self._budget_over()
        while self.step < limit and not over:
            if self._epoch_over(data):
                self.epoch, self.pos, self.hidden = self.epoch + 1, 0, None
                data = self._rows(self.epoch)
                continue
            batch = self._batch(data)
            loss = self._train_on(*batch)
            if loss is None:  # a NaN/inf loss never reaches the weights or a checkpoint: the batch is skipped
                bad_steps += 1
                if bad_steps > 20:
                    raise SettingsError(
                        "The loss was NaN/inf for 20 steps in a row; lower --lr. "
                        f"The last good checkpoint in {self.out} is kept."
                    )
                continue
            bad_steps = 0
            self._tick(bar, loss, self._batch_tokens(batch) * self.world)
            over = self._budget_over()  # once per step, so the last step is always validated and saved
            final = self.step >= limit or over
            if self.step % c.eval_every == 0 or final:
                last_valid = self._eval_and_keep_best(loss)
                self._sync_lr_scale()
                over = final = final or self._out_of_patience()
                self._clock = time.time()  # validation time is not training time
            self.cpu = time.process_time() - self._cpu0
            self.report_progress(loss, final)
            if self.step % save_every == 0 or final:
                self.save_state()
                self._clock = time.time()
            if self._should_stop(stop_after):
                self._stopping = True
                raise KeyboardInterrupt
        return last_valid

    # what a batch is (a domain's trainer may read other data than windows of a token stream) ----------
    def _epoch_over(self, data: torch.Tensor) -> bool:
        return self.pos >= data.size(1) - 1

    def _batch(self, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The arguments of ``_train_on`` for the current position: the window's inputs and targets."""
        return window(data, self.pos, self.cfg.bptt)

    def _batch_tokens(self, batch: tuple) -> int:
        return batch[0].numel()

    def _rows(self, epoch: int) -> torch.Tensor:
        """This process's rows of the epoch's training stream."""
        rows = self.cfg.batch // self.world
        rank = _rank()
        return batchify(self.data.train_stream(epoch), self.cfg.batch)[rank * rows : (rank + 1) * rows]

    def _train_on(self, x: torch.Tensor, y: torch.Tensor) -> float | None:
        """One optimiser step on the window at the current position; None when the loss was not finite."""
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.cfg, self.step, self._budget_fraction(), self.lr_scale)
        self.net.train()
        t_cpu = time.process_time()
        loss, hidden = train_step(self.net, self.opt, x, y, self.hidden, self.bos, self.cfg.clip, self.precision)
        self._speed[0] += time.process_time() - t_cpu
        self.pos += self.cfg.bptt
        if hidden is None:
            self.hidden = None
            return None
        self.hidden = detach_state(hidden)
        self.step += 1
        self.tokens += x.numel() * self.world
        self._speed[1] += x.numel() * self.world
        return loss

    def _eval_and_keep_best(self, train_loss: float) -> dict | None:
        if _rank() != 0:
            return None
        v = self.validate()
        self.history.append(
            {
                "step": self.step,
                "train_loss": round(train_loss, 4),
                "valid": round(v["value"], 4),
                "tokens": self.tokens,
                "cpu_s": round(self.cpu, 1),
            }
        )
        train_cpu, train_tokens = self._speed
        msg = (
            f"step {self.step}: valid {self.data.metric} {v['value']:.4f}  [{self.tokens:,} tokens, "
            f"{self.cpu:.0f} s CPU, {train_tokens / max(train_cpu, 1e-9):,.0f} tok/s of train-step CPU, "
            f"lr {self.opt.param_groups[0]['lr']:.3g}, {self.precision}]"
        )
        self.since_best += 1
        if v["value"] < self.best and math.isfinite(v["value"]):
            self.best, self.since_best = v["value"], 0
            self.write_card(v, ckpt.save_weights(self.out, self.model))
            msg += " (best, saved)"
        elif self.cfg.schedule == "plateau":  # the textbook rule: no improvement on the best → lr ÷ factor
            self.lr_scale /= self.cfg.plateau_factor
            msg += f" (no improvement: lr ÷ {self.cfg.plateau_factor:g})"
        if self.progress:
            tqdm.write(msg, file=sys.stderr)
        return v


def train(cfg: TrainConfig, resume: bool = False, command: str | None = None, progress: bool = True) -> dict:
    if resume and not (Path(cfg.out) / ckpt.TRAIN_STATE).exists():
        raise CheckpointError(f"Nothing to resume in {cfg.out}: no {ckpt.TRAIN_STATE}")
    trainer = get_domain(cfg.domain).trainer_class()  # Trainer, or a domain's own (harmony: whole chorales)
    t = None
    try:
        t = trainer(cfg, resume=resume, command=command, progress=progress)
        return t.run()
    finally:
        # Under torchrun: tear the default group down before exit, its worker threads joined (see _distributed).
        # The DDP module goes first: while its group lives, so does the default one (a traceback may hold ``t``).
        if t is not None:
            t.net = t.model
        del t
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
