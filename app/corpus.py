"""The corpus tunes the Melody page can start from: the tune book that ships in data/tunes/, read once per
server and shared by every session (a `TuneBook` is read-only and locks its zip)."""

from __future__ import annotations

import os
import re

import streamlit as st

from genmodels.core.errors import DataError
from genmodels.music.tunebook import SHIPPED, TuneBook, TuneEntry

MAX_LISTED = 400  # a select box longer than this is unreadable: the search narrows it


def tunebook_path() -> str:
    """``$GENMODELS_TUNEBOOK`` or the shipped tune book."""
    return os.environ.get("GENMODELS_TUNEBOOK") or str(SHIPPED)


@st.cache_resource(max_entries=2, show_spinner=False)
def _load(path: str, mtime: float) -> TuneBook | None:
    try:
        return TuneBook(path)
    except DataError:
        return None


def tune_book() -> TuneBook | None:
    """The tune book, or None when there is none (or it is unreadable); reloaded when the file changes."""
    path = tunebook_path()
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    return _load(path, mtime)


def tune_title(tune_id: str, collection: str = "") -> str:
    """A readable title from a corpus id, for tunes whose source has no title:
    'ryansMammoth-WindThatShakesTheBarleyReel-0000' -> 'Wind That Shakes The Barley Reel'."""
    name = tune_id[len(collection) + 1 :] if collection and tune_id.startswith(collection + "-") else tune_id
    name, _, number = name.rpartition("-") if re.fullmatch(r".+-\d{4}", name) else (name, "", "")
    if name[:1].isdigit():  # O'Neill's tunes are known by their number
        words = f"No. {name}"
    else:
        words = re.sub(r"(?<=[a-z])(?=[A-Z0-9])|(?<=[0-9])(?=[A-Za-z])", " ", name).replace("-", " ").strip()
        words = words[:1].upper() + words[1:]
    return f"{words} ({int(number)})" if number and int(number) else words


COLLECTION_NAMES = {
    "essenFolksong": "Essen folk songs",
    "ryansMammoth": "Ryan's Mammoth Collection",
    "oneills1850": "O'Neill's 1850",
    "airdsAirs": "Aird's Airs",
    "bach": "Bach chorales",
}


def readable_title(title: str) -> str:
    """'GREEN SLEEVES -- JIG.' -> 'Green Sleeves – Jig' (Ryan's titles are in capitals)."""
    title = title.strip().rstrip(".").replace(" -- ", " – ")
    if title.isupper() and re.search(r"[A-Z]{4}", title):  # capitals as a style, not 'BWV 1.6'
        title = re.sub(r"[A-Za-z]+", lambda m: m.group(0).capitalize(), title.lower())
        title = re.sub(r"'S\b", "'s", title)
    return title


def tune_label(entry: TuneEntry) -> str:
    """'Greensleeves · Ryan's Mammoth Collection · 6/8 · E minor' (the title, or one made from the id)."""
    title = readable_title(entry.title) or tune_title(entry.id, entry.collection)
    coll = COLLECTION_NAMES.get(entry.collection, entry.collection)
    return " · ".join(x for x in (title, coll, entry.meter, entry.key_text) if x)


def find_tunes(book: TuneBook, query: str) -> list[TuneEntry]:
    """Tunes whose title, collection (id or name), meter or key holds every word of the query."""
    return book.search(query, text=lambda e: f"{tune_label(e)} {e.text}")
