"""``python -m genmodels mix CK1 CK2 ... --out DIR``: join trained language models into one mixture checkpoint."""

from __future__ import annotations

from pathlib import Path

from genmodels.core.errors import SettingsError
from genmodels.eval.evaluate import _data_path, data_dir
from genmodels.eval.mixing import fit_shares, token_logprobs
from genmodels.io.card import write_card
from genmodels.io.checkpoint import init_checkpoint_dir, load_checkpoint, save_weights
from genmodels.learn.steps import evaluate
from genmodels.nn.mixture import MixtureConfig, MixtureLanguageModel


def mix_checkpoints(
    paths: list[str], out: str, weights: list[float] | None = None, command: str = "", fit: bool = False
) -> dict:
    """Join trained checkpoints into one mixture checkpoint at ``out`` (config, tokenizer, weights, card)
    and score it on the validation split; returns the card. ``weights``: each model's share (default
    equal); ``fit``: the shares that best predict the validation split instead. Typed errors for models
    that cannot mix, before anything is written."""
    target = _check_request(paths, out, weights, fit)
    cks = [load_checkpoint(p) for p in paths]
    _check_members(cks)
    first = cks[0]
    d = first.domain.load_data(_data_path(first, None), tokenizer=first.tokenizer, augment=False)
    if fit:
        weights = fit_shares([token_logprobs(c.model, d.valid, first.tokenizer.bos_id) for c in cks])
    config = MixtureConfig([c.model.config for c in cks], list(weights) if weights else [1.0] * len(cks))
    model = MixtureLanguageModel(config)
    for m, c in zip(model.members, cks, strict=True):
        m.load_state_dict(c.model.state_dict())
    model.eval()
    valid = evaluate(model, d.valid, d.valid_units, first.domain, first.tokenizer.bos_id)["value"]
    ranges = [c.config["pitch_range"] for c in cks if c.config.get("pitch_range")]  # melody: what sampling allows
    extra = {"pitch_range": [min(r[0] for r in ranges), max(r[1] for r in ranges)]} if ranges else None
    init_checkpoint_dir(target, first.domain, model, first.tokenizer, extra)
    card = _mixture_card(paths, out, cks, model, fit, command)
    card |= {"valid": round(valid, 4), "weights": save_weights(target, model)}
    write_card(target, card)
    return card


def _check_request(paths: list[str], out: str, weights: list[float] | None, fit: bool) -> Path:
    """The output folder, once the request itself makes sense (two or more different models, a new folder)."""
    if len(paths) < 2:
        raise SettingsError("mix needs at least two checkpoints")
    target = Path(out).resolve()
    if any(Path(p).resolve() == target for p in paths):
        raise SettingsError(f"--out {out} is one of the models being mixed; choose a new folder")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SettingsError(f"--out {out} already exists and is not an empty folder; choose a new folder")
    if len({Path(p).resolve() for p in paths}) < len(paths):
        raise SettingsError("a checkpoint is listed twice; a mixture needs different models")
    if fit and weights:
        raise SettingsError("give --weights or --fit-weights, not both")
    return target


def _check_members(cks: list) -> None:
    """Models mix when they are single language-model networks of one domain with one tokenizer."""
    first = cks[0]
    for c in cks[1:]:
        if c.domain is not first.domain:
            raise SettingsError(f"{c.path} is a {c.domain.name} model and {first.path} a {first.domain.name} one")
        if c.tokenizer.to_config() != first.tokenizer.to_config() or _pieces(c) != _pieces(first):
            raise SettingsError(f"{c.path} and {first.path} have different tokenizers: a mixture needs one")
    if not first.domain.language_model:
        raise SettingsError(f"{first.domain.name} models cannot be mixed")
    if any(isinstance(c.model, MixtureLanguageModel) for c in cks):
        raise SettingsError("mix models that are single networks (one of these is already a mixture)")


def _mixture_card(paths: list[str], out: str, cks: list, model: MixtureLanguageModel, fit: bool, command: str) -> dict:
    """The card of a mixture: its members with their shares, figures and training commands."""
    first, config = cks[0], model.config
    members = [
        {
            "path": str(p),
            "weights": c.weights_id,
            "share": round(w / sum(config.weights), 4),
            "valid": c.card.get("valid"),
            "test": (c.card.get("test") or {}).get("value"),
            "trained_with": [h["command"] for h in c.card.get("commands", [])] or [c.card.get("command", "?")],
            "cpu_time_s": c.card.get("cpu_time_s"),
        }
        for p, c, w in zip(paths, cks, config.weights, strict=True)
    ]
    note = (
        f"A mixture of {len(cks)} trained models: each next token's probability is the weighted mean of theirs, "
        "so one step costs one step of every member. Not trained as a whole; each member's own card lists how it "
        "was trained."
    )
    if fit:
        note += (
            " The shares were fitted to the validation split (expectation-maximisation), so the validation figure "
            "flatters it slightly; the test split is held out."
        )
    return {
        "name": Path(out).resolve().name,
        "domain": first.domain.name,
        "cell": config.cell,
        "parameters": model.n_params,
        "metric": first.domain.metric,
        "hyperparameters": {"model": config.to_dict()},
        "members": members,
        "command": command or f"python -m genmodels mix {' '.join(paths)} --out {out}",
        "note": note,
        "data": {"data": data_dir(first, None), "split": (first.card.get("data") or {}).get("split", {})},
        "tokenizer": first.tokenizer.to_config(),
        "members_steps": sum(int(c.card.get("steps") or 0) for c in cks),
        "wall_time_s": sum(float(c.card.get("wall_time_s") or 0) for c in cks),
        "cpu_time_s": sum(float(c.card.get("cpu_time_s") or 0) for c in cks),
        "hardware": first.card.get("hardware", "?"),
    }


def _pieces(c) -> list[str]:
    """A text tokenizer's pieces (equal settings can still mean different pieces); [] for other domains."""
    sp = getattr(c.tokenizer, "sp", None)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())] if sp is not None else []
