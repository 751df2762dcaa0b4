"""Training: truncated BPTT over token streams, AdamW, clipping, warm-up + cosine schedule, validation in
the domain's metric, best model kept, atomic checkpoints, exact resume, and DDP under ``torchrun``.

Exact resume: the train state saved every ``save_every`` steps holds the weights, the optimiser, the
RNG state, the carried hidden state and the position in the epoch; the data order and the learning
rate are functions of (seed, epoch, step). A run stopped at any point and resumed from its last save
with the same command ends with the same weights as an uninterrupted run.

- Under ``torchrun`` too: every process's carried hidden state is gathered into the save (the rows of
  the whole batch) and each process takes its own rows back on resume; the RNG state is rank 0's, which
  is every process's (all are seeded alike and draw alike). A stop signal is agreed on by all processes,
  so they stop and save after the same step. Not exact: resuming with another number of processes (the
  hidden state is kept, but dropout masks and the averaging of gradients differ), and resuming a save
  written under ``torchrun`` before hidden states were gathered (they restart from zeros).
- Options given with ``--resume`` (``--steps``, ``--lr``, ``--weight-decay``, ``--clip``, ...) apply from
  the resumed step on: the optimiser keeps its moments and takes the new settings; the schedule is
  recomputed for the new ``--steps``. The card records each invocation and what it changed. The run's
  data and shape (``RUN_IDENTITY``) always stay those of the save.
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
import torch.nn.functional as F

from genmodels import checkpoint as ckpt
from genmodels.card import carry_results, write_card
from genmodels.data import TokenData, batchify, window
from genmodels.domains import DOMAINS, Domain, get_domain
from genmodels.errors import CheckpointError, SettingsError
from genmodels.model import ModelConfig, RNNLanguageModel, State, detach_state
from genmodels.options import command_args, flatten, from_flat, option

# What a resumed run takes from its saved state whatever the command line says: its data and shape.
RUN_IDENTITY = ("domain", "data", "cell", "emb_dim", "hidden", "layers", "vocab_size", "seed", "batch", "bptt")


@dataclass
class TrainConfig:
    domain: str = option("text", "kind of sequence", choices=tuple(DOMAINS), required=True)
    data: str = option("", "corpus folder: train/valid/test subfolders, or any files split by name",
                       shown="the domain's, data/text or data/melody")
    out: str = option("checkpoints/my-model", "checkpoint directory, e.g. checkpoints/my-model", required=True)
    model: ModelConfig = field(default_factory=ModelConfig)  # its fields are flags of their own
    batch: int = option(32, "sequences per step (split across torchrun processes)")
    bptt: int = option(128, "tokens per sequence per step (truncated backpropagation through time)")
    lr: float = option(3e-3, "peak learning rate (AdamW)")
    weight_decay: float = option(0.01, "AdamW weight decay (not on embeddings, biases)")
    clip: float = option(1.0, "gradient norm clip")
    steps: int = option(5000, "optimiser steps in all (a resumed run continues to this)")
    warmup: int = option(200, "steps of linear learning-rate warm-up")
    min_lr_ratio: float = option(0.05, "the cosine schedule ends at this fraction of --lr")
    eval_every: int = option(250, "steps between validations (the best weights are kept)")
    save_every: int = option(0, "steps between saves of the training state for --resume", shown="0: as --eval-every")
    eval_tokens: int = option(0, "validation tokens per evaluation", shown="0: the whole validation split")
    augment: bool = option(True, "melody: no random transposition of training tunes", flag="--no-augment")
    init_from: str = option("", "fine-tune: start from this checkpoint's weights and tokenizer (same architecture)",
                            shown="none, start from random weights")
    seed: int = option(0, "random seed (weights, dropout, data order)")
    threads: int = option(0, "CPU threads per process", shown="0: torch's default")

    def __post_init__(self) -> None:
        get_domain(self.domain)  # an unknown domain is a SettingsError now, not in the middle of a run

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A config from a dict in either layout: with a ``model`` section, or flat (saves before it)."""
        return from_flat(cls, values)

    def to_dict(self) -> dict:
        return asdict(self)


def resume_config(out: str | Path, overrides: dict) -> TrainConfig:
    """The saved run's configuration with only the explicitly given options changed (e.g. --steps)."""
    saved = ckpt.load_train_state(out)["config"]
    return TrainConfig.from_dict({**flatten(saved), **flatten(overrides)})


