"""The corpus tunes the Melody page can start from: the tune book that ships in data/tunes/, read once per
server with its labels and shared by every session (a `TuneBook` is read-only and locks its zip)."""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import streamlit as st

from genmodels.core.errors import DataError
from genmodels.music.tunebook import SHIPPED, TuneBook, TuneEntry

MAX_LISTED = 400  # a select box longer than this is unreadable: the search narrows it

COLLECTION_NAMES = {
    "essenFolksong": "Essen folk songs",
    "ryansMammoth": "Ryan's Mammoth Collection",
    "oneills1850": "O'Neill's 1850",
    "airdsAirs": "Aird's Airs",
    "bach": "Bach chorales",
}
_ABC_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "c": "\u0327"}


@dataclass(frozen=True)
class Catalogue:
    """A tune book with what the picker shows: one label per tune (unique, so a pick is never ambiguous)."""

    book: TuneBook
    labels: dict[str, str]

    def find(self, query: str) -> list[TuneEntry]:
        """Tunes matching the query by title, collection (its name or id), meter and key."""
        return self.book.search(query, text=lambda e: f"{self.labels[e.id]} {e.text}")


def tunebook_path() -> str:
    """``$GENMODELS_TUNEBOOK`` or the shipped tune book."""
    return os.environ.get("GENMODELS_TUNEBOOK") or str(SHIPPED)


@st.cache_resource(max_entries=2, show_spinner=False)
def _load(path: str, mtime: float) -> Catalogue | None:
    try:
        book = TuneBook(path)
    except DataError:
        return None
    return Catalogue(book, unique_labels(book))


def tune_book() -> Catalogue | None:
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


def _capitalised(word: str) -> str:
    """'MISS' -> 'Miss', "O'NEILL'S" -> "O'Neill's", "I'M" -> "I'm", 'McLEAN' -> 'McLean'."""
    w = word.lower()
    w = w[:1].upper() + w[1:]
    if re.match(r"(O'|Mc|Mac)[a-z]{3}", w):  # O'Neill, McLean; not o'er
        k = 2 if w[1] in "'c" else 3
        w = w[:k] + w[k].upper() + w[k + 1 :]
    return w


def readable_title(title: str) -> str:
    """'GREEN SLEEVES -- JIG.' -> 'Green Sleeves – Jig' (Ryan's titles are in capitals); ABC accents
    (\\'e) as letters."""
    title = re.sub(r"\\([`'^\"~c])([A-Za-z])", lambda m: m.group(2) + _ABC_ACCENTS[m.group(1)], title)
    title = unicodedata.normalize("NFC", title).strip().rstrip(".").replace(" -- ", " – ")
    letters = [c for c in title if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.8 * len(letters) and re.search(r"[A-Z]{4}", title):
        title = re.sub(r"[A-Za-z][A-Za-z']*", lambda m: _capitalised(m.group(0)), title)
    return title


def tune_label(entry: TuneEntry) -> str:
    """'Greensleeves · Ryan's Mammoth Collection · 6/8 · E minor · held out' (the title, or one made from
    the id; tunes of the test split, which the models never saw, are marked)."""
    title = readable_title(entry.title) or tune_title(entry.id, entry.collection)
    coll = COLLECTION_NAMES.get(entry.collection, entry.collection)
    held = "held out" if entry.split == "test" else ""
    return " · ".join(x for x in (title, coll, entry.meter, entry.key_text, held) if x)


def unique_labels(book: TuneBook) -> dict[str, str]:
    """Labels by tune id; tunes that would share one are numbered (the select box returns a label)."""
    labels = {i: tune_label(e) for i, e in book.entries.items()}
    counts = Counter(labels.values())
    seen: Counter = Counter()
    for i in sorted(labels):
        if counts[labels[i]] > 1:
            seen[labels[i]] += 1
            labels[i] = f"{labels[i]} · {seen[labels[i]]} of {counts[labels[i]]}"
    return labels
