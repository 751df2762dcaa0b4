"""The model card: ``card.json`` (machine-readable) and ``card.md`` (the same, for people).

Fields: name, domain, cell, data (corpus folder and split counts), tokenizer, parameters,
hyperparameters, command, steps, wall_time_s, hardware, metric, valid, history; added by
``python -m genmodels eval --update-card``: test ({metric, value, units, tokens, source}), baseline
({model, value, command}), samples ([str]), music_stats ({tunes_generated, rows: [...]}), dynamic
(``eval --dynamic``: {metric, static, dynamic, ...}), eval_command.

Which weights: ``weights`` is the identity (SHA-256) of the weights the card describes, written by
training; ``results_weights`` that of the weights eval measured its results on. When training saves new
weights, the results of earlier ones move to ``stale_results`` (with the weights they belong to): they
are shown as stale, never beside the new validation score as if they were its own.
"""

from __future__ import annotations

import json
from pathlib import Path

from genmodels.core.paths import atomic_write, atomic_write_json

RESULTS = (
    "test",
    "baseline",
    "samples",
    "music_stats",
    "dynamic",
    "eval_command",
    "harmony",
)  # measured by eval on some weights

CARD_JSON = "card.json"
CARD_MD = "card.md"


def split_results(card: dict) -> tuple[dict, dict]:
    """(results measured on the card's weights, results measured on earlier weights). Cards written
    before weights were recorded have no ``weights``: their results count as current."""
    found = {k: card[k] for k in RESULTS if k in card}
    if found and card.get("weights") and card.get("results_weights") != card["weights"]:
        return {}, {**found, "weights": card.get("results_weights")}
    return found, dict(card.get("stale_results") or {})


def carry_results(old: dict, weights: str) -> dict:
    """The results of the card ``old`` for a new card of ``weights``: current if measured on those
    weights, else under ``stale_results`` with the step and validation score they went with."""
    found, stale = split_results(old)
    if found and old.get("results_weights") == weights:
        return {**found, "results_weights": weights, **({"stale_results": stale} if stale else {})}
    if found:
        stale = {**found, "weights": old.get("results_weights"), "steps": old.get("steps"), "valid": old.get("valid")}
    return {"stale_results": stale} if stale else {}


def restamp_weights(card: dict, old: str, new: str) -> dict:
    """``card`` after its weights ``old`` were rewritten as ``new`` holding the same values (rounded)."""
    card = dict(card)
    for k in ("weights", "results_weights"):
        if card.get(k) == old:
            card[k] = new
    return card


def write_card(path: Path, card: dict) -> None:
    atomic_write_json(path / CARD_JSON, card)
    atomic_write(path / CARD_MD, card_markdown(card))


def card_markdown(card: dict) -> str:
    """A readable model card from ``card.json``."""
    fresh, stale = split_results(card)
    lines = _head_lines(card) + _data_lines(card) + _training_lines(card) + _metric_lines(card, fresh)
    lines += _music_lines(card, fresh) + _harmony_lines(card, fresh)
    if fresh.get("samples"):
        lines += ["", "## Sample", "", "```", fresh["samples"][0], "```"]
    return "\n".join(lines + _stale_lines(card, stale)) + "\n"


def _head_lines(card: dict) -> list[str]:
    hp = card.get("hyperparameters", {})
    arch = hp.get("model", hp)  # the model's settings: a section of their own, or mixed in (older cards)
    if card.get("members"):
        lines = [f"# {card.get('name', 'model')}", "", mixture_line(card), ""]
        for m in card["members"]:
            lines.append(
                f"- `{m.get('path')}`: share {m.get('share')}, valid {m.get('valid')}, test {m.get('test')} "
                f"(weights {str(m.get('weights'))[:12]}); trained with "
                + "; then ".join(f"`{c}`" for c in m.get("trained_with", []))
            )
        return lines + [""]
    return [
        f"# {card.get('name', 'model')}",
        "",
        f"A {arch.get('layers', '?')}-layer {card.get('cell', '').upper()} ({arch.get('hidden', '?')} units) "
        f"{card.get('domain', '')} model, {card.get('parameters', 0):,} parameters.",
        "",
    ]