def command_from_config(cfg: TrainConfig) -> str:
    """The train command that gives ``cfg`` (used where a run's command was not recorded)."""
    return " ".join(["python -m genmodels train", *command_args(cfg)])


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_id: int) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over targets, skipping document starts (``<bos>``)."""
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                           ignore_index=ignore_id, reduction="sum")
    return loss, int((targets != ignore_id).sum())


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               hidden: State | None, bos_id: int, clip: float) -> tuple[float, State | None]:
    """One optimiser step on a (B, T) batch; returns (mean loss, new hidden) or (loss, None) if the
    loss was not finite (then nothing is updated)."""
    logits, new_hidden = net(x, hidden)
    loss_sum, n = masked_loss(logits, y, bos_id)
    loss = loss_sum / max(n, 1)
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
def evaluate(model: RNNLanguageModel, stream: torch.Tensor, units: int, domain: Domain, bos_id: int,
             rows: int = 16, bptt: int = 256, max_tokens: int = 0) -> dict:
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
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def _adopt_identity(cfg: TrainConfig, saved: dict) -> None:
    """Give ``cfg`` the saved run's data and shape (RUN_IDENTITY), whatever the command line said."""
    saved = flatten(saved)
    for k in RUN_IDENTITY:
        if k in saved:
            setattr(cfg.model if hasattr(cfg.model, k) else cfg, k, saved[k])


def _changed(saved: dict, cfg: TrainConfig) -> dict:
    """{option: [saved value, value now]} for the options a resumed run changes."""
    before, now = flatten(saved), flatten(cfg.to_dict())
    return {k: [before[k], v] for k, v in sorted(now.items()) if k in before and before[k] != v}


