"""Training: truncated BPTT over token streams, AdamW, clipping, warm-up + cosine schedule, validation in
the domain's metric, best model kept, atomic checkpoints, exact resume, and DDP under ``torchrun``.

Exact resume: the train state saved every ``save_every`` steps holds the weights, the optimiser, the
RNG state, the carried hidden state and the position in the epoch; the data order and the learning
rate are functions of (seed, epoch, step). A run stopped at any point and resumed from its last save
ends with the same weights as an uninterrupted run.
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
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels import checkpoint as ckpt
from genmodels.card import write_card
from genmodels.data import TokenData, load_data, to_metric
from genmodels.errors import CheckpointError, SettingsError
from genmodels.model import ModelConfig, RNNLanguageModel, State, detach_state


@dataclass
class TrainConfig:
    domain: str = "text"
    data: str = "data/text"
    out: str = "checkpoints/my-model"
    cell: str = "lstm"
    emb_dim: int = 256
    hidden: int = 512
    layers: int = 2
    dropout: float = 0.2
    tie_weights: bool = False
    vocab_size: int = 2048
    batch: int = 32
    bptt: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    clip: float = 1.0
    steps: int = 5000
    warmup: int = 200
    min_lr_ratio: float = 0.05
    eval_every: int = 250
    save_every: int = 0  # 0: same as eval_every
    eval_tokens: int = 0  # 0: the whole validation split
    augment: bool = True
    init_from: str = ""  # start from this checkpoint's weights (fine-tuning); same architecture and tokenizer
    seed: int = 0
    threads: int = 0  # 0: torch's default


def resume_config(out: str | Path, overrides: dict) -> TrainConfig:
    """The saved run's configuration with only the explicitly given options changed (e.g. --steps)."""
    saved = ckpt.load_train_state(out)["config"]
    known = {f for f in TrainConfig.__dataclass_fields__}
    return TrainConfig(**{k: v for k, v in {**saved, **overrides}.items() if k in known})


def command_from_config(cfg: TrainConfig) -> str:
    """The train command that gives ``cfg`` (used where a run's command was not recorded)."""
    args = ["python -m genmodels train"]
    for k, v in asdict(cfg).items():
        if v is True:
            if k != "augment":  # on by default
                args.append(f"--{k.replace('_', '-')}")
        elif v is False:
            if k == "augment":
                args.append("--no-augment")
        else:
            args.append(f"--{k.replace('_', '-')} {v}")
    return " ".join(args)


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def batchify(stream: torch.Tensor, rows: int) -> torch.Tensor:
    """(N,) → (rows, N // rows): each row a contiguous slice of the stream."""
    n = stream.numel() // rows
    if n < 2:
        raise SettingsError(f"Not enough tokens ({stream.numel()}) for {rows} rows; use a smaller --batch")
    return stream[: n * rows].view(rows, n)


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