def mixture_line(card: dict) -> str:
    arch = card.get("hyperparameters", {}).get("model", {})
    shapes = ", ".join(f"{m.get('layers')}×{m.get('hidden')}" for m in arch.get("mixture", []))
    return (
        f"A mixture of {len(card['members'])} {card.get('cell', '').upper()} {card.get('domain', '')} models "
        f"({shapes}), {card.get('parameters', 0):,} parameters in all: the next token's probabilities are the "
        "weighted mean of the members'."
    )


def _data_lines(card: dict) -> list[str]:
    data = card.get("data") or {}
    lines = ["## Data", "", f"- Corpus: `{data.get('data', '?')}`"]
    for s, v in data.get("split", {}).items():
        # Token counts of the splits' streams are left out: the test figure says how many tokens it scored,
        # the one count a reader compares (a stream holds one more boundary token per document).
        desc = ", ".join(f"{k}: {v[k]:,}" if isinstance(v[k], int) else f"{k}: {len(v[k])}" for k in v if k != "tokens")
        lines.append(f"- {s}: {desc}")
    if data.get("augment"):
        lines.append(f"- Augmentation: {data['augment']}")
    return lines


def _training_lines(card: dict) -> list[str]:
    hp = card.get("hyperparameters", {})
    return [
        "",
        "## Tokenizer",
        "",
        f"`{json.dumps(card.get('tokenizer', {}))[:300]}`",
        "",
        "## Training",
        "",
        f"- Command: `{card.get('command', '')}`",
        f"- Hyper-parameters: `{json.dumps(hp, sort_keys=True)}`",
        *[_then_line(c) for c in card.get("commands", [])[1:]],
        *([f"- Note: {card['note']}"] if card.get("note") else []),
        (
            f"- The members' training together: {card.get('members_steps', '?')} steps, "
            f"{card.get('cpu_time_s', 0) / 60:.1f} CPU min on {card.get('hardware', '?')}"
            if card.get("members")
            else f"- Steps: {card.get('steps', '?')}, wall time {card.get('wall_time_s', 0) / 60:.1f} min "
            f"on {card.get('hardware', '?')}"
        ),
    ]


def _metric_lines(card: dict, fresh: dict) -> list[str]:
    metric = card.get("metric", "")
    lines = ["", "## Metrics", "", f"| split | {metric} |", "|---|---|", f"| valid | {card.get('valid', '?')} |"]
    if card.get("parent_valid") is not None:  # a fine-tune: its parent on the same validation split
        parent = (card.get("commands") or [{}])[0].get("model", "the parent model")
        lines.append(f"| valid, before fine-tuning ({parent}) | {card['parent_valid']} |")
    if fresh.get("test"):
        t = fresh["test"]
        unit = {"bits_per_char": "characters", "nats_per_note": "notes"}.get(metric, "units")
        scored = [f"{t[k]:,} {w}" for k, w in (("units", unit), ("tokens", "tokens")) if isinstance(t.get(k), int)]
        lines.append(f"| test | {t['value']}" + (f" ({', '.join(scored)} scored)" if scored else "") + " |")
        if t.get("cache"):
            k = t["cache"]
            lines.append(
                f"| test, each tune read whole: network alone / with copies of its own bars | "
                f"{k['network']} / {k['with_cache']} |"
            )
    if fresh.get("dynamic"):
        d = fresh["dynamic"]
        lines.append(f"| test, read in order: static / dynamic evaluation | {d['static']} / {d['dynamic']} |")
    if fresh.get("baseline"):
        b = fresh["baseline"]
        lines.append(f"| test, baseline: {b.get('model', '')} | {b.get('value', '?')} |")
    eval_command = fresh.get("eval_command", "python -m genmodels eval checkpoints/" + card.get("name", ""))
    return lines + ["", f"Reprint with `{eval_command}`."]


