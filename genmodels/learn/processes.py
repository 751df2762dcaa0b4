"""Several training processes under ``torchrun`` (DistributedDataParallel) and a clean stop on Ctrl-C or a
signal, agreed on by every process."""

from __future__ import annotations

import os
import signal
import threading

import torch

from genmodels.core.errors import SettingsError
from genmodels.learn.config import TrainConfig

_STOP = threading.Event()


def _request_stop(signum, frame):
    """Ctrl-C / SIGTERM: finish the current step, save, then stop (never a half-updated save)."""
    if _STOP.is_set():  # a second Ctrl-C stops at once; the last periodic save is still there
        raise KeyboardInterrupt
    _STOP.set()


def _handle_stop_signals() -> dict:
    """SIGTERM (kill, a job scheduler) is handled like Ctrl-C: save, then stop. Returns the handlers
    replaced, for ``_restore_signals``."""
    _STOP.clear()
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signals(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: not set from Python


def _is_dist() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _start_processes(cfg: TrainConfig) -> int:
    """Join the torchrun process group (when there is one); return the number of processes."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if _is_dist() and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    if cfg.batch % world:
        raise SettingsError(f"--batch {cfg.batch} must be divisible by the {world} processes")
    return world


def _distributed(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` under DistributedDataParallel, on a process group of its own. torch (2.13) never frees the
    group a DDP module was built on (C++ keeps it past the module and ``destroy_process_group``), nor with it
    that group's gloo worker threads. Were that the default group, the one this module's own collectives use
    (the stop flag, the gathered hidden state, the final barrier), a worker thread could still hold the last
    of them when the process exits: dropping the barrier's work frees the stop flag's tensor, whose Python
    object needs the GIL, and a thread taking the GIL while the interpreter finalizes is ended by
    ``pthread_exit``, which C++ turns into an abort ("terminate called without an active exception", a
    flaky SIGABRT after the run's last line). The default group, which no DDP module holds, is torn down,
    its threads joined, by ``destroy_process_group`` at the end of ``train``; DDP's group only carries
    gradient buckets, which are C++'s own tensors."""
    group = torch.distributed.new_group(backend=torch.distributed.get_backend())
    return torch.nn.parallel.DistributedDataParallel(model, process_group=group)