@torch.no_grad()
def evaluate(model: RNNLanguageModel, stream: torch.Tensor, units: int, domain: str, bos_id: int,
             rows: int = 16, bptt: int = 256, max_tokens: int = 0) -> dict:
    """The domain metric over a whole stream (total nats ÷ units), in eval mode."""
    was_training = model.training
    model.eval()
    if max_tokens and stream.numel() > max_tokens:
        units = round(units * max_tokens / stream.numel())
        stream = stream[:max_tokens]
    rows = max(1, min(rows, stream.numel() // 2))
    data = batchify(stream, rows)
    state, nats, count = None, 0.0, 0
    for i in range(0, data.size(1) - 1, bptt):
        x = data[:, i : i + bptt]
        y = data[:, i + 1 : i + 1 + bptt]
        x = x[:, : y.size(1)]
        logits, state = model(x, state)
        loss, n = masked_loss(logits, y, bos_id)
        nats += float(loss)
        count += n
    # The first token of each row is never predicted: the metric counts the units actually covered.
    model.train(was_training)
    return {"nats": nats, "tokens": count, "units": units, "value": to_metric(domain, nats, units)}


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


def _is_dist() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False, command: str | None = None, progress: bool = True):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.command = command or " ".join(shlex.quote(a) for a in sys.argv)
        self.progress = progress and _rank() == 0
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        if _is_dist() and not torch.distributed.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch.distributed.init_process_group(backend)
        if cfg.batch % self.world:
            raise SettingsError(f"--batch {cfg.batch} must be divisible by the {self.world} processes")
        self.state_prev: dict | None = None
        if resume:
            prev = ckpt.load_train_state(self.out)
            saved = prev["config"]
            for k in ("domain", "data", "cell", "emb_dim", "hidden", "layers", "vocab_size", "seed", "batch", "bptt"):
                if k in saved and getattr(cfg, k) != saved[k]:
                    setattr(cfg, k, saved[k])  # the run's identity comes from the saved state
            self.state_prev = prev
        self.data: TokenData = self._load_data()
        tok = self.data.tokenizer
        self.bos = tok.bos_id
        mcfg = ModelConfig(vocab_size=tok.vocab_size, cell=cfg.cell, emb_dim=cfg.emb_dim, hidden=cfg.hidden,
                           layers=cfg.layers, dropout=cfg.dropout, tie_weights=cfg.tie_weights)
        torch.manual_seed(cfg.seed)
        self.model = RNNLanguageModel(mcfg)
        parent = self._init_from(mcfg) if cfg.init_from and self.state_prev is None else None
        self.net = self.model
        if _is_dist():
            self.net = torch.nn.parallel.DistributedDataParallel(self.model)
        decay = [p for n, p in self.model.named_parameters() if p.dim() >= 2 and "embed" not in n]
        no_decay = [p for n, p in self.model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
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
            extra = {"train": asdict(cfg)}
            if "pitch_range" in self.data.info:
                extra["pitch_range"] = self.data.info["pitch_range"]
            ckpt.init_checkpoint_dir(self.out, cfg.domain, self.model, tok, extra)

        # Every invocation (the first, then each --resume) with the step it started from.
        self.commands.append({"step": self.step, "command": self.command})

    def _init_from(self, mcfg: ModelConfig):
        parent = ckpt.load_checkpoint(self.cfg.init_from)
        theirs = {k: v for k, v in parent.model.config.to_dict().items() if k != "dropout"}
        ours = {k: v for k, v in mcfg.to_dict().items() if k != "dropout"}
        if parent.domain != self.cfg.domain or theirs != ours:
            raise SettingsError(f"--init-from {self.cfg.init_from}: its model ({parent.domain}, {theirs}) differs from "
                                f"this run's ({self.cfg.domain}, {ours}); give the same --cell/--emb-dim/--hidden/"
                                "--layers/--tie-weights")
        self.model.load_state_dict(parent.model.state_dict())
        return parent

    def _load_data(self) -> TokenData:
        c = self.cfg
        if c.domain == "text":
            source = self.out if self.state_prev else Path(c.init_from) if c.init_from else None
            return load_data("text", c.data, vocab_size=c.vocab_size,
                             tokenizer=ckpt.load_tokenizer(source, "text") if source else None)
        return load_data("melody", c.data, augment=c.augment, seed=c.seed)

    # state --------------------------------------------------------------------------------------
    def _train_state(self) -> dict:
        return {"config": asdict(self.cfg), "model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "step": self.step, "epoch": self.epoch, "pos": self.pos, "best": self.best,
                "history": self.history, "wall": self.wall, "rng": torch.get_rng_state(),
                "hidden": list(self.hidden) if isinstance(self.hidden, tuple) else self.hidden,
                "commands": self.commands}

    def _restore(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        self.opt.load_state_dict(s["opt"])
        self.step, self.epoch, self.pos = s["step"], s["epoch"], s["pos"]
        self.best, self.history, self.wall = s["best"], s["history"], s["wall"]
        self.commands = list(s.get("commands") or [
            {"step": 0, "command": command_from_config(TrainConfig(**s["config"])) + "  (reconstructed from the saved configuration)"}])
        torch.set_rng_state(s["rng"])
        h = s["hidden"]
        self.hidden = tuple(h) if isinstance(h, list) else h
        if self.world > 1:  # only rank 0's rows were saved: every process restarts its carried state
            self.hidden = None

    def save_state(self) -> None:
        if _rank() == 0:
            ckpt.save_train_state(self.out, self._train_state())

    # card ---------------------------------------------------------------------------------------
    def write_card(self, valid: dict) -> None:
        c = self.cfg
        card = {
            "name": self.out.name, "domain": c.domain, "cell": c.cell, "data": self.data.info,
            "tokenizer": self.data.tokenizer.to_config(), "parameters": self.model.n_params,
            "hyperparameters": asdict(c), "command": self.commands[0]["command"], "steps": self.step,
            "commands": self.commands,
            "wall_time_s": round(self.wall, 1),
            "hardware": f"{_cpu_name()} CPU, {torch.get_num_threads()} threads x {self.world} processes",
            "metric": self.data.metric, "valid": round(valid["value"], 4),
            "history": self.history[-50:],
        }
        try:
            old = ckpt.read_card(self.out)
        except CheckpointError:
            old = {}
        for k in ("test", "baseline", "samples", "music_stats"):  # filled in later by eval
            if k in old:
                card[k] = old[k]
        write_card(self.out, card)

    # loop ---------------------------------------------------------------------------------------
    def validate(self) -> dict:
        return evaluate(self.model, self.data.valid, self.data.valid_units, self.cfg.domain, self.bos,
                        max_tokens=self.cfg.eval_tokens)

    def run(self, stop_after: int | None = None) -> dict:
        """Train to ``cfg.steps``. ``stop_after`` simulates an interruption after that many steps of
        this run (the same path as Ctrl-C: save, then raise KeyboardInterrupt)."""
        # SIGTERM (kill, a job scheduler) is handled like Ctrl-C: save, then stop.
        _STOP.clear()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _request_stop)
            signal.signal(signal.SIGINT, _request_stop)
        c = self.cfg
        save_every = c.save_every or c.eval_every
        rows = c.batch // self.world
        rank = _rank()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=c.steps, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr)
        data = batchify(self.data.train_stream(self.epoch), c.batch)[rank * rows : (rank + 1) * rows]
        t_last, tok_last = time.time(), 0
        bad_steps = 0
        last_valid = None
        graceful = False
        try:
            while self.step < c.steps:
                if self.pos >= data.size(1) - 1:
                    self.epoch, self.pos, self.hidden = self.epoch + 1, 0, None
                    data = batchify(self.data.train_stream(self.epoch), c.batch)[rank * rows : (rank + 1) * rows]
                    continue
                x = data[:, self.pos : self.pos + c.bptt]
                y = data[:, self.pos + 1 : self.pos + 1 + c.bptt]
                x = x[:, : y.size(1)]
                for g in self.opt.param_groups:
                    g["lr"] = lr_at(c, self.step)
                self.net.train()
                loss, hidden = train_step(self.net, self.opt, x, y, self.hidden, self.bos, c.clip)
                if hidden is None:
                    # A NaN/inf loss never reaches the weights or a checkpoint: skip the batch.
                    bad_steps += 1
                    if bad_steps > 20:
                        raise SettingsError("The loss was NaN/inf for 20 steps in a row; lower --lr. "
                                            f"The last good checkpoint in {self.out} is kept.")
                    self.pos += c.bptt
                    self.hidden = None
                    continue
                bad_steps = 0
                self.hidden = detach_state(hidden)
                self.pos += c.bptt
                self.step += 1
                now = time.time()
                self.wall += now - t_last
                tok_last += x.numel() * self.world
                if bar is not None:
                    bar.update(1)
                    if self.step % 10 == 0 or self.step == c.steps:
                        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_last / max(now - t_last, 1e-9):,.0f}",
                                        epoch=self.epoch)
                t_last, tok_last = now, 0
                if self.step % c.eval_every == 0 or self.step == c.steps:
                    last_valid = self._eval_and_keep_best(loss)
                    t_last = time.time()
                if self.step % save_every == 0 or self.step == c.steps:
                    self.save_state()
                    t_last = time.time()
                if _STOP.is_set() or (stop_after is not None and self.step >= stop_after):
                    graceful = True
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            if graceful:  # between steps: the state is whole (a hard second Ctrl-C keeps the last save)
                self.save_state()
            print(f"\nInterrupted at step {self.step}; saved. Continue with the same command plus --resume.",
                  file=sys.stderr)
            raise
        if bar is not None:
            bar.close()
        if _is_dist():
            torch.distributed.barrier()
        return {"step": self.step, "best_valid": self.best, "last_valid": last_valid, "history": self.history}

    def _eval_and_keep_best(self, train_loss: float) -> dict | None:
        if _rank() != 0:
            return None
        v = self.validate()
        self.history.append({"step": self.step, "train_loss": round(train_loss, 4), "valid": round(v["value"], 4)})
        msg = f"step {self.step}: valid {self.data.metric} {v['value']:.4f}"
        if v["value"] < self.best and math.isfinite(v["value"]):
            self.best = v["value"]
            ckpt.save_weights(self.out, self.model)
            self.write_card(v)
            msg += " (best, saved)"
        if self.progress:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)
        return v


def train(cfg: TrainConfig, resume: bool = False, command: str | None = None, progress: bool = True) -> dict:
    if resume and not (Path(cfg.out) / ckpt.TRAIN_STATE).exists():
        raise CheckpointError(f"Nothing to resume in {cfg.out}: no {ckpt.TRAIN_STATE}")
    return Trainer(cfg, resume=resume, command=command, progress=progress).run()
