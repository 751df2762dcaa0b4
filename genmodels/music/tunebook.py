"""A tune book: many tunes in one zip file, each a MIDI file, with an index of titles to search.

The Melody page starts from the tune book that ships in ``data/tunes/`` (built by ``python -m genmodels
prepare melody``), so a fresh clone offers corpus tunes without preparing the corpus. MIDI is the
format inside because it is the one every tune of the corpus already went through (and its repeats
are kept in it, see `genmodels.music.midi`); the zip deflates the small files to about a third.

Layout: ``index.json`` = {"format": 1, "tunes": [{"id", "title", "collection", "meter", "key", "tempo",
"n_bars", "split"}, ...]} and one ``<id>.mid`` per entry. Reading is bounded: the index and each member
are size-checked before they are read, so a tune book from elsewhere cannot exhaust memory.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genmodels.core.errors import DataError
from genmodels.core.paths import REPO_ROOT, atomic_write
from genmodels.music.midi import MAX_MIDI_BYTES, read_midi
from genmodels.music.scales import key_name
from genmodels.music.types import Melody

FORMAT = 1
SHIPPED = REPO_ROOT / "data" / "tunes" / "tunebook.zip"  # written by `prepare melody`, read by the Melody page
INDEX = "index.json"
MAX_INDEX_BYTES = 20_000_000
MAX_TUNES = 100_000
_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")


@dataclass(frozen=True)
class TuneEntry:
    """One tune of the book: what the picker shows and searches."""

    id: str
    title: str
    collection: str
    meter: str
    key: tuple[int, str]
    tempo: float
    n_bars: int
    split: str = ""

    @property
    def key_text(self) -> str:
        return key_name(*self.key)

    @property
    def text(self) -> str:
        """What a search looks in for words that are not a meter or a key: title, collection and id."""
        return f"{self.title} {self.collection} {self.id}"


def _entry(row: dict) -> TuneEntry:
    try:
        key = row["key"]
        entry = TuneEntry(
            id=str(row["id"]),
            title=str(row.get("title") or ""),
            collection=str(row.get("collection") or ""),
            meter=str(row.get("meter") or ""),
            key=(int(key[0]) % 12, str(key[1])),
            tempo=float(row.get("tempo") or 120.0),
            n_bars=int(row.get("n_bars") or 0),
            split=str(row.get("split") or ""),
        )
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise DataError(f"A tune book entry is malformed: {e}") from None
    if not _ID.fullmatch(entry.id):
        raise DataError("A tune book entry has an id that is not a plain file name.")
    return entry


_METER = re.compile(r"\b\d{1,2}/\d{1,2}\b")
_MODES = ("major", "minor", "dorian", "mixolydian")
_KEY = re.compile(r"\b([a-g])(#|b)?\s+(" + "|".join(_MODES) + r")\b")


def _squeeze(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text)


def _sort_title(title: str) -> str:
    """'The Wind That Shakes' sorts under W; untitled tunes last."""
    t = re.sub(r"^(the|a|an|der|die|das)\s+", "", re.sub(r"^[^a-z0-9]+", "", title.lower()))
    return t or "~"


class TuneBook:
    """Read-only access to a tune book file; safe to share between threads (one lock around the zip)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile, ValueError) as e:
            raise DataError(f"{self.path.name} is not a readable tune book ({type(e).__name__}).") from None
        try:
            self.entries = self._read_index()
        except DataError:
            self._zip.close()
            raise

    def _read_index(self) -> dict[str, TuneEntry]:
        try:
            info = self._zip.getinfo(INDEX)
            if info.file_size > MAX_INDEX_BYTES:
                raise DataError(f"{self.path.name}: its index is over {MAX_INDEX_BYTES:,} bytes.")
            doc = json.loads(self._zip.read(info))
        except (OSError, zipfile.BadZipFile, zlib.error, KeyError, ValueError, RuntimeError, NotImplementedError) as e:
            raise DataError(f"{self.path.name} is not a readable tune book ({type(e).__name__}).") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("tunes"), list):
            raise DataError(f"{self.path.name} is not a tune book of format {FORMAT}.")
        if len(doc["tunes"]) > MAX_TUNES:
            raise DataError(f"{self.path.name} holds over {MAX_TUNES:,} tunes.")
        entries: dict[str, TuneEntry] = {}
        for row in doc["tunes"]:
            e = _entry(row if isinstance(row, dict) else {})
            entries[e.id] = e
        return entries

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, tune_id: object) -> bool:
        return tune_id in self.entries

    def search(self, query: str = "", text: Callable[[TuneEntry], str] | None = None) -> list[TuneEntry]:
        """Entries matching every part of the query, case-insensitive, in title order ('' = all). A meter
        ("6/8") matches the meter, a key ("D dorian", "f# minor") or a mode alone ("minor") the key; any
        other word is looked for in the entry's text (default `TuneEntry.text`), and a word of three or more
        letters also with spaces and marks left out ('greensleeves' finds 'Green Sleeves')."""
        q = query.lower().replace("\u266f", "#").replace("\u266d", "b")
        keys = {f"{t}{a} {m}" for t, a, m in _KEY.findall(q)}
        q = _KEY.sub(" ", q)
        meters = set(_METER.findall(q))
        q = _METER.sub(" ", q)
        words = q.split()
        modes = {w for w in words if w in _MODES}
        words = [(w, _squeeze(w)) for w in words if w not in modes]
        text = text or (lambda e: e.text)

        def hit(e: TuneEntry) -> bool:
            if meters and e.meter not in meters:
                return False
            if keys and e.key_text.lower() not in keys:
                return False
            if modes and e.key[1] not in modes:
                return False
            t = text(e).lower()
            squeezed = _squeeze(t)
            return all(w in t or (len(sq) >= 3 and sq in squeezed) for w, sq in words)

        found = [e for e in self.entries.values() if hit(e)]
        found.sort(key=lambda e: (_sort_title(e.title), e.id))
        return found

    def melody(self, tune_id: str) -> Melody:
        """The tune as a Melody (DataError for an id not in the book; MidiError for a bad member)."""
        if tune_id not in self.entries:
            raise DataError("This tune is not in the tune book.")
        with self._lock:
            try:
                info = self._zip.getinfo(f"{tune_id}.mid")
                if info.file_size > MAX_MIDI_BYTES:
                    raise DataError("This tune's MIDI file is too large.")
                data = self._zip.read(info)
            except (KeyError, OSError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as e:
                raise DataError(f"The tune book has no readable file for this tune ({type(e).__name__}).") from None
        return read_midi(data)


def write_tunebook(path: str | os.PathLike, rows: list[dict], midi_files: dict[str, bytes]) -> None:
    """Write rows (manifest-like dicts) and their MIDI bytes as a tune book, byte-identical for equal input."""
    entries = [_entry(r) for r in rows]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:

        def put(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed time: reproducible bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)

        index = [
            {
                "id": e.id,
                "title": e.title,
                "collection": e.collection,
                "meter": e.meter,
                "key": list(e.key),
                "tempo": e.tempo,
                "n_bars": e.n_bars,
                "split": e.split,
            }
            for e in sorted(entries, key=lambda e: e.id)
        ]
        put(INDEX, json.dumps({"format": FORMAT, "tunes": index}, separators=(",", ":"), sort_keys=True).encode())
        for e in sorted(entries, key=lambda e: e.id):
            put(f"{e.id}.mid", midi_files[e.id])
    atomic_write(path, buf.getvalue())
