"""The tune book: tunes in one zip with a title index, read with bounds."""

import json
import zipfile

import pytest

from genmodels.core.errors import DataError
from genmodels.music import parse_note_prompt
from genmodels.music.midi import midi_bytes
from genmodels.music.tunebook import TuneBook, write_tunebook


def row(i, title, key=(0, "major"), meter="4/4"):
    return {"id": i, "title": title, "collection": "c", "meter": meter, "key": list(key), "tempo": 90.0, "n_bars": 1}


def test_write_and_read_back(tmp_path):
    m = parse_note_prompt("C4 D4 E4 F4 | G4*4")
    write_tunebook(
        tmp_path / "a.zip", [row("t-1", "The Wind"), row("t-0", "Apple")], {"t-1": midi_bytes(m), "t-0": midi_bytes(m)}
    )
    write_tunebook(
        tmp_path / "b.zip", [row("t-0", "Apple"), row("t-1", "The Wind")], {"t-1": midi_bytes(m), "t-0": midi_bytes(m)}
    )
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()  # reproducible
    book = TuneBook(tmp_path / "a.zip")
    assert [e.title for e in book.search()] == ["Apple", "The Wind"]  # 'The' is not sorted on
    assert [e.id for e in book.search("wind c major")] == ["t-1"]
    assert book.melody("t-1").pitches == m.pitches
    with pytest.raises(DataError):
        book.melody("t-9")


@pytest.mark.parametrize(
    "index",
    [
        b"not json",
        json.dumps({"format": 99, "tunes": []}).encode(),
        json.dumps({"format": 1, "tunes": [{"id": "../x"}]}).encode(),
    ],
)
def test_bad_books_raise_data_error(tmp_path, index):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr("index.json", index)
    with pytest.raises(DataError):
        TuneBook(tmp_path / "bad.zip")
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 junk")
    with pytest.raises(DataError):
        TuneBook(tmp_path / "junk.zip")
