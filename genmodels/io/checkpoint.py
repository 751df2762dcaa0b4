"""A checkpoint is a directory: weights, a JSON config, the tokenizer and a model card.

```
checkpoints/NAME/
  config.json         domain, model config, tokenizer config
  model.safetensors   the best weights (safetensors: loading never unpickles anything)
  tokenizer.*         the domain's tokenizer (text: tokenizer.model, melody: tokenizer.json)
  card.json, card.md  data, split, parameters, command, wall time, metrics, samples
  train_state.pt      (training only, not shipped) last weights, optimiser, RNG, data position
```
Every file is written atomically (temp file + ``os.replace``), so a kill or a full disk during a
write leaves the previous version intact. ``train_state.pt`` holds only tensors and plain values and is
read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from genmodels.core.errors import CheckpointError, SettingsError
from genmodels.core.paths import atomic_write, atomic_write_json, repo_path
from genmodels.core.registry import Domain, get_domain
from genmodels.io.card import CARD_JSON, restamp_weights, write_card
from genmodels.nn.mixture import MixtureConfig, MixtureLanguageModel, is_mixture_config
from genmodels.nn.rnn import ModelConfig, RNNLanguageModel

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAIN_STATE = "train_state.pt"
PROGRESS = "progress.json"  # where a training run is (rewritten every few seconds while it trains)


def tied_names(model: torch.nn.Module) -> dict[str, str]:
    """Each state-dict name that holds the same tensor as an earlier one (tied weights: ``head.weight``
    is ``embed.weight``), mapped to that earlier name. Files store a tied tensor once."""
    first: dict[int, str] = {}
    tied = {}
    for k, v in model.state_dict(keep_vars=True).items():
        if id(v) in first:
            tied[k] = first[id(v)]
        else:
            first[id(v)] = k
    return tied


def weights_bytes(model: RNNLanguageModel, half: bool = False) -> bytes:
    tied = tied_names(model)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k not in tied}
    if half:
        sd = {k: v.half() for k, v in sd.items()}
    return st_save(sd, metadata={"format": str(FORMAT_VERSION)})


def init_checkpoint_dir(
    path: str | Path, domain: Domain, model: RNNLanguageModel, tokenizer, extra: dict | None = None
) -> Path:
    """Create the directory with its config and tokenizer (the parts that never change in training)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    domain.save_tokenizer(path, tokenizer)
    cfg = {
        "format": FORMAT_VERSION,
        "domain": domain.name,
        "model": model.config.to_dict(),
        "tokenizer": tokenizer.to_config(),
        **(extra or {}),
    }
    atomic_write_json(path / CONFIG, cfg)
    return path


def update_config(path: str | Path, **entries) -> None:
    """Set top-level entries of a checkpoint's config.json (e.g. its cache weights), leaving the rest."""
    f = Path(path) / CONFIG
    cfg = _read_json(f, "every checkpoint needs its config")
    atomic_write_json(f, cfg | entries)


def save_weights(path: str | Path, model: RNNLanguageModel, half: bool = False) -> str:
    """Write the weights; return their identity (``weights_id`` of the file written)."""
    raw = weights_bytes(model, half)
    atomic_write(Path(path) / WEIGHTS, raw)
    return weights_id(raw)


def weights_id(raw: bytes) -> str:
    """The identity of a weights file: the SHA-256 of its bytes (cards record which weights their
    results were measured on)."""
    return hashlib.sha256(raw).hexdigest()


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model in eval mode (float32), its tokenizer, config and card."""

    path: Path
    domain: Domain
    model: RNNLanguageModel
    tokenizer: Any
    config: dict
    card: dict = field(default_factory=dict)
    weights_id: str = ""  # of the weights file as loaded

    @property
    def name(self) -> str:
        return self.path.name


def _read_json(f: Path, what: str) -> dict:
    if not f.exists():
        raise CheckpointError(f"{f} is missing: {what}")
    try:
        obj = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{f} is not valid JSON ({e})") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{f} must hold a JSON object")
    return obj


def domain_of(cfg: dict, path: Path) -> Domain:
    """The domain a checkpoint's config names; a CheckpointError naming the file otherwise."""
    try:
        return get_domain(cfg.get("domain"))
    except SettingsError as e:
        raise CheckpointError(f"{path / CONFIG}: {e}") from e


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint directory; any problem is a CheckpointError naming the file and the fault."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"Checkpoint directory not found: {path}")
    cfg = _read_json(path / CONFIG, "every checkpoint needs its config")
    domain = domain_of(cfg, path)
    try:
        mcfg = model_config(cfg["model"], domain)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG}: bad 'model' section ({e})") from e
    tokenizer = domain.load_tokenizer(path)
    if tokenizer.vocab_size != mcfg.vocab_size:
        raise CheckpointError(
            f"{path}: the tokenizer has {tokenizer.vocab_size} tokens but the model expects {mcfg.vocab_size}; "
            "they do not belong together"
        )
    wfile = path / WEIGHTS
    try:
        raw = wfile.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{wfile} is missing or unreadable ({e})") from e
    model = _load_model(path, mcfg, raw, domain)
    card = _read_json(path / CARD_JSON, "") if (path / CARD_JSON).exists() else {}
    return Checkpoint(path, domain, model, tokenizer, cfg, card, weights_id(raw))


