"""The models the app offers and the one copy of each that every session shares: finding checkpoints, loading
them once per server (Streamlit's resource cache), reloading when their files change, and their card summaries."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from app.cards import metric_short
from genmodels.core.errors import GenmodelsError
from genmodels.infer.sampling import Sampler
from genmodels.io.checkpoint import (
    PROGRESS,
    TRAIN_STATE,
    WEIGHTS,
    find_checkpoints,
    read_card,
    read_config,
    weights_parameter_count,
)

ROOT = Path(__file__).resolve().parents[1]  # the repository


# The single networks first, the one with the better test figure leading (the default; the GRU where the
# cards say nothing), then a mixture where one ships (better still, at one step of each member per token).
DEFAULT_LABELS = {"gru": "GRU", "lstm": "LSTM", "mix": "Mixture"}


def checkpoints_root() -> Path:
    """``$GENMODELS_CHECKPOINTS`` (relative to the working directory) or the repo's ``checkpoints/``."""
    env = os.environ.get("GENMODELS_CHECKPOINTS")
    return Path(env) if env else ROOT / "checkpoints"


def _domain_of(path: Path) -> str | None:
    try:
        return read_config(path).get("domain")
    except GenmodelsError:
        return None


@dataclass(frozen=True)
class ModelChoice:
    label: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def require_models(domain: str) -> dict[str, ModelChoice]:
    """The models of ``domain`` by label; without any, a message on how to get one, and the page stops."""
    models = available_models(domain)
    if not models:
        st.warning(
            f"No {domain} model was found in `{checkpoints_root()}`. Train one with "
            f"`python -m genmodels prepare {domain}` and `python -m genmodels train --domain {domain} --out "
            f"checkpoints/{domain}-lstm`, or set `GENMODELS_CHECKPOINTS` to a folder of checkpoints."
        )
        st.stop()
    return {m.label: m for m in models}


def available_models(domain: str) -> list[ModelChoice]:
    """Checkpoints of ``domain``: ``<domain>-gru`` as "GRU" and ``<domain>-lstm`` as "LSTM", the one with the
    better test figure on its card first (the default), then ``<domain>-mix`` as "Mixture", then the rest."""
    found = [p for p in find_checkpoints(checkpoints_root()) if _domain_of(p) == domain]
    out = []
    for cell, label in DEFAULT_LABELS.items():
        for p in found:
            if p.name == f"{domain}-{cell}":
                out.append(ModelChoice(label, p))
    single = sorted((c for c in out if c.label != "Mixture"), key=lambda c: _test_value(c.path))  # stable: GRU on ties
    out = single + [c for c in out if c.label == "Mixture"]
    out += [ModelChoice(p.name, p) for p in found if p not in {c.path for c in out}]
    return out


def _test_value(path: Path) -> float:
    """The test figure on a checkpoint's card (lower is better), infinity without one."""
    try:
        value = (read_card(path).get("test") or {}).get("value")
    except GenmodelsError:
        return float("inf")
    return float(value) if isinstance(value, (int, float)) else float("inf")


@st.cache_resource(max_entries=8, show_spinner="Loading the model (once per server)…")
def _load_sampler(path: str, stamp: tuple) -> Sampler:
    return Sampler(path)


def checkpoint_stamp(path: Path) -> tuple:
    """Name, modification time and size of every file of the checkpoint directory: a change to any of
    them (new weights, a card rewritten by ``eval --update-card``, a new tokenizer) is a new cache key.
    Left out: the training state, its progress file and temporary files of atomic writes, which a Sampler never reads (a
    run in progress rewrites its training state every few hundred steps)."""
    try:
        files = sorted(
            f
            for f in Path(path).iterdir()
            if f.is_file() and f.name not in (TRAIN_STATE, PROGRESS) and not f.name.startswith(".")
        )
        return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return ()


def shared_sampler(path: Path) -> Sampler:
    """The process-wide Sampler for ``path``; reloaded when any file of the checkpoint changes on disk."""
    return _load_sampler(str(path), checkpoint_stamp(path))


@st.cache_data(max_entries=32, show_spinner=False)
def _prompt_was_cut(path: str, stamp: tuple, prompt: str) -> bool:
    return _load_sampler(path, stamp).prompt_was_cut(prompt)


def prompt_was_cut(path: Path, prompt: str) -> bool:
    """True when the model reads only the end of ``prompt``; tokenised once per prompt, not on every rerun."""
    return _prompt_was_cut(str(path), checkpoint_stamp(path), prompt)


@dataclass(frozen=True)
class ModelCard:
    """What the Models page shows of a checkpoint, read from its JSON files and its weights' header."""

    card: dict
    config: dict
    parameters: int

    @property
    def domain(self) -> str | None:
        return self.config.get("domain")


def read_model_card(path: Path) -> ModelCard:
    """The card, config and parameter count of a checkpoint, without loading its weights (CheckpointError)."""
    card, config = read_card(path), read_config(path)
    params = card.get("parameters")
    if not isinstance(params, int):
        params = weights_parameter_count(Path(path) / WEIGHTS)
    return ModelCard(card, config, params)


@st.cache_data(max_entries=32, show_spinner=False)
def model_summary(label: str, path: str) -> str:
    """One line from a checkpoint's card, for a model choice's help: network, size, test figure."""
    try:
        mc = read_model_card(Path(path))
    except GenmodelsError:
        return label
    m = mc.config.get("model") or {}
    test = (mc.card.get("test") or {}).get("value")
    units = metric_short(mc.card.get("metric", ""))
    net = f"{m.get('layers', '?')}×{m.get('hidden', '?')} {str(m.get('cell', '')).upper()}"
    if isinstance(m.get("mixture"), list):  # a mixture of trained models (python -m genmodels mix)
        shapes = ", ".join(
            f"{x.get('layers', '?')}×{x.get('hidden', '?')}" for x in m["mixture"] if isinstance(x, dict)
        )
        net = f"a mixture of {len(m['mixture'])} {str(m.get('cell', '')).upper()}s ({shapes})"
    vocab = (mc.config.get("tokenizer") or {}).get("vocab_size")
    pieces = f", a {vocab:,}-token vocabulary" if isinstance(vocab, int) else ""
    figure = f", test {test:.3f} {units} (lower is better)" if isinstance(test, (int, float)) else ""
    return f"{label}: {net}{pieces}, {mc.parameters / 1e6:.2f} M parameters{figure}"