def make_optimizer(model: RNNLanguageModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, with weight decay on the weight matrices only (not embeddings, biases)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False, command: str | None = None, progress: bool = True):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.command = command or " ".join(shlex.quote(a) for a in sys.argv)
        self.progress = progress and _rank() == 0
        self.world = _start_processes(cfg)
        self.state_prev: dict | None = ckpt.load_train_state(self.out) if resume else None
        if self.state_prev is not None:
            _adopt_identity(cfg, self.state_prev["config"])
        self.domain: Domain = get_domain(cfg.domain)
        self.data: TokenData = self._load_data()
        self.bos = self.data.tokenizer.bos_id
        # The model's vocabulary is the tokenizer's (--vocab-size is the text tokenizer's target).
        mcfg = replace(cfg.model, vocab_size=self.data.tokenizer.vocab_size)
        torch.manual_seed(cfg.seed)
        self.model = RNNLanguageModel(mcfg)
        parent = self._init_from(mcfg) if cfg.init_from and self.state_prev is None else None
        self.net = torch.nn.parallel.DistributedDataParallel(self.model) if _is_dist() else self.model
        self.opt = make_optimizer(self.model, cfg)
        self.step, self.epoch, self.pos = 0, 0, 0
        self.best = math.inf
        self.history: list[dict] = []
        self.wall = 0.0
        self.hidden: State | None = None
        self.commands: list[dict] = []
        if parent is not None:  # the card keeps the whole history: the parent's commands and wall time
            self.commands = [dict(c, model=parent.name) for c in parent.card.get("commands") or
                             [{"step": 0, "command": parent.card.get("command", "")}]]
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
        theirs = {k: v for k, v in parent.model.config.to_dict().items() if k != "dropout"}
        ours = {k: v for k, v in mcfg.to_dict().items() if k != "dropout"}
        if parent.domain is not self.domain or theirs != ours:
            raise SettingsError(f"--init-from {self.cfg.init_from}: its model ({parent.domain.name}, {theirs}) differs "
                                f"from this run's ({self.domain.name}, {ours}); give the same --cell/--emb-dim/"
                                "--hidden/--layers/--tie-weights")
        self.model.load_state_dict(parent.model.state_dict())
        return parent

    def _load_data(self) -> TokenData:
        """The corpus, with the tokenizer of the run being resumed or of the model being fine-tuned."""
        c = self.cfg
        source = self.out if self.state_prev else Path(c.init_from) if c.init_from else None
        return self.domain.load_data(Path(c.data) if c.data else self.domain.default_data,
                                     tokenizer=self.domain.load_tokenizer(source) if source else None,
                                     vocab_size=c.model.vocab_size, augment=c.augment, seed=c.seed)

    # state --------------------------------------------------------------------------------------
    def _train_state(self, hidden: State | None) -> dict:
        """What ``--resume`` needs; ``hidden``: the carried state of the whole batch (every process's rows)."""
        return {"config": self.cfg.to_dict(), "model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "step": self.step, "epoch": self.epoch, "pos": self.pos, "best": self.best,
                "history": self.history, "wall": self.wall, "rng": torch.get_rng_state(),
                "hidden": list(hidden) if isinstance(hidden, tuple) else hidden,
                "commands": self.commands}

    def _restore(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        wanted = [{k: v for k, v in g.items() if k != "params"} for g in self.opt.param_groups]
        self.opt.load_state_dict(s["opt"])
        for group, settings in zip(self.opt.param_groups, wanted, strict=True):  # new settings, saved moments
            group.update(settings)
        self.step, self.epoch, self.pos = s["step"], s["epoch"], s["pos"]
        self.best, self.history, self.wall = s["best"], s["history"], s["wall"]
        reconstructed = command_from_config(TrainConfig.from_dict(s["config"]))
        self.commands = list(s.get("commands") or [
            {"step": 0, "command": reconstructed + "  (reconstructed from the saved configuration)"}])
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
            "name": self.out.name, "domain": self.domain.name, "cell": c.model.cell, "data": self.data.info,
            "tokenizer": self.data.tokenizer.to_config(), "parameters": self.model.n_params,
            "hyperparameters": c.to_dict(), "command": self.commands[0]["command"], "steps": self.step,
            "commands": self.commands,
            "wall_time_s": round(self.wall, 1),
            "hardware": f"{_cpu_name()} CPU, {torch.get_num_threads()} threads x {self.world} processes",
            "metric": self.data.metric, "valid": round(valid["value"], 4), "weights": weights,
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
        return evaluate(self.model, self.data.valid, self.data.valid_units, self.domain, self.bos,
                        max_tokens=self.cfg.eval_tokens)

    def run(self, stop_after: int | None = None) -> dict:
        """Train to ``cfg.steps``. ``stop_after`` simulates an interruption after that many steps of
        this run (the same path as Ctrl-C: save, then raise KeyboardInterrupt). The signal handlers it
        installs are restored however it ends."""
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
                print(f"\nInterrupted at step {self.step}; saved. Continue with the same command plus --resume.",
                      file=sys.stderr)
            raise
        if bar is not None:
            bar.close()
        if _is_dist():
            torch.distributed.barrier()
        return {"step": self.step, "best_valid": self.best, "last_valid": last_valid, "history": self.history}

    def _loop(self, bar, stop_after: int | None) -> dict | None:
        """Steps until ``cfg.steps`` (validating and saving on schedule); the last validation."""
        c = self.cfg
        save_every = c.save_every or c.eval_every
        data = self._rows(self.epoch)
        self._clock = time.time()
        bad_steps, last_valid = 0, None
        while self.step < c.steps:
            if self.pos >= data.size(1) - 1:
                self.epoch, self.pos, self.hidden = self.epoch + 1, 0, None
                data = self._rows(self.epoch)
                continue
            x, y = window(data, self.pos, c.bptt)
            loss = self._train_on(x, y)
            if loss is None:  # a NaN/inf loss never reaches the weights or a checkpoint: the batch is skipped
                bad_steps += 1
                if bad_steps > 20:
                    raise SettingsError("The loss was NaN/inf for 20 steps in a row; lower --lr. "
                                        f"The last good checkpoint in {self.out} is kept.")
                continue
            bad_steps = 0
            self._tick(bar, loss, x.numel() * self.world)
            if self.step % c.eval_every == 0 or self.step == c.steps:
                last_valid = self._eval_and_keep_best(loss)
                self._clock = time.time()  # validation time is not training time
            if self.step % save_every == 0 or self.step == c.steps:
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

    def _rows(self, epoch: int) -> torch.Tensor:
        """This process's rows of the epoch's training stream."""
        rows = self.cfg.batch // self.world
        rank = _rank()
        return batchify(self.data.train_stream(epoch), self.cfg.batch)[rank * rows : (rank + 1) * rows]

    def _train_on(self, x: torch.Tensor, y: torch.Tensor) -> float | None:
        """One optimiser step on the window at the current position; None when the loss was not finite."""
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.cfg, self.step)
        self.net.train()
        loss, hidden = train_step(self.net, self.opt, x, y, self.hidden, self.bos, self.cfg.clip)
        self.pos += self.cfg.bptt
        if hidden is None:
            self.hidden = None
            return None
        self.hidden = detach_state(hidden)
        self.step += 1
        return loss

    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.cfg.steps, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr)

    def _tick(self, bar, loss: float, tokens: int) -> None:
        """Count the step's wall time and show its loss and speed."""
        now = time.time()
        self.wall += now - self._clock
        if bar is not None:
            bar.update(1)
            if self.step % 10 == 0 or self.step == self.cfg.steps:
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens / max(now - self._clock, 1e-9):,.0f}",
                                epoch=self.epoch)
        self._clock = now

    def _eval_and_keep_best(self, train_loss: float) -> dict | None:
        if _rank() != 0:
            return None
        v = self.validate()
        self.history.append({"step": self.step, "train_loss": round(train_loss, 4), "valid": round(v["value"], 4)})
        msg = f"step {self.step}: valid {self.data.metric} {v['value']:.4f}"
        if v["value"] < self.best and math.isfinite(v["value"]):
            self.best = v["value"]
            self.write_card(v, ckpt.save_weights(self.out, self.model))
            msg += " (best, saved)"
        if self.progress:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)
        return v


def train(cfg: TrainConfig, resume: bool = False, command: str | None = None, progress: bool = True) -> dict:
    if resume and not (Path(cfg.out) / ckpt.TRAIN_STATE).exists():
        raise CheckpointError(f"Nothing to resume in {cfg.out}: no {ckpt.TRAIN_STATE}")
    return Trainer(cfg, resume=resume, command=command, progress=progress).run()