def model_config(d: dict, domain: Domain) -> ModelConfig | MixtureConfig:
    """The model settings of a config.json's "model" section: one network's, or a mixture's."""
    if not is_mixture_config(d):
        return ModelConfig(**d)
    if not domain.language_model:
        raise ValueError(f"{domain.name} models cannot be mixed")
    return MixtureConfig.from_dict(d)


def _load_model(
    path: Path, mcfg: ModelConfig | MixtureConfig, raw: bytes, domain: Domain | None = None
) -> RNNLanguageModel:
    """The weights ``raw`` (of ``path``) in a model of ``mcfg``, float32, in eval mode."""
    wfile = path / WEIGHTS
    try:
        sd = st_load(raw)  # parses a JSON header and raw tensors; a pickle is refused, never run
    except (SafetensorError, ValueError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{wfile} is not a valid safetensors file (truncated, corrupt or a pickle?): {e}") from e
    if isinstance(mcfg, MixtureConfig):
        model = MixtureLanguageModel(mcfg)
    else:
        model = domain.build_model(mcfg) if domain is not None else RNNLanguageModel(mcfg)
    for name, same in tied_names(model).items():
        sd.setdefault(name, sd.get(same))
    try:
        model.load_state_dict({k: v.float() for k, v in sd.items() if v is not None}, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{wfile} does not match {path / CONFIG}: {str(e).splitlines()[0]}") from e
    return model.eval()


def weights_parameter_count(f: Path) -> int:
    """Parameters in a safetensors file, from its JSON header alone (the tensors are not read)."""
    try:
        with open(f, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(fh.read(size))
        shapes = [v["shape"] for k, v in header.items() if k != "__metadata__"]
    except (OSError, struct.error, ValueError, TypeError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{f}: not a readable safetensors file ({e})") from e
    return sum(math.prod(int(d) for d in shape) for shape in shapes)


def read_config(path: str | Path) -> dict:
    """A checkpoint's config.json, without loading its weights."""
    return _read_json(Path(path) / CONFIG, "every checkpoint needs its config")


def read_card(path: str | Path) -> dict:
    """A checkpoint's card.json (empty if it has none), without loading its weights."""
    f = Path(path) / CARD_JSON
    return _read_json(f, "") if f.exists() else {}


def find_checkpoints(root: str | Path | None = None) -> list[Path]:
    """Checkpoint directories under ``root`` (default: the repository's checkpoints/) with a config and
    weights, sorted by name. A folder whose name starts with a dot is left out: a model being copied into
    place is written under such a name and renamed when whole."""
    root = repo_path("checkpoints") if root is None else Path(root)
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if not p.name.startswith(".") and (p / CONFIG).is_file() and (p / WEIGHTS).is_file()
    )


def pack_for_shipping(path: str | Path) -> int:
    """Rewrite a checkpoint's weights in half precision (loaded back as float32) and drop its training
    state, for committing. Returns the new weights' size in bytes."""
    c = load_checkpoint(path)
    new_id = save_weights(c.path, c.model, half=True)
    if c.card:  # the same weights rounded: results measured on them stay theirs
        write_card(c.path, restamp_weights(c.card, c.weights_id, new_id))
    (c.path / TRAIN_STATE).unlink(missing_ok=True)
    (c.path / PROGRESS).unlink(missing_ok=True)
    return (c.path / WEIGHTS).stat().st_size


# training state -------------------------------------------------------------------------------
def save_train_state(path: str | Path, state: dict) -> None:

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(Path(path) / TRAIN_STATE, buf.getvalue())


def load_train_state(path: str | Path) -> dict:
    f = Path(path) / TRAIN_STATE
    if not f.exists():
        raise CheckpointError(f"Nothing to resume: {f} does not exist")
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files; unsafe pickles raise UnpicklingError
        raise CheckpointError(
            f"{f} cannot be loaded safely ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from e
