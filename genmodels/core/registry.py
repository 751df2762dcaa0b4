"""The domain registry: what a kind of sequence (text, melody, harmony) must say about itself, and the
domains by name.

Everything shared (model, trainer, checkpoint, sampler, evaluation, bench) asks the domain instead of
comparing its name: which tokenizer file a checkpoint holds, how a corpus folder becomes token streams,
what the metric is called and how nats convert to it, the default corpus and generation length, which
tokens sampling never picks, and the one typical request the benchmark times.

The interface lives here, at the bottom, so that checkpoints, sampling and training can ask a domain
without importing the domains' own modules (which build on them). The built-in domains register themselves
when ``genmodels.domains`` is imported; the first lookup imports it if nobody has yet.
"""

from __future__ import annotations

import importlib
import math
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from genmodels.core.errors import SettingsError
from genmodels.core.paths import repo_path

BUILTIN_DOMAINS = ("text", "melody", "harmony")  # registered by genmodels.domains (a test checks they agree)
_REGISTERED: dict[str, Domain] = {}
_LOCK = threading.Lock()


class Domain(ABC):
    """One kind of sequence. Subclasses set the class attributes and implement the methods."""

    name: str  # as written in config.json and given to --domain
    metric: str  # the name in cards and reports, e.g. "bits_per_char"
    metric_unit: str  # what the metric divides by, e.g. "char"
    metric_note: str  # one sentence for people: what the metric means and the floor it must beat
    data_folder: str  # the default corpus, relative to the repository
    default_length: int  # of a generated continuation, in length_unit
    length_unit: str  # "tokens", "bars"
    tokenizer_file: str  # the tokenizer's file in a checkpoint directory or a prepared corpus
    sample_length: str  # what ``end_to_end`` generates, for the benchmark table
    metric_bits: bool = False  # True: the metric is in bits (nats ÷ ln 2), else in nats
    suggests_words: bool = False  # True: predictive typing (next-word suggestions) works on its models
    language_model: bool = True  # False: its models are not one-stream language models (no step benchmark)

    def __repr__(self) -> str:
        return f"<domain {self.name}>"

    @property
    def default_data(self) -> Path:
        """The default corpus folder, wherever the command runs from."""
        return repo_path(self.data_folder)

    def nats_to_metric(self, nats: float, units: int) -> float:
        """Total nats over a split → the domain's metric (per unit; bits when ``metric_bits``)."""
        per_unit = nats / max(units, 1)
        return per_unit / math.log(2) if self.metric_bits else per_unit

    # model and training -----------------------------------------------------------------------------
    @abstractmethod
    def build_model(self, config: Any) -> Any:
        """A model (a ``torch.nn.Module``) of this domain with ``config``."""

    @abstractmethod
    def trainer_class(self) -> type:
        """The class that trains this domain's models."""

    # files ------------------------------------------------------------------------------------------
    @abstractmethod
    def load_tokenizer(self, folder: Path) -> Any:
        """The tokenizer saved in ``folder``; CheckpointError naming the file if it cannot be read."""

    def fine_tune_tokenizer(self, parent: Any) -> Any:
        """The tokenizer a model fine-tuned from one with ``parent`` trains with: ``parent`` itself, or a
        newer version that only adds tokens after the parent's (the weights grow to fit)."""
        return parent

    def grown_like(self, tokenizer: Any) -> dict[int, int]:
        """New token id -> the older token whose weights it starts from when the vocabulary grows (the rest
        start at the mean of the old rows)."""
        return {}

    @abstractmethod
    def save_tokenizer(self, folder: Path, tokenizer: Any) -> None:
        """Write ``tokenizer`` into ``folder`` atomically."""

    # data -------------------------------------------------------------------------------------------
    @abstractmethod
    def load_data(
        self, folder: str | Path, *, tokenizer: Any = None, vocab_size: int = 2048, augment: bool = True, seed: int = 0
    ):
        """A :class:`genmodels.learn.data.TokenData` from a corpus folder (train/valid/test or any files).
        ``tokenizer``: reuse this one (resume, fine-tuning, evaluation); ``augment``/``seed``: the
        training stream's per-epoch variation, where the domain has one."""

    @abstractmethod
    def stream_from(self, source: str | Path, tokenizer: Any) -> tuple[Any, int]:
        """(token stream, metric units) of any held-out source a user names: a file or a folder."""

    @abstractmethod
    def prepare(self, out: Path | None, workers: int) -> dict:
        """Build the default corpus (deterministically) into ``out`` (default: ``default_data``)."""

    @abstractmethod
    def baseline(self, data: str | Path | None = None, order: int | None = None) -> dict:
        """The n-gram floor on the same test split: a report holding ``test_<metric>``."""

    # sampling ---------------------------------------------------------------------------------------
    @abstractmethod
    def banned_tokens(self, tokenizer: Any, config: dict) -> Any:
        """A (vocab,) bool mask of tokens sampling never picks, for a checkpoint with ``config``."""

    @abstractmethod
    def token_label(self, tokenizer: Any, token_id: int) -> str:
        """A readable form of one token (for charts of next-token probabilities)."""

    @abstractmethod
    def card_sample(self, sampler: Any, data: str | Path) -> str:
        """A sample for the model card, from a fixed prompt and random seed."""

    @abstractmethod
    def end_to_end(self, sampler: Any) -> None:
        """One typical request from prompt to delivered result (timed by the benchmark)."""

    def sample_statistics(self, checkpoint: Any, data: str | Path) -> dict | None:
        """Statistics of generated samples against held-out data (``eval --music``); None: none defined."""
        return None

    def eval_report(self, checkpoint: Any, options: dict) -> dict | None:
        """``python -m genmodels eval`` of a loaded checkpoint of this domain when the domain has a report
        of its own (``options``: eval's options by name); None: the shared report over token streams."""
        return None

    def passage_report(self, sampler: Any, data: str | Path) -> dict | None:
        """How well regenerated passages fit what follows them (``eval --regenerate``); None: not defined."""
        return None

    def after_training(self, path: Path, data: Any) -> dict | None:
        """What a trained checkpoint at ``path`` gets fitted on its validation data (``data``: the trainer's
        TokenData) once training ends; None: nothing."""
        return None


def register(domain: Domain) -> Domain:
    """Make ``domain`` known by its name (a later registration of the same name replaces it)."""
    with _LOCK:
        _REGISTERED[domain.name] = domain
    return domain


def all_domains() -> dict[str, Domain]:
    """Every registered domain by name, the built-in ones included."""
    if not _REGISTERED:
        # By name, not an import statement: the domains build on the layers that call this.
        importlib.import_module("genmodels.domains")
    with _LOCK:
        return dict(_REGISTERED)


def get_domain(name: object) -> Domain:
    """The domain called ``name``; a SettingsError listing the known ones otherwise."""
    known = all_domains()
    domain = known.get(name) if isinstance(name, str) else None
    if domain is None:
        raise SettingsError(f"domain must be one of {', '.join(repr(n) for n in known)}, not {name!r}")
    return domain
