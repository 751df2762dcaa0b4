"""Model cards in plain words for the Models page: the summary sentence, the command history with the
steps each command trained, the musical statistics as a side-by-side table, the corpus splits.

No Streamlit here (the page draws what these return), so the wording is tested directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.render import plain
from genmodels.io.card import mixture_line

_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_RECONSTRUCTED = "(reconstructed from the saved configuration)"
METRIC_WORDS = {"bits_per_char": "bits per character", "nats_per_note": "nats per note"}
_UNIT_WORDS = {"bits_per_char": "characters", "nats_per_note": "notes"}


def metric_short(m: str) -> str:
    """A card's metric as a unit: "bits_per_char" → "bits/char"."""
    return (m or "loss").replace("_per_", "/").replace("_", " ")


def metric_name(m: str) -> str:
    """A card's metric in words ("bits per character"), else its short form."""
    return METRIC_WORDS.get(m, metric_short(m))


# The card's statistic names, as the README's table words them, in its order; durations in ticks (12 a quarter).
STAT_LABELS = {
    "notes_per_tune": "notes per tune",
    "scale_consistency": "scale consistency",
    "pitch_class_entropy": "pitch-class entropy (bits)",
    "pitch_range": "pitch range (semitones)",
    "min_pitch": "lowest note (MIDI)",
    "max_pitch": "highest note (MIDI)",
    "in_range_fraction": "notes within the training tunes' range",
    "bar_completeness": "bar completeness",
    "complete_bar_fraction": "complete bars",
    "mean_duration": "mean note length (quarter notes)",
    "longest_shared_run": "longest run shared with a training tune (notes, mean)",
    "longest_shared_run_max": "longest run shared with a training tune (notes, most)",
    "duration distribution distance (TV)": "note-length distribution distance (total variation)",
}
_TICK_NAMES = {
    3: "sixteenth notes",
    4: "triplet eighths",
    6: "eighth notes",
    8: "triplet quarters",
    9: "dotted eighths",
    12: "quarter notes",
    18: "dotted quarters",
    24: "half notes",
    36: "dotted halves",
    48: "whole notes",
}


