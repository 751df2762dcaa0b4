"""Links are input from strangers: each query parameter is parsed against its control's range, a value that does
not parse is named and left out; the parameters that make a melody (and its harmony) again; fresh random seeds."""

from __future__ import annotations

import secrets

from app.render import plain
from genmodels.tokenizers.melody import STYLES

AUTO_STYLE = "auto"  # the Style control's "as the prompt suggests": the model draws the style given the prompt


def new_seed() -> int:
    return secrets.randbelow(1_000_000)


# URL query parameter -> (session-state key, parser). Values that do not parse are ignored: a link is user input.
MAX_URL_NOTES = 1500  # characters of note-name prompt a link may carry (the URL stays well under 2 kB)
MAX_PROMPT_BARS = 256  # bars of a file or tune a prompt may use: as many as the harmoniser takes (4/4)


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
    "form": "m_form",
    "partbars": "m_part_bars",
    "endings": "m_endings",
    "style": "m_style",
}


# A harmony of the melody: the marker that one was made, then the settings it was made with (app.components.harmony).
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


def melody_parsers(models: list[str], modes, as_prompt: str) -> dict:
    """Query parameter -> parser for the melody's settings (each checked against its control's range)."""
    return {
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
        "form": one_of(["free", "AABB", "AB", "ABAC"]),
        "partbars": lambda v: int(one_of(["4", "8"])(v)),
        "endings": flag,
        "style": one_of([AUTO_STYLE, *STYLES]),
    }


def harmony_parsers(harmony: dict) -> dict:
    """Query parameter -> parser for the Harmonise section's settings (``harmony``: its choices)."""
    return {
        "hm": one_of(harmony["models"]),
        "hi": one_of(harmony["instruments"]),
        "hr": one_of(harmony["rates"]),
        "ht": float_in(0.0, 2.0),
        "hc": int_in(1, harmony["candidates"]),
        "hs": int_in(0, 2**31 - 1),
        "hv": flag,
    }


def parse_melody_link(
    params: dict[str, str], models: list[str], modes, meters, as_prompt: str, harmony: dict | None = None
) -> dict:
    """Session-state values from a link's query parameters; unknown or malformed values are left out and named
    in ``m_link_bad``.

    ``harmony``: the Harmonise section's choices (``models``, ``instruments``, ``rates``: lists; ``candidates``:
    the most). With them and the link's harmony marker, the harmony's settings are read too and
    ``m_link_harmony`` is True (harmonise once the melody is made)."""
    parsers, table = melody_parsers(models, modes, as_prompt), LINK_SETTINGS
    with_harmony = harmony is not None and params.get(HARMONY_MARK) == "1"
    if with_harmony:
        parsers |= harmony_parsers(harmony)
        table = LINK_SETTINGS | HARMONY_LINK_SETTINGS
    out, bad = read_link(params, {name: (key, parsers[name]) for name, key in table.items()})
    if with_harmony:
        out["m_link_harmony"] = True
    if params.get("src") == "tune" and params.get("tune"):
        out["m_source_kind"], out["m_tune_id"] = "tune", params["tune"][:200]
        try:
            out["m_tune_bars"] = int_in(1, MAX_PROMPT_BARS)(params.get("pbars", "4"))
        except ValueError:
            out["m_tune_bars"] = 4
            bad.append("pbars")
    elif params.get("notes"):
        out["m_source_kind"], out["m_notes"] = "notes", params["notes"][:MAX_URL_NOTES]
        if params.get("meter") in meters:
            out["m_meter"] = params["meter"]
    if bad:
        out["m_link_bad"] = bad
    return out
