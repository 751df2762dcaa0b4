"""The corpus tunes the Melody page can start from: the manifest, read once, and readable titles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import streamlit as st


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