def number_words(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else f"{n:,}"


def _steps_flag(command: str) -> int | None:
    m = re.search(r"--steps[ =](\d+)", command)
    return int(m.group(1)) if m else None


def command_history(card: dict) -> list[dict]:
    """The card's commands in order, each {command, start, end, how, reconstructed}: the steps it
    trained run from `start` to `end` of its own count (a resume goes on counting, a fine-tuning
    with --init-from starts again at 0). A command's end is where the next one resumed, else its
    --steps; the last one ends at the card's `steps`."""
    if card.get("members"):  # a mixture is not trained: its members' cards hold their commands
        return []
    raw = [c for c in card.get("commands") or [] if isinstance(c, dict) and isinstance(c.get("command"), str)]
    if not raw and isinstance(card.get("command"), str):
        raw = [{"command": card["command"], "step": 0}]
    out = []
    for i, c in enumerate(raw):
        command = c["command"]
        reconstructed = _RECONSTRUCTED in command
        command = command.replace(_RECONSTRUCTED, "").strip()
        start = int(c.get("step") or 0)
        nxt = raw[i + 1] if i + 1 < len(raw) else None
        if nxt is not None and int(nxt.get("step") or 0) > 0:
            end = int(nxt["step"])  # stopped there and resumed by the next command
        elif nxt is None and isinstance(card.get("steps"), int):
            end = card["steps"]
        else:
            end = _steps_flag(command) or start
        if i == 0:
            how = "trained from scratch"
        elif start > 0:
            how = f"resumed at step {start:,}"
        elif "--init-from" in command:
            how = "fine-tuned from the weights above, counting steps again from 0"
        else:
            how = "trained again"
        out.append({"command": command, "start": start, "end": end, "how": how, "reconstructed": reconstructed})
    return out


def total_steps(history: list[dict]) -> int:
    return sum(max(0, h["end"] - h["start"]) for h in history)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 10 else f"{v:,.1f}"


def validation_lines(card: dict, unit: str) -> list[str]:
    """The validation figure and, for a fine-tune, its base model's figure on the same split."""
    lines = []
    if isinstance(card.get("valid"), (int, float)):
        lines.append(f"On the validation split: {card['valid']:.4g} {unit}.")
    if isinstance(card.get("parent_valid"), (int, float)):
        parent = (card.get("commands") or [{}])[0].get("model", "the base model")
        lines.append(f"Before fine-tuning, {plain(parent)} scored {card['parent_valid']:.4g} {unit} there.")
    return lines


def summary(card: dict, name: str = "") -> str:
    """One paragraph in plain words: the test result and what it was measured on, the n-gram floor,
    the training (steps, commands, time, hardware)."""
    metric = card.get("metric", "")
    unit = METRIC_WORDS.get(metric, metric.replace("_", " ") or "loss")
    test = card.get("test") if isinstance(card.get("test"), dict) else {}
    parts = [result_line(card, test, unit)] if isinstance(test.get("value"), (int, float)) else []
    parts += validation_lines(card, unit)
    history = command_history(card)
    if card.get("members"):  # a mixture: not trained itself (show_members has its members)
        parts.append(f"{mixture_line(card)} Made with `{card.get('command', 'python -m genmodels mix')}`.")
    elif history:
        n = len(history)
        t = f"Trained for {total_steps(history):,} steps in all"
        t += f", in {number_words(n)} commands" if n > 1 else ""
        if isinstance(card.get("steps"), int) and any(h["start"] == 0 for h in history[1:]):
            t += f" (the last one ran to step {card['steps']:,} of its own count)"
        if isinstance(card.get("wall_time_s"), (int, float)):
            t += f", {card['wall_time_s'] / 60:,.0f} minutes"
        if card.get("hardware"):
            t += f" on {card['hardware']}"
        parts.append(t + ".")
    return " ".join(parts)


def result_line(card: dict, test: dict, unit: str) -> str:
    """The test figure, what it was counted on, and how it compares with the best n-gram."""
    metric, value = card.get("metric", ""), test["value"]
    split = ((card.get("data") or {}).get("split") or {}).get("test") or {}
    counted = []
    if isinstance(test.get("units"), int):
        counted.append(f"{test['units']:,} {_UNIT_WORDS.get(metric, 'units')}")
    if isinstance(test.get("tokens"), int):
        counted.append(f"{test['tokens']:,} tokens")
    if isinstance(split.get("documents"), list):
        docs = split["documents"]
        where = f"{number_words(len(docs))} held-out works ({', '.join(map(str, docs))}"
        where += f": {', '.join(counted)})" if counted else ")"
    else:
        where = f"{split['tunes']:,} held-out tunes" if isinstance(split.get("tunes"), int) else "the test split"
        where += f" ({', '.join(counted)})" if counted else ""
    s = f"**{value:.3g}** {unit} on {where}"
    base = card.get("baseline") if isinstance(card.get("baseline"), dict) else {}
    if isinstance(base.get("value"), (int, float)) and base["value"] > 0:
        gain = (base["value"] - value) / base["value"]
        model = str(base.get("model", "n-gram"))
        if isinstance(base.get("order"), int):
            model = model.replace("n-gram", f"{base['order']}-gram")
        s += (
            f", {abs(gain):.0%} {'better' if gain >= 0 else 'worse'} than the best n-gram "
            f"({model}: {base['value']:.3g} {unit})"
        )
    return s + ". Lower is better."


def music_rows(card: dict) -> list[dict]:
    """The card's musical statistics as rows {statistic, generated, held_out} of text, in the README's words."""
    stats = card.get("music_stats") if isinstance(card.get("music_stats"), dict) else {}
    rows = []
    for r in stats.get("rows") or []:
        if not isinstance(r, dict) or r.get("statistic") == "tunes":
            continue
        key = str(r.get("statistic"))
        label = STAT_LABELS.get(key)
        m = re.fullmatch(r"share of (\d+)-tick notes", key)
        if m:
            ticks = int(m.group(1))
            label = f"share of {_TICK_NAMES.get(ticks, f'{ticks}-tick notes')}"
        gen, held = r.get("generated"), r.get("held_out")
        if key == "mean_duration":
            gen, held = (v / 12 if isinstance(v, (int, float)) else v for v in (gen, held))
        rows.append({"statistic": label or key.replace("_", " "), "generated": gen, "held_out": held})
    return rows


def _cell(v) -> str:
    if isinstance(v, bool) or v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def music_table(cards: dict[str, dict]) -> list[dict]:
    """Side by side, as in the README: one row per statistic, a column per model, then the held-out tunes."""
    order: list[str] = []
    by_model: dict[str, dict[str, dict]] = {}
    held: dict[str, object] = {}
    for name, card in cards.items():
        rows = music_rows(card)
        if not rows:
            continue
        by_model[name] = {r["statistic"]: r for r in rows}
        for r in rows:
            if r["statistic"] not in order:
                order.append(r["statistic"])
            held.setdefault(r["statistic"], r["held_out"])
    table = []
    for stat in order:
        row = {"statistic": stat}
        for name, rows in by_model.items():
            row[name] = _cell(rows[stat]["generated"]) if stat in rows else "–"
        row["held-out tunes"] = _cell(held.get(stat))
        table.append(row)
    return table


def music_caption(card: dict) -> str:
    stats = card.get("music_stats") if isinstance(card.get("music_stats"), dict) else {}
    n, h = stats.get("tunes_generated"), stats.get("held_out_tunes")
    temp = stats.get("temperature", 1.0)
    if not isinstance(n, int):
        return ""
    return (
        f"{n:,} tunes generated at temperature {temp}, one per held-out tune's meter, key and length, "
        f"against the {h:,} held-out tunes."
        if isinstance(h, int)
        else f"{n:,} tunes generated at temperature {temp}."
    )


def _manifest_counts(folder: str | None) -> dict[str, dict[str, int]]:
    """Notes per split from a melody corpus's manifest.json, when the folder is there."""
    if not folder:
        return {}
    path = Path(folder) / "manifest.json"
    try:
        tunes = json.loads(path.read_text()).get("tunes", [])
    except (OSError, ValueError, AttributeError):
        return {}
    counts: dict[str, dict[str, int]] = {}
    for t in tunes:
        if isinstance(t, dict) and isinstance(t.get("n_notes"), int):
            c = counts.setdefault(str(t.get("split")), {"notes": 0})
            c["notes"] += t["n_notes"]
    return counts


def split_rows(card: dict, root: Path | None = None) -> list[dict]:
    """The corpus splits, one row each, every cell text: documents or tunes, and characters or notes.
    A count the card lacks is taken from the corpus manifest when it is on disk, else "not recorded".
    Token counts are left out: the test's token count is the one in the summary."""
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    split = data.get("split") if isinstance(data.get("split"), dict) else {}
    folder = data.get("data")
    manifest = _manifest_counts(str(Path(root or ".") / folder) if folder else None)
    columns: list[str] = []
    for info in split.values():
        for k in info if isinstance(info, dict) else []:
            if k not in columns and k not in ("tokens", "files"):
                columns.append(k)
    first = ("documents", "tunes")
    columns.sort(key=lambda k: k not in first)
    rows = []
    for name in sorted(split, key=lambda n: (["train", "valid", "test"] + [n]).index(n)):
        info = split[name] if isinstance(split[name], dict) else {}
        row = {"split": name}
        for k in columns:
            v = info.get(k)
            if v is None:
                v = (manifest.get(name) or {}).get(k)
            row[k] = f"{len(v):,}" if isinstance(v, list) else _cell(v) if v is not None else "not recorded"
        rows.append(row)
    return rows
