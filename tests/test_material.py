"""A person's own material (issue 25): files taken or refused with a reason, zip limits that a lying zip
cannot get round, the description and split of what was read, and the corpus folder train reads."""

from __future__ import annotations

import io
import zipfile

import pretty_midi
import pytest

from genmodels.learn import material as mat_mod
from genmodels.learn.material import MaterialError, read_material, split_plan, write_corpus
from genmodels.music import midi_bytes, parse_note_prompt

ABC_BOOK = """X:1
T:One
M:6/8
L:1/8
K:D
A|d2d fed|e2e gfe|d2d fed|e3 e2:|

X:2
T:Two
M:3/4
L:1/8
K:G
G2 B2 d2|g4 f2|e2 d2 B2|G6|]
"""


def drums_only() -> bytes:
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes += [pretty_midi.Note(100, 36, i * 0.5, i * 0.5 + 0.4) for i in range(8)]
    pm.instruments.append(drums)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_text_files_taken_and_refused_with_their_reasons():
    good = ("A line of my own verse.\n" * 20).encode()
    m = read_material(
        "text",
        [("mine.txt", good), ("empty.txt", b"  \n"), ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00"), ("a.mid", b"x")],
    )
    assert [n for n, _ in m.taken] == ["mine.txt"] and m.chars == len(good)
    reasons = dict(m.refused)
    assert reasons["empty.txt"] == "empty" and "binary" in reasons["photo.txt"] and "not a .txt" in reasons["a.mid"]
    plan = split_plan(m)
    assert plan["train"] + plan["valid"] == m.chars and 0 < plan["valid"] < plan["train"]


def test_tunes_from_midi_and_an_abc_book_with_meters_keys_and_a_split(tmp_path):
    tune = midi_bytes(parse_note_prompt("C4 D4 E4 F4 G4*2 E4 C4", meter=(3, 4), key=(0, "major")))
    m = read_material("melody", [("t.mid", tune), ("book.abc", ABC_BOOK.encode()), ("drums.mid", drums_only())])
    assert len(m.tunes) == 3 and m.notes > 20
    assert "drum" in dict(m.refused)["drums.mid"].lower()
    assert m.meters()["6/8"] == 1 and m.meters()["3/4"] == 2
    assert sum(m.keys().values()) == 3
    folder = write_corpus(m, tmp_path / "corpus")
    assert len(list((folder / "valid").glob("*.mid"))) == 1 and len(list((folder / "train").glob("*.mid"))) == 2


def test_a_zip_of_too_many_files_or_too_many_bytes_is_refused_whole(monkeypatch):
    many = zipped({f"t{i}.txt": b"hello there\n" for i in range(mat_mod.MAX_FILES + 1)})
    with pytest.raises(MaterialError, match="holds"):
        read_material("text", [("many.zip", many)])
    bomb = zipped({"big.txt": b"a" * 3_000_000})  # compresses to a few kB
    monkeypatch.setattr(mat_mod, "MAX_TOTAL_BYTES", 1_000_000)
    with pytest.raises(MaterialError, match="unpacks to more than"):
        read_material("text", [("bomb.zip", bomb)])


def test_a_zip_that_understates_its_sizes_is_caught_while_reading(monkeypatch):
    """The declared size is the zip's own claim: the bytes are counted as they are unpacked."""
    monkeypatch.setattr(mat_mod, "MAX_FILE_BYTES", 10_000)
    data = bytearray(zipped({"big.txt": b"b" * 50_000}))
    # Rewrite the uncompressed size in the central directory (and the local header) to 100 bytes.
    for sig, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        at = data.find(sig) + offset
        data[at : at + 4] = (100).to_bytes(4, "little")
    m = read_material("text", [("liar.zip", bytes(data))])
    assert not m.texts and "liar.zip/big.txt" in dict(m.refused)


def test_too_little_material_is_said_before_anything_trains(tmp_path):
    m = read_material("melody", [("t.mid", midi_bytes(parse_note_prompt("C4 D4 E4 F4 G4")))])
    assert "at least 2" in m.usable()
    with pytest.raises(MaterialError):
        write_corpus(m, tmp_path / "c")
