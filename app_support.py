"""Shared UI helpers for the Streamlit pages: finding and caching models, charts, HTML, file names.

No model logic lives here: generation, parsing and rendering are calls into ``genmodels``.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app_cards import metric_short
from genmodels.core.errors import GenmodelsError
from genmodels.infer.sampling import Sampler
from genmodels.io.checkpoint import (
    TRAIN_STATE,
    WEIGHTS,
    find_checkpoints,
    read_card,
    read_config,
    weights_parameter_count,
)
from genmodels.music.notation import KEY_NAMES

ROOT = Path(__file__).resolve().parent
# The GRU first (the default: fast, and the best single network on every test set), then the LSTM, then a
# mixture where one ships (better still, at one step of each member per token).
DEFAULT_LABELS = {"gru": "GRU", "lstm": "LSTM", "mix": "Mixture"}
CONTINUATION_COLOUR = "#b3135b"
SEED_COLOUR = "#8a8a8a"


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
    """Checkpoints of ``domain``: ``<domain>-gru`` as "GRU" (the default), ``<domain>-lstm`` as "LSTM",
    ``<domain>-mix`` as "Mixture", then the rest."""
    found = [p for p in find_checkpoints(checkpoints_root()) if _domain_of(p) == domain]
    out = []
    for cell, label in DEFAULT_LABELS.items():
        for p in found:
            if p.name == f"{domain}-{cell}":
                out.append(ModelChoice(label, p))
    out += [ModelChoice(p.name, p) for p in found if p not in {c.path for c in out}]
    return out


@st.cache_resource(max_entries=8, show_spinner="Loading the model (once per server)…")
def _load_generator(path: str, stamp: tuple) -> Sampler:
    return Sampler(path)


def checkpoint_stamp(path: Path) -> tuple:
    """Name, modification time and size of every file of the checkpoint directory: a change to any of
    them (new weights, a card rewritten by ``eval --update-card``, a new tokenizer) is a new cache key.
    Left out: the training state and temporary files of atomic writes, which a Sampler never reads (a
    run in progress rewrites its training state every few hundred steps)."""
    try:
        files = sorted(
            f for f in Path(path).iterdir() if f.is_file() and f.name != TRAIN_STATE and not f.name.startswith(".")
        )
        return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return ()


def get_generator(path: Path) -> Sampler:
    """The process-wide Sampler for ``path``; reloaded when any file of the checkpoint changes on disk."""
    return _load_generator(str(path), checkpoint_stamp(path))


@st.cache_data(max_entries=32, show_spinner=False)
def _prompt_was_cut(path: str, stamp: tuple, prompt: str) -> bool:
    return _load_generator(path, stamp).prompt_was_cut(prompt)


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


def plain(text: object) -> str:
    """Markdown that shows ``text`` exactly as written: every ASCII punctuation mark is backslash-escaped
    (CommonMark allows that for each one), so a link, an image, HTML, a colour directive, an emoji shortcode
    or LaTeX from a link, a file or a track name is shown as characters, never rendered. Line breaks stay."""
    s = re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", str(text))
    return s.replace("  ", "\u00a0\u00a0").replace("\n", "  \n")


def new_seed() -> int:
    return secrets.randbelow(1_000_000)


def sanitise_filename(name: str) -> str:
    """A safe file name: letters, digits, dot, dash, underscore; '#' becomes 'sharp'."""
    name = name.replace("#", "sharp")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return (name or "melody")[:120]


def key_label(key: tuple[int, str]) -> str:
    return f"{KEY_NAMES[key[0] % 12]} {key[1]}"


def show_piece(piece: str) -> str:
    """A token as a chart label: spaces and newlines made visible."""
    return piece.replace("\n", "⏎").replace(" ", "·") or "∅"


# ---------------------------------------------------------------------------------------------
# Text as HTML (always escaped)
# ---------------------------------------------------------------------------------------------
_BOX = (
    "font-family: Georgia, 'Times New Roman', serif; font-size: 1.05rem; line-height: 1.6; "
    "white-space: pre-wrap; word-wrap: break-word; margin: 0;"
)


def seed_tail(seed: str, chars: int = 600) -> str:
    return seed if len(seed) <= chars else "…" + seed[-chars:]


def text_html(seed: str, continuation: str) -> str:
    """Seed in grey, continuation bold and coloured; everything HTML-escaped."""
    return (
        f'<div class="gm-text" style="{_BOX}">'
        f'<span class="gm-seed" style="color:{SEED_COLOUR}">{html.escape(seed_tail(seed))}</span>'
        f'<span class="gm-cont" style="color:{CONTINUATION_COLOUR};font-weight:600">'
        f"{html.escape(continuation)}</span></div>"
    )


def prob_colour(p: float) -> str:
    """Background for a token of probability ``p``: red (surprising) → yellow → green (expected)."""
    p = min(max(p, 0.0), 1.0)
    hue = int(120 * p**0.5)
    return f"hsl({hue}, 75%, 82%)"


def tokens_html(seed: str, tokens: list[tuple[str, float]]) -> str:
    """The continuation with every token's background coloured by its probability (hover for the value)."""
    spans = "".join(
        f'<span title="p = {p:.3f}" style="background:{prob_colour(p)};border-radius:3px;'
        f'color:#111">{html.escape(piece)}</span>'
        for piece, p in tokens
    )
    return (
        f'<div class="gm-text" style="{_BOX}">'
        f'<span style="color:{SEED_COLOUR}">{html.escape(seed_tail(seed, 200))}</span>{spans}</div>'
    )


