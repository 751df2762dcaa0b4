"""The model card: ``card.json`` (machine-readable) and ``card.md`` (the same, for people).

Fields: name, domain, cell, data (corpus folder and split counts), tokenizer, parameters,
hyperparameters, command, steps, wall_time_s, hardware, metric, valid, history; added by
``python -m genmodels eval --update-card``: test ({metric, value, units, tokens, source}), baseline
({model, value, command}), samples ([str]), music_stats ({tunes_generated, rows: [...]}), eval_command.
"""

from __future__ import annotations

import json
from pathlib import Path

from genmodels.checkpoint import CARD_JSON, CARD_MD
from genmodels.util import atomic_write, atomic_write_json


def write_card(path: Path, card: dict) -> None:
    atomic_write_json(path / CARD_JSON, card)
    atomic_write(path / CARD_MD, card_markdown(card))


def card_markdown(card: dict) -> str:
    """A readable model card from ``card.json``."""
    hp = card.get("hyperparameters", {})
    arch = hp.get("model", hp)  # the model's settings: a section of their own, or mixed in (older cards)
    metric = card.get("metric", "")
    lines = [f"# {card.get('name', 'model')}", "",
             f"A {arch.get('layers', '?')}-layer {card.get('cell', '').upper()} ({arch.get('hidden', '?')} units) "
             f"{card.get('domain', '')} model, {card.get('parameters', 0):,} parameters.", ""]
    split = (card.get("data") or {}).get("split", {})
    lines += ["## Data", "", f"- Corpus: `{(card.get('data') or {}).get('data', '?')}`"]
    for s, v in split.items():
        desc = ", ".join(f"{k}: {v[k]:,}" if isinstance(v[k], int) else f"{k}: {len(v[k])}" for k in v)
        lines.append(f"- {s}: {desc}")
    if (card.get("data") or {}).get("augment"):
        lines.append(f"- Augmentation: {card['data']['augment']}")
    lines += ["", "## Tokenizer", "", f"`{json.dumps(card.get('tokenizer', {}))[:300]}`", "",
              "## Training", "", f"- Command: `{card.get('command', '')}`",
              f"- Hyper-parameters: `{json.dumps(hp, sort_keys=True)}`",
              *[f"- Then (resume or fine-tune, from step {c['step']} of that run): `{c['command']}`" for c in card.get("commands", [])[1:]],
              *([f"- Note: {card['note']}"] if card.get("note") else []),
              f"- Steps: {card.get('steps', '?')}, wall time {card.get('wall_time_s', 0) / 60:.1f} min on {card.get('hardware', '?')}", "",
              "## Metrics", "", f"| split | {metric} |", "|---|---|", f"| valid | {card.get('valid', '?')} |"]
    if card.get("test"):
        lines.append(f"| test | {card['test']['value']} |")
    if card.get("baseline"):
        b = card["baseline"]
        lines.append(f"| test, baseline: {b.get('model', '')} | {b.get('value', '?')} |")
    lines += ["", f"Reprint with `{card.get('eval_command', 'python -m genmodels eval checkpoints/' + card.get('name', ''))}`."]
    if card.get("music_stats"):
        lines += ["", "## Generated vs held-out tunes", "",
                  f"{card['music_stats']['tunes_generated']} tunes at temperature 1.0, fixed seed "
                  f"(`python -m genmodels eval checkpoints/{card.get('name', '')} --music`):", "",
                  "| statistic | generated | held-out |", "|---|---|---|"]
        for r in card["music_stats"]["rows"]:
            lines.append(f"| {r['statistic']} | {r['generated']} | {r['held_out']} |")
    if card.get("samples"):
        lines += ["", "## Sample", "", "```", card["samples"][0], "```"]
    return "\n".join(lines) + "\n"
