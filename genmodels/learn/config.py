"""The training settings (``TrainConfig``: every option with its help and default), checking them, and the
settings a resumed run keeps or changes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from genmodels.core.errors import CheckpointError, SettingsError
from genmodels.core.options import command_args, flatten, from_flat, option
from genmodels.core.registry import BUILTIN_DOMAINS, get_domain
from genmodels.io import checkpoint as ckpt
from genmodels.nn.rnn import ModelConfig

# What a resumed run takes from its saved state whatever the command line says: its data and shape.
RUN_IDENTITY = ("domain", "data", "cell", "emb_dim", "hidden", "layers", "vocab_size", "seed", "batch", "bptt")


# What a fine-tune shares with its parent: the network's shape (the vocabulary may grow; regularisers may change).
NETWORK_SHAPE = ("cell", "emb_dim", "hidden", "layers", "tie_weights")


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
    patience: int = option(
        0,
        "stop early after this many validations in a row without a new best (small corpora overfit)",
        shown="0: never",
    )
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
    if cfg.steps < 0 or cfg.time_budget < 0 or cfg.patience < 0:
        raise SettingsError("--steps, --time-budget and --patience cannot be negative")
    if cfg.steps == 0 and not cfg.time_budget:
        raise SettingsError("--steps 0 (no step limit) needs a --time-budget")
    if cfg.schedule == "plateau" and cfg.plateau_factor <= 1:
        raise SettingsError(f"--plateau-factor {cfg.plateau_factor}: must be above 1")


def resume_config(out: str | Path, overrides: dict) -> TrainConfig:
    """The saved run's configuration with only the explicitly given options changed (e.g. --steps)."""
    saved = ckpt.load_train_state(out)["config"]
    return TrainConfig.from_dict({**flatten(saved), **flatten(overrides)})


def fine_tune_settings(given: dict) -> dict:
    """The settings given, with the network shape of the ``--init-from`` checkpoint wherever none was given:
    a fine-tune loads the parent's weights, so its shape is the parent's, not the defaults."""
    if not given.get("init_from"):
        return given
    try:
        parent = ckpt.read_config(given["init_from"]).get("model") or {}
    except CheckpointError:
        return given  # the trainer names what is wrong with the parent
    return {**{k: parent[k] for k in NETWORK_SHAPE if k in parent}, **given}


def command_from_config(cfg: TrainConfig) -> str:
    """The train command that gives ``cfg`` (used where a run's command was not recorded)."""
    return " ".join(["python -m genmodels train", *command_args(cfg)])


def _adopt_identity(cfg: TrainConfig, saved: dict) -> None:
    """Give ``cfg`` the saved run's data and shape (RUN_IDENTITY), whatever the command line said."""
    saved = flatten(saved)
    for k in RUN_IDENTITY:
        if k in saved:
            setattr(cfg.model if hasattr(cfg.model, k) else cfg, k, saved[k])


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