PROB_LEGEND = (
    '<div style="font-size:0.8rem;color:#666">Colour = the model\'s probability of the token it picked: '
    f'<span style="background:{prob_colour(0.02)};padding:0 4px">unlikely</span> '
    f'<span style="background:{prob_colour(0.25)};padding:0 4px">possible</span> '
    f'<span style="background:{prob_colour(0.9)};padding:0 4px">expected</span> '
    "(hover a word for its probability).</div>"
)


def next_token_chart(probs: list[tuple[str, float]]) -> alt.Chart:
    df = pd.DataFrame({"token": [show_piece(t) for t, _ in probs], "probability": [p for _, p in probs]})
    df["rank"] = range(len(df))
    return (
        alt.Chart(df)
        .mark_bar(color=CONTINUATION_COLOUR)
        .encode(
            x=alt.X("probability:Q", axis=alt.Axis(format="%"), title="probability of the next token"),
            y=alt.Y(
                "token:N",
                sort=alt.SortField("rank"),
                title=None,
                axis=alt.Axis(labelOverlap=False, labelFontSize=13, labelLimit=160),
            ),
            tooltip=["token", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(height=22 * len(df) + 30)
    )


# ---------------------------------------------------------------------------------------------
# Piano roll
# ---------------------------------------------------------------------------------------------
def piano_roll(
    melody, split: int | None = None, labels: tuple[str, str] = ("seed", "continuation"), height: int = 260
) -> alt.Chart:
    """Altair piano roll of a ``Melody`` with dashed bar lines.

    Notes starting before tick ``split`` are drawn as ``labels[0]`` (grey), the rest as ``labels[1]``.
    """
    from genmodels.music import TICKS_PER_QUARTER as tpq
    from genmodels.music import note_name

    bt = melody.bar_ticks
    rows = [
        {
            "part": labels[0] if split is None or n.start < split else labels[1],
            "start": n.start / tpq,
            "end": n.end / tpq,
            "pitch": n.pitch - 0.42,
            "top": n.pitch + 0.42,
            "note": note_name(n.pitch),
            "bar": n.start // bt + 1,
        }
        for n in melody.notes
    ]
    df = pd.DataFrame(rows, columns=["part", "start", "end", "pitch", "top", "note", "bar"])
    n_bars = max(1, melody.n_bars)
    bars = pd.DataFrame({"beat": [i * bt / tpq for i in range(n_bars + 1)]})
    lo = min((n.pitch for n in melody.notes), default=60) - 2
    hi = max((n.pitch for n in melody.notes), default=72) + 2
    names = str(list(KEY_NAMES))  # a Vega expression array literal
    ticks = [p for p in range(lo, hi + 1) if p % 12 in ((0, 4, 7) if hi - lo <= 24 else (0,))]
    domain = [labels[0]] if split is None else list(labels)
    colours = [SEED_COLOUR, CONTINUATION_COLOUR][: len(domain)] if split is not None else [CONTINUATION_COLOUR]
    notes = (
        alt.Chart(df)
        .mark_rect(cornerRadius=2, stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X(
                "start:Q", title="beats (quarter notes)", scale=alt.Scale(domain=[0, n_bars * bt / tpq], nice=False)
            ),
            x2="end:Q",
            y=alt.Y(
                "pitch:Q",
                title=None,
                scale=alt.Scale(domain=[lo - 0.5, hi + 0.5], nice=False),
                axis=alt.Axis(values=ticks, labelExpr=f"{names}[datum.value % 12] + (floor(datum.value / 12) - 1)"),
            ),
            y2="top:Q",
            color=alt.Color(
                "part:N",
                scale=alt.Scale(domain=domain, range=colours),
                legend=alt.Legend(orient="top", title=None) if split is not None else None,
            ),
            tooltip=["note", "bar", alt.Tooltip("start:Q", title="beat"), "part"],
        )
    )
    lines = alt.Chart(bars).mark_rule(color="#999", strokeDash=[3, 3]).encode(x="beat:Q")
    return (lines + notes).properties(height=height)


# ---------------------------------------------------------------------------------------------
# Melody page: corpus tune names and the link that reproduces a melody
# ---------------------------------------------------------------------------------------------
@st.cache_data(max_entries=2, show_spinner=False)
def corpus_tunes(manifest: str) -> dict[str, dict]:
    """Manifest entries of the prepared melody corpus by tune id ({} when there is no readable manifest)."""
    try:
        tunes = json.loads(Path(manifest).read_text())["tunes"]
        return {t["id"]: t for t in tunes if isinstance(t, dict) and "id" in t}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def tune_title(tune_id: str, collection: str = "") -> str:
    """A readable title from a corpus id: 'ryansMammoth-WindThatShakesTheBarleyReel-0000' -> 'Wind That
    Shakes The Barley Reel' (the corpus has no title field; ids carry the source's name)."""
    name = tune_id[len(collection) + 1 :] if collection and tune_id.startswith(collection + "-") else tune_id
    name, _, number = name.rpartition("-") if re.fullmatch(r".+-\d{4}", name) else (name, "", "")
    if name[:1].isdigit():  # O'Neill's tunes are known by their number
        words = f"No. {name}"
    else:
        words = re.sub(r"(?<=[a-z])(?=[A-Z0-9])|(?<=[0-9])(?=[A-Za-z])", " ", name).replace("-", " ").strip()
        words = words[:1].upper() + words[1:]
    return f"{words} ({int(number)})" if number and int(number) else words


# URL query parameter -> (session-state key, parser). Values that do not parse are ignored: a link is user input.
MAX_URL_NOTES = 1500  # characters of note-name prompt a link may carry (the URL stays well under 2 kB)


def int_in(lo: int, hi: int):
    def parse(s: str) -> int:
        v = int(s)
        if not lo <= v <= hi:
            raise ValueError(s)
        return v

    return parse


def float_in(lo: float, hi: float):
    def parse(s: str) -> float:
        v = float(s)
        if not lo <= v <= hi:
            raise ValueError(s)
        return v

    return parse


def one_of(options):
    def parse(s: str):
        if s not in options:
            raise ValueError(s)
        return s

    return parse


def flag(s: str) -> bool:
    """A link's on/off value: "1" or "0"."""
    if s not in ("0", "1"):
        raise ValueError(s)
    return s == "1"


def text_up_to(limit: int):
    """Any text, cut to ``limit`` characters (a link is not the place for more)."""
    return lambda s: s[:limit]


def read_link(params: dict[str, str], parsers: dict[str, tuple[str, object]]) -> tuple[dict, list[str]]:
    """(session-state values, names of the parameters that did not parse or were out of range) from a link's
    query parameters: ``parsers`` maps a parameter to (session key, parser). A bad value is left out, so its
    control keeps its default; the page says which names were bad."""
    values, bad = {}, []
    for name, (key, parse) in parsers.items():
        if name in params:
            try:
                values[key] = parse(params[name])
            except (ValueError, KeyError, TypeError, OverflowError):
                bad.append(name)
    return values, bad


def bad_link_message(bad: list[str]) -> str:
    """What the page says about a link's unreadable values (their names shown as text, never rendered)."""
    return plain(
        f"The link has values this page cannot use ({', '.join(sorted(bad)[:12])}): those settings keep their defaults."
    )


def melody_link_params(source: dict[str, str], state, table: dict[str, str] | None = None) -> dict[str, str]:
    """The query parameters that make a melody again: its prompt's ``source`` (note names and meter, or a
    corpus tune id and how many of its bars) and the page's settings read from ``state``. With
    ``table=HARMONY_LINK_SETTINGS``: the Harmonise section's settings, which make its harmony again."""
    out = dict(source)
    for name, key in (LINK_SETTINGS if table is None else table).items():
        if key in state:
            v = state[key]
            out[name] = str(int(v)) if isinstance(v, bool) else str(v)
    return out


LINK_SETTINGS = {
    "tonic": "m_tonic",
    "mode": "m_mode",
    "tempo": "m_tempo",
    "model": "m_model",
    "program": "m_program",
    "temp": "m_temp",
    "bars": "m_bars",
    "topp": "m_topp",
    "topk": "m_topk",
    "seed": "m_seed",
    "stay": "m_stay",
    "end": "m_end",
}
# A harmony of the melody: the marker that one was made, then the settings it was made with (app_harmony).
HARMONY_MARK = "harm"
HARMONY_LINK_SETTINGS = {
    "hm": "hz_model",
    "hi": "hz_instruments",
    "hr": "hz_rate",
    "ht": "hz_temp",
    "hc": "hz_candidates",
    "hs": "hz_seed",
    "hv": "hz_voice_leading",
}


def parse_melody_link(
    params: dict[str, str], models: list[str], modes, meters, as_prompt: str, harmony: dict | None = None
) -> dict:
    """Session-state values from a link's query parameters; unknown or malformed values are left out.

    ``harmony``: the Harmonise section's choices (``models``, ``instruments``, ``rates``: lists; ``candidates``:
    the most). With them and the link's harmony marker, the harmony's settings are read too and
    ``m_link_harmony`` is True (harmonise once the melody is made)."""
    parsers = {
        "tonic": lambda s: as_prompt if s == as_prompt else int_in(0, 11)(s),
        "mode": one_of([as_prompt, *modes]),
        "tempo": int_in(20, 400),
        "model": one_of(models),
        "program": int_in(0, 127),
        "temp": float_in(0.0, 2.0),
        "bars": int_in(1, 32),
        "topp": float_in(0.05, 1.0),
        "topk": int_in(0, 200),
        "seed": int_in(0, 2**31 - 1),
        "stay": one_of(["off", "gentle", "strict"]),
        "end": flag,
    }
    out: dict = {}
    table = LINK_SETTINGS
    if harmony is not None and params.get(HARMONY_MARK) == "1":
        parsers |= {
            "hm": one_of(harmony["models"]),
            "hi": one_of(harmony["instruments"]),
            "hr": one_of(harmony["rates"]),
            "ht": float_in(0.0, 2.0),
            "hc": int_in(1, harmony["candidates"]),
            "hs": int_in(0, 2**31 - 1),
            "hv": parsers["end"],
        }
        table = LINK_SETTINGS | HARMONY_LINK_SETTINGS
        out["m_link_harmony"] = True
    values, bad = read_link(params, {name: (key, parsers[name]) for name, key in table.items()})
    out |= values
    if bad:
        out["m_link_bad"] = bad
    if params.get("src") == "tune" and params.get("tune"):
        out["m_source_kind"] = "tune"
        out["m_tune_id"] = params["tune"][:200]
        try:
            out["m_tune_bars"] = int_in(1, 32)(params.get("pbars", "4"))
        except ValueError:
            out["m_tune_bars"] = 4
            out.setdefault("m_link_bad", []).append("pbars")
    elif params.get("notes"):
        out["m_source_kind"] = "notes"
        out["m_notes"] = params["notes"][:MAX_URL_NOTES]
        if params.get("meter") in meters:
            out["m_meter"] = params["meter"]
    return out


SCORE_PREFIX = "data:image/svg+xml;base64,"


def score_html(svg: str, alt: str = "score") -> str:
    """The engraved score as an image in the page. ``st.html`` sanitises its HTML and drops inline
    ``<svg>``; an ``<img>`` with the SVG as a data URI is shown as drawn (fonts embedded, nothing fetched).
    ``alt``: the image's text (the harmony's score is "harmony score")."""
    data = base64.b64encode(svg.encode()).decode()
    img = f'<img alt="{html.escape(alt)}" src="{SCORE_PREFIX}{data}" style="max-width:100%">'
    return f'<div class="gm-score" style="overflow-x:auto;background:white">{img}</div>'


def score_svg(html: str) -> str:
    """The SVG inside ``score_html``'s output (tests read the score back this way)."""
    return base64.b64decode(html.split(SCORE_PREFIX, 1)[1].split('"', 1)[0]).decode()