def _music_lines(card: dict, fresh: dict) -> list[str]:
    if not fresh.get("music_stats"):
        return []
    lines = [
        "",
        "## Generated vs held-out tunes",
        "",
        f"{fresh['music_stats']['tunes_generated']} tunes at temperature 1.0, fixed seed "
        f"(`python -m genmodels eval checkpoints/{card.get('name', '')} --music`):",
        "",
        "| statistic | generated | held-out |",
        "|---|---|---|",
    ]
    return lines + [f"| {r['statistic']} | {r['generated']} | {r['held_out']} |" for r in fresh["music_stats"]["rows"]]


def _harmony_lines(card: dict, fresh: dict) -> list[str]:
    """Harmony models: their harmonies of the test chorales' melodies beside the baselines' and Bach's."""
    h = fresh.get("harmony") or {}
    if not h.get("harmonies"):
        return []
    r, b, folk = h["harmonies"], fresh.get("baseline") or {}, h.get("folk") or {}
    nats = (fresh.get("test") or {}).get("value", "?")
    rows = [("this model", nats, r, folk.get("faults_per_100_beats", {}))]
    if h.get("harmonies_unmasked"):
        free = (h.get("folk_unmasked") or {}).get("faults_per_100_beats", {})
        rows.append(("this model without the voice-leading mask", nats, h["harmonies_unmasked"], free))
    for name in ("lookup", "hmm"):
        if name in b:
            x = b[name]
            rows.append((f"baseline: {name}", x["nats_per_note"], x, {"total": x.get("folk_faults_per_100_beats", "")}))
    lines = [
        "",
        f"## Harmonies of the {r['pieces']} test chorales' melodies (greedy), against Bach's",
        "",
        "| harmoniser | nats per lower-voice note | bass agreement | chord agreement | faults per 100 beats "
        "| folk tunes: faults per 100 beats |",
        "|---|---|---|---|---|---|",
    ]
    for name, nats, x, f in rows:
        faults = x["faults_per_100_beats"]
        total = faults["total"] if isinstance(faults, dict) else faults
        agree = f"{x['bass_agreement']:.3f} | {x['chord_agreement']:.3f}"
        lines.append(f"| {name} | {nats} | {agree} | {total} | {f.get('total', '')} |")
    bach = r["reference_faults_per_100_beats"]
    lines.append(f"| Bach | | 1 | 1 | {bach['total']} | |")
    lines += [
        "",
        "Faults per 100 beats by rule (model / Bach): "
        + ", ".join(
            f"{k.replace('_', ' ')} {v} / {bach.get(k, '?')}"
            for k, v in r["faults_per_100_beats"].items()
            if k != "total"
        )
        + ".",
    ]
    if folk:
        lines.append(f"Folk tunes: {folk['tunes']} held-out melodies of the melody corpus ({folk['refused']} refused).")
    return lines


def _then_line(c: dict) -> str:
    """A later invocation (a resume or a fine-tune) and the settings it changed."""
    changed = ", ".join(f"{k} {a} → {b}" for k, (a, b) in sorted((c.get("changed") or {}).items()))
    return f"- Then (resume or fine-tune, from step {c['step']} of that run): `{c['command']}`" + (
        f" (changed: {changed})" if changed else ""
    )


def _stale_lines(card: dict, stale: dict) -> list[str]:
    """A section for results measured on earlier weights (not these), if there are any."""
    if not any(k in stale for k in RESULTS):
        return []
    when = f" (step {stale['steps']}, valid {stale.get('valid')})" if stale.get("steps") is not None else ""
    lines = [
        "",
        "## Stale results (earlier weights)",
        "",
        f"Measured on earlier weights{when}, not on these; rerun "
        f"`python -m genmodels eval checkpoints/{card.get('name', '')} --update-card`.",
        "",
    ]
    if stale.get("test"):
        lines.append(f"- test: {stale['test'].get('value')} (stale)")
    if stale.get("baseline"):
        lines.append(f"- test, baseline {stale['baseline'].get('model', '')}: {stale['baseline'].get('value')}")
    for k in ("samples", "music_stats", "dynamic"):
        if stale.get(k):
            lines.append(f"- {k.replace('_', ' ')}: stale, not shown")
    return lines
