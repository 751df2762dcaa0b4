"""Evaluation of a checkpoint: the test metric (bits per character or nats per note), on the default
test split or on any text file / MIDI folder, statistics of generated samples against held-out data
(melody: musical statistics), samples, and the model card (``card.json`` + a readable ``card.md``)."""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels.core.errors import SettingsError
from genmodels.core.paths import repo_path
from genmodels.infer.dynamic import DynamicSettings, dynamic_evaluate
from genmodels.infer.sampling import Sampler
from genmodels.io import checkpoint as ckpt
from genmodels.io.card import write_card
from genmodels.learn.cache_fit import score_tunes
from genmodels.learn.steps import evaluate
from genmodels.nn.cache import CacheWeights
from genmodels.nn.losses import split_tunes


def data_dir(c: ckpt.Checkpoint, data: str | None) -> str:
    """The corpus folder as given, else as the checkpoint's card records it, else the domain's default
    (recorded and default folders are relative to the repository)."""
    return data or (c.card.get("data") or {}).get("data") or c.domain.data_folder


def _data_path(c: ckpt.Checkpoint, data: str | None) -> Path:
    return Path(data) if data else repo_path(data_dir(c, None))


def test_metric(c: ckpt.Checkpoint, source: str | None = None, data: str | None = None) -> dict:
    """The domain metric on ``source`` (a text file, a MIDI folder) or the test split of the corpus."""
    if source:
        stream, units = c.domain.stream_from(source, c.tokenizer)
    else:
        d = c.domain.load_data(_data_path(c, data), tokenizer=c.tokenizer, augment=False)
        stream, units, source = d.test, d.test_units, f"{data_dir(c, data)} (test split)"
    r = evaluate(c.model, stream, units, c.domain, c.tokenizer.start_ids)
    out = {
        "metric": c.domain.metric,
        "value": round(r["value"], 4),
        "units": units,
        "tokens": r["tokens"],
        "source": str(source),
    }
    weights = CacheWeights.from_config(c.config.get("cache"))
    if weights is not None:  # each tune read whole, by the network alone and with the copies of its own bars
        out["cache"] = score_tunes(c.model, c.tokenizer, split_tunes(stream, c.tokenizer.start_ids), units, weights)
    return out


def dynamic_metric(c: ckpt.Checkpoint, data: str | None = None) -> dict:
    """The test metric read in order, document by document, without and with dynamic evaluation (the
    same segments, so the two figures differ only by the adaptation)."""

    d = c.domain.load_data(_data_path(c, data), tokenizer=c.tokenizer, augment=False)
    settings = DynamicSettings()
    static = dynamic_evaluate(c.model, d.test, d.test_units, c.domain, c.tokenizer.start_ids, DynamicSettings(0, 0))
    dynamic = dynamic_evaluate(c.model, d.test, d.test_units, c.domain, c.tokenizer.start_ids, settings)
    return {
        "metric": c.domain.metric,
        "static": round(static["value"], 4),
        "dynamic": round(dynamic["value"], 4),
        "gain": round(static["value"] - dynamic["value"], 4),
        "settings": {"lr": settings.lr, "decay": settings.decay, "segment": settings.segment},
        "source": f"{data_dir(c, data)} (test split)",
    }


def baseline_summary(domain, data: str | None = None) -> dict:
    """The n-gram floor on the same test split, as stored in a model card."""
    b = domain.baseline(data)
    return {
        "model": b["model"],
        "order": b.get("order"),
        "value": round(b[f"test_{domain.metric}"], 4),
        "command": f"python -m genmodels eval --baseline ngram --domain {domain.name}"
        + (f" --data {data}" if data else ""),
    }


def eval_checkpoint(
    path: str,
    source: str | None = None,
    data: str | None = None,
    music: bool = False,
    samples: bool = False,
    update_card: bool = False,
    temperatures: tuple | None = None,
    regenerate: bool = False,
    dynamic: bool = False,
    folk: int = 0,
) -> dict:
    """The report of ``python -m genmodels eval``; with ``update_card`` (and no ``source``) its
    results, a baseline and the eval command are written into the model card. Melody: ``temperatures``
    for the ``music`` steering table; ``regenerate`` measures choosing a regenerated passage by the
    likelihood of the bars after it."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    c = ckpt.load_checkpoint(path)
    own = c.domain.eval_report(c, {"data": data, "samples": samples, "update_card": update_card, "folk": folk})
    if own is not None:  # a domain with a report of its own (harmony)
        return own
    report = {"checkpoint": str(path), "domain": c.domain.name, "test": test_metric(c, source, data)}
    if c.card.get("test"):
        report["card_test"] = c.card["test"].get("value")
    if samples:
        report["sample"] = c.domain.card_sample(Sampler(c), _data_path(c, data))
    if dynamic and not source:
        report["dynamic"] = dynamic_metric(c, data)
    extra = {"temperatures": tuple(temperatures)} if temperatures else {}
    stats = c.domain.sample_statistics(c, _data_path(c, data), **extra) if music else None
    if stats is not None:
        report["music"] = stats
    if regenerate:
        report["regenerate"] = c.domain.passage_report(Sampler(c), _data_path(c, data))
        if report["regenerate"] is None:
            raise SettingsError(f"--regenerate measures models that regenerate passages; {c.domain.name} ones do not")
    if update_card and not source:
        _write_results(c, Path(path), report, data)
    return report


def _write_results(c, path: Path, report: dict, data: str | None) -> None:
    """The report's results, a baseline and the eval command into the model card of ``c`` at ``path``."""
    card = dict(c.card)
    card["test"] = report["test"]
    if "sample" in report:
        card["samples"] = [report["sample"]]
    if "music" in report:
        card["music_stats"] = report["music"]
    if "dynamic" in report:
        card["dynamic"] = report["dynamic"]
    card["eval_command"] = f"python -m genmodels eval {path}"
    card["baseline"] = baseline_summary(c.domain, data)
    card["results_weights"] = c.weights_id  # the weights these results belong to
    card.setdefault("weights", c.weights_id)  # cards written before weights were recorded
    card.pop("stale_results", None)  # results of these weights replace those of earlier ones
    write_card(path, card)
