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

import math
import os
import platform
import shlex
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from genmodels.core.errors import CheckpointError, SettingsError
from genmodels.core.options import command_args, flatten, from_flat, option
from genmodels.core.registry import BUILTIN_DOMAINS, Domain, get_domain
from genmodels.io import checkpoint as ckpt
from genmodels.io.card import carry_results, write_card
from genmodels.learn.data import TokenData, batchify, window
from genmodels.nn.losses import masked_loss
from genmodels.nn.rnn import REGULARISERS, ModelConfig, RNNLanguageModel, State, detach_state

# What a resumed run takes from its saved state whatever the command line says: its data and shape.
RUN_IDENTITY = ("domain", "data", "cell", "emb_dim", "hidden", "layers", "vocab_size", "seed", "batch", "bptt")


OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "plateau")
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass
class TrainConfig:
    domain: str = option("text", "kind of sequence", choices=BUILTIN_DOMAINS, required=True)
    data: str = option(
        "",
        "corpus folder: train/valid/test subfolders, or any files split by name",
        shown="the domain's, data/text or data/melody",
    )
    out: str = option("checkpoints/my-model", "checkpoint directory, e.g. checkpoints/my-model", required=True)
    model: ModelConfig = field(default_factory=ModelConfig)  # its fields are flags of their own
    # Defaults from the controlled runs in docs/training-recipe.md: small batches, many updates, bf16 (auto).
    batch: int = option(20, "sequences per step (split across torchrun processes)")
    bptt: int = option(35, "tokens per sequence per step (truncated backpropagation through time)")
    lr: float = option(2e-3, "peak learning rate")
    weight_decay: float = option(0.01, "AdamW weight decay (not on embeddings, biases; SGD has none)")
    clip: float = option(1.0, "gradient norm clip")
    steps: int = option(
        5000,
        "optimiser steps in all (a resumed run continues to this); 0: no step limit, the --time-budget ends the run",
        shown="5000; 0 when only --time-budget is given",
    )
    warmup: int = option(200, "steps of linear learning-rate warm-up (it multiplies the schedule)")
    min_lr_ratio: float = option(0.05, "the cosine schedule ends at this fraction of --lr")
    eval_every: int = option(250, "steps between validations (the best weights are kept)")
    save_every: int = option(0, "steps between saves of the training state for --resume", shown="0: as --eval-every")
    eval_tokens: int = option(0, "validation tokens per evaluation", shown="0: the whole validation split")
    augment: bool = option(True, "melody: no random transposition of training tunes", flag="--no-augment")
    init_from: str = option(
        "",
        "fine-tune: start from this checkpoint's weights and tokenizer (same architecture)",
        shown="none, start from random weights",
    )
    seed: int = option(0, "random seed (weights, dropout, data order)")
    threads: int = option(0, "CPU threads per process", shown="0: torch's default")
    optimizer: str = option(
        "adamw",
        "adamw (weight decay on the matrices), or sgd: plain SGD without momentum "
        "or weight decay, as pytorch/examples word_language_model",
        choices=OPTIMIZERS,
    )
    schedule: str = option(
        "cosine",
        "cosine: to --min-lr-ratio over --steps or --time-budget, whichever ends "
        "first; plateau: the lr is divided by --plateau-factor whenever validation "
        "does not improve on the best (kept for exact resume)",
        choices=SCHEDULES,
    )
    plateau_factor: float = option(4.0, "plateau schedule: divide the lr by this when validation does not improve")
    precision: str = option(
        "auto",
        "bf16 autocast for the forward pass and the loss (weights, gradients, "
        "optimiser state and the loss stay fp32); auto: bf16 where the CPU has "
        "AVX-512 BF16 or AMX (or the GPU has bf16), else fp32",
        choices=PRECISIONS,
    )
    time_budget: float = option(
        0.0,
        "minutes of process CPU time (all threads); then the run validates, saves "
        "and stops. Without --steps the run has no step limit",
        shown="0: no budget",
    )

    def __post_init__(self) -> None:
        get_domain(self.domain)  # an unknown domain is a SettingsError now, not in the middle of a run
        check_config(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A config from a dict in either layout: with a ``model`` section, or flat (saves before it)."""
        return from_flat(cls, values)

    def to_dict(self) -> dict:
        return asdict(self)


def check_config(cfg: TrainConfig) -> None:
    """Settings no run can use, refused before any work is done (called by ``TrainConfig`` itself)."""
    for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("precision", PRECISIONS)):
        if getattr(cfg, name) not in allowed:
            raise SettingsError(f"--{name} {getattr(cfg, name)!r}: choose one of {', '.join(allowed)}")
    if cfg.steps < 0 or cfg.time_budget < 0:
        raise SettingsError("--steps and --time-budget cannot be negative")
    if cfg.steps == 0 and not cfg.time_budget:
        raise SettingsError("--steps 0 (no step limit) needs a --time-budget")
    if cfg.schedule == "plateau" and cfg.plateau_factor <= 1:
        raise SettingsError(f"--plateau-factor {cfg.plateau_factor}: must be above 1")


def resume_config(out: str | Path, overrides: dict) -> TrainConfig:
    """The saved run's configuration with only the explicitly given options changed (e.g. --steps)."""
    saved = ckpt.load_train_state(out)["config"]
    return TrainConfig.from_dict({**flatten(saved), **flatten(overrides)})


def command_from_config(cfg: TrainConfig) -> str:
    """The train command that gives ``cfg`` (used where a run's command was not recorded)."""
    return " ".join(["python -m genmodels train", *command_args(cfg)])


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


def train_step(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    hidden: State | None,
    bos_id: int,
    clip: float,
    precision: str = "fp32",
) -> tuple[float, State | None]:
    """One optimiser step on a (B, T) batch; returns (mean loss, new hidden) or (loss, None) if the
    loss was not finite (then nothing is updated). ``precision="bf16"``: the forward pass and the loss
    run under bf16 autocast; the weights, their gradients, the optimiser state and the loss stay fp32."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits, new_hidden = net(x, hidden)
        loss_sum, n = masked_loss(logits, y, bos_id)
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
    bos_id: int,
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
    data = eval_rows(stream, rows, bos_id)
    state, nats, count = None, 0.0, 0
    for i in range(0, data.size(1) - 1, bptt):
        x, y = window(data, i, bptt)
        logits, state = model(x, state)
        loss, n = masked_loss(logits, y, bos_id)
        nats += float(loss)
        count += n
    # Every token after the first is a target once (eval_rows), so the units are those of the stream.
    model.train(was_training)
    return {"nats": nats, "tokens": count, "units": units, "value": domain.nats_to_metric(nats, units)}


def _cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


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


def _adopt_identity(cfg: TrainConfig, saved: dict) -> None:
    """Give ``cfg`` the saved run's data and shape (RUN_IDENTITY), whatever the command line said."""
    saved = flatten(saved)
    for k in RUN_IDENTITY:
        if k in saved:
            setattr(cfg.model if hasattr(cfg.model, k) else cfg, k, saved[k])


def grown_state(parent: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The parent's weights for a model whose vocabulary extends the parent's at the end: the rows of
    the old tokens are copied; each new token's embedding and output row start at the mean of the old
    rows (a neutral token the fine-tuning moves)."""
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
        out[k] = grown
    return out


def _network_shape(mcfg: ModelConfig) -> dict:
    """What a fine-tune must share with its parent: the model settings other than the regularisers and the
    vocabulary size (a newer tokenizer may add tokens)."""
    return {k: v for k, v in mcfg.to_dict().items() if k not in (*REGULARISERS, "vocab_size")}


def _changed(saved: dict, cfg: TrainConfig) -> dict:
    """{option: [saved value, value now]} for the options a resumed run changes. The saved configuration
    is read as ``TrainConfig`` reads it, so an option newer than the save (``--optimizer``, ``--schedule``,
    ``--precision``, ``--time-budget``, ...) is compared with the default the saved run had."""
    try:
        before = flatten(TrainConfig.from_dict(saved).to_dict())
    except (SettingsError, TypeError, ValueError):
        before = flatten(saved)
    now = flatten(cfg.to_dict())
    return {k: [before[k], v] for k, v in sorted(now.items()) if k in before and before[k] != v}


class Trainer:
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
        self.bos = self.data.tokenizer.bos_id
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
        # Every invocation (the first, then each --resume) with the step it started from and, on a
        # resume, the settings it changed.
        self.commands.append({"step": self.step, "command": self.command})
        if self.state_prev is not None:
            self.commands[-1]["changed"] = _changed(self.state_prev["config"], cfg)

    def _init_dir(self) -> None:
        extra = {"train": self.cfg.to_dict()}
        if "pitch_range" in self.data.info:
            extra["pitch_range"] = self.data.info["pitch_range"]
        ckpt.init_checkpoint_dir(self.out, self.domain, self.model, self.data.tokenizer, extra)

    def _init_from(self, mcfg: ModelConfig):
        parent = ckpt.load_checkpoint(self.cfg.init_from)
        if not isinstance(parent.model.config, ModelConfig):
            raise SettingsError(
                f"--init-from {self.cfg.init_from}: a mixture of models is not trained as a whole; "
                "fine-tune one of its members (its card lists them)"
            )
        theirs, ours = _network_shape(parent.model.config), _network_shape(mcfg)
        if parent.domain is not self.domain or theirs != ours:
            raise SettingsError(
                f"--init-from {self.cfg.init_from}: its model ({parent.domain.name}, {theirs}) differs "
                f"from this run's ({self.domain.name}, {ours}); give the same --cell/--emb-dim/"
                "--hidden/--layers/--tie-weights"
            )
        self.model.load_state_dict(grown_state(parent.model.state_dict(), self.model.state_dict()))
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
        try:
            old = ckpt.read_card(self.out)
        except CheckpointError:
            old = {}
        card.update(carry_results(old, weights))  # eval's results: kept if of these weights, else stale
        write_card(self.out, card)

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
        if _is_dist():
            torch.distributed.barrier()
        return {"step": self.step, "best_valid": self.best, "last_valid": last_valid, "history": self.history}

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
                self._clock = time.time()  # validation time is not training time
            self.cpu = time.process_time() - self._cpu0
            if self.step % save_every == 0 or final:
                self.save_state()
                self._clock = time.time()
            if self._should_stop(stop_after):
                self._stopping = True
                raise KeyboardInterrupt
        return last_valid

    def _should_stop(self, stop_after: int | None) -> bool:
        """A stop was asked for (a signal, or ``stop_after``); under torchrun, by any process: all of them
        then stop after this same step and save together."""
        stop = _STOP.is_set() or (stop_after is not None and self.step >= stop_after)
        if _is_dist():
            flag = torch.tensor([float(stop)])
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

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

    def _sync_lr_scale(self) -> None:
        """Only rank 0 validates: it hands the plateau schedule's rate to the others."""
        if _is_dist() and self.cfg.schedule == "plateau":
            scale = torch.tensor([self.lr_scale], dtype=torch.float64)
            torch.distributed.broadcast(scale, 0)
            self.lr_scale = float(scale.item())

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
        if v["value"] < self.best and math.isfinite(v["value"]):
            self.best = v["value"]
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
