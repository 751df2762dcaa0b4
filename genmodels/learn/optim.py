"""The optimiser, the learning-rate schedule (warm-up, cosine or divide-on-plateau, by step or by CPU-time
budget) and the arithmetic precision (bf16 autocast where the hardware has fast bf16)."""

from __future__ import annotations

import math
import platform
from pathlib import Path

import torch

from genmodels.core.errors import SettingsError
from genmodels.learn.config import TrainConfig


def schedule_progress(cfg: TrainConfig, step: int, budget_spent: float = 0.0) -> float:
    """How far the cosine has gone, 0 → 1: the fraction of the steps after warm-up or, with a time
    budget, the fraction of the budget spent, whichever is further, so the schedule ends when the run
    does. With ``--steps 0`` (no step limit) only the budget counts."""
    by_steps = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup) if cfg.steps else 0.0
    return min(1.0, max(by_steps, budget_spent, 0.0))


def lr_at(cfg: TrainConfig, step: int, budget_spent: float = 0.0, plateau_scale: float = 1.0) -> float:
    """The learning rate of ``step``: the cosine (``budget_spent``: fraction of the time budget used) or the
    plateau schedule's current rate (``plateau_scale``: product of its divisions), times a linear warm-up
    over the first ``warmup`` steps. (The warm-up multiplies the schedule rather than preceding it, so a
    budget-driven cosine that has already moved on during the warm-up joins it without a jump.)"""
    ramp = min(1.0, (step + 1) / cfg.warmup) if cfg.warmup else 1.0
    if cfg.schedule == "plateau":
        return ramp * cfg.lr * plateau_scale
    t = schedule_progress(cfg, step, budget_spent)
    return ramp * cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(cfg: TrainConfig, named_params) -> torch.optim.Optimizer:
    """AdamW with weight decay on the matrices (not embeddings, biases), or plain SGD without momentum or
    weight decay, as the textbook recipe (pytorch/examples word_language_model) uses."""
    named = list(named_params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD([p for _, p in named], lr=cfg.lr)
    decay = [p for n, p in named if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in named if not (p.dim() >= 2 and "embed" not in n)]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )


def _cpuinfo(key: str) -> str:
    """The first ``key`` line of /proc/cpuinfo ("model name", "flags"); empty where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def bf16_supported(device_type: str = "cpu") -> bool:
    """Fast bf16 matrix products: CUDA GPUs that report it, CPUs with AVX-512 BF16 or AMX. (torch's
    capability string says only "AVX512" on AVX-512 BF16 CPUs, hence the /proc/cpuinfo flags too.)"""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    capability = torch.backends.cpu.get_cpu_capability().upper()
    flags = set(_cpuinfo("flags").split())
    return "AMX" in capability or "BF16" in capability or bool({"avx512_bf16", "amx_bf16", "amx_tile"} & flags)


def resolve_precision(requested: str, device_type: str = "cpu") -> str:
    """ "bf16" or "fp32" for ``--precision auto|bf16|fp32``; auto falls back to fp32 and says so."""
    if requested == "fp32":
        return "fp32"
    if bf16_supported(device_type):
        return "bf16"
    where = "this GPU" if device_type == "cuda" else "this CPU (no AVX-512 BF16 or AMX)"
    if requested == "bf16":
        raise SettingsError(f"--precision bf16: {where} has no fast bf16; use --precision fp32 or auto")
    return "fp32"  # the trainer says so once the data has loaded (a bad --data is the first thing to hear)


def _cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()
