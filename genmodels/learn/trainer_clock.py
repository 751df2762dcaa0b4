"""When a training run stops and how it shows progress: the step limit, the CPU-time budget, a stop signal, the
progress bar."""

from __future__ import annotations

import sys
import time

import torch
from tqdm import tqdm

from genmodels.learn.processes import (
    _STOP,
    _is_dist,
)


class TrainerClock:
    """When a training run stops, and its progress bar."""

    def _should_stop(self, stop_after: int | None) -> bool:
        """A stop was asked for (a signal, or ``stop_after``); under torchrun, by any process: all of them
        then stop after this same step and save together."""
        stop = _STOP.is_set() or (stop_after is not None and self.step >= stop_after)
        if _is_dist():
            flag = torch.tensor([float(stop)])
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def _progress_bar(self):
        if not self.progress:
            return None

        return tqdm(total=self.cfg.steps or None, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr)

    def _tick(self, bar, loss: float, tokens: int) -> None:
        """Count the step's wall time and show its loss and speed."""
        now = time.time()
        self.wall += now - self._clock
        if bar is not None:
            bar.update(1)
            if self.step % 10 == 0 or self.step == self.cfg.steps:
                bar.set_postfix(
                    loss=f"{loss:.3f}", tok_s=f"{tokens / max(now - self._clock, 1e-9):,.0f}", epoch=self.epoch
                )
        self._clock = now

    # the CPU-time budget and the plateau schedule -----------------------------------------------------
    def _budget_fraction(self) -> float:
        """The fraction of ``--time-budget`` spent (0 without a budget); it drives the cosine schedule."""
        return self.cpu / (60 * self.cfg.time_budget) if self.cfg.time_budget else 0.0

    def _budget_over(self) -> bool:
        """Process CPU time (all of this process's threads; robust to other processes on a shared machine)
        has reached the budget. Under DDP rank 0's clock decides for every process."""
        if not self.cfg.time_budget:
            return False
        self.cpu = time.process_time() - self._cpu0
        over = self.cpu >= 60 * self.cfg.time_budget
        if _is_dist():
            flag = torch.tensor([float(over)])
            torch.distributed.broadcast(flag, 0)
            over = bool(flag.item())
        return over

    def _out_of_patience(self) -> bool:
        """``--patience`` validations in a row without a new best (rank 0's count decides for every process)."""
        stale = bool(self.cfg.patience) and self.since_best >= self.cfg.patience
        if _is_dist():
            flag = torch.tensor([float(stale)])
            torch.distributed.broadcast(flag, 0)
            stale = bool(flag.item())
        if stale and self.progress:
            tqdm.write(f"no new best in {self.cfg.patience} validations: stopping early", file=sys.stderr)
        return stale

    def _sync_lr_scale(self) -> None:
        """Only rank 0 validates: it hands the plateau schedule's rate to the others."""
        if _is_dist() and self.cfg.schedule == "plateau":
            scale = torch.tensor([self.lr_scale], dtype=torch.float64)
            torch.distributed.broadcast(scale, 0)
            self.lr_scale = float(scale.item())
