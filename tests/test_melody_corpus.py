"""Tests for genmodels.learn.melody_corpus: a small deterministic build, splits, user folders."""

import json

import pytest

from genmodels.core.paths import tree_hash
from genmodels.learn.data import melody_files, read_melodies
from genmodels.learn.melody_corpus import SPLITS, prepare_melody, tune_split, write_data_readme_section
from genmodels.music import Melody, Note, write_midi
from genmodels.music.midi import read_midi
from genmodels.tokenizers.melody import MelodyTokenizer

SMALL = dict(limit=2, collections=("ryansMammoth", "bach", "oneills1850"), progress=False)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    a = prepare_melody(root / "one", workers=2, **SMALL)  # parses (2 processes), fills the cache
    b = prepare_melody(root / "two", workers=1, **SMALL)  # same shared cache under root/cache
    return root, a, b


def test_small_build_is_deterministic(two_builds):
    root, a, b = two_builds
    assert a["n_tunes"] > 20
    assert tree_hash(root / "one") == tree_hash(root / "two") == a["corpus_hash"] == b["corpus_hash"]
    assert (root / "cache" / "melody").is_dir()
    assert a["roundtrip_fraction"] == 1.0
    assert a["midi_mismatch"] == 0
    assert sum(a["splits"].values()) == a["n_tunes"]
    assert set(a["collections"]) == {"ryansMammoth", "bach", "oneills1850"}


def test_written_files_read_back(two_builds):
    root, a, _ = two_builds
    man = json.loads((root / "one" / "manifest.json").read_text())
    assert len(man["tunes"]) == a["n_tunes"]
    tok = MelodyTokenizer()
    for t in man["tunes"]:
        assert t["split"] in SPLITS and t["split"] == tune_split(t["id"])
        path = root / "one" / t["split"] / f"{t['id']}.mid"
        m = read_midi(path)
        assert len(m.notes) == t["n_notes"] >= 8
        assert f"{m.meter[0]}/{m.meter[1]}" == t["meter"]
        assert tok.decode(tok.encode(m)).notes == m.notes
    for s in SPLITS:
        n = len(list((root / "one" / s).glob("*.mid")))
        assert n == a["splits"][s]


def test_split_is_roughly_90_5_5():
    counts = {s: 0 for s in SPLITS}
    for i in range(4000):
        counts[tune_split(f"coll-file-{i:04d}")] += 1
    assert 0.87 < counts["train"] / 4000 < 0.93
    assert counts["valid"] > 100 and counts["test"] > 100


def test_readme_section(two_builds):
    _, a, _ = two_builds
    text = write_data_readme_section(a)
    assert "music21" in text and "python -m genmodels prepare melody" in text
    assert "licen" in text.lower() and "oneills1850" in text
    assert str(a["splits"]["train"]) in text


def test_user_folder_reads_every_midi_file_and_skips_bad_ones(tmp_path):
    m = Melody([Note(60 + i, i * 12, 12) for i in range(8)])
    (tmp_path / "sub").mkdir()
    write_midi(m, tmp_path / "sub" / "b.mid")
    write_midi(m.transpose(2), tmp_path / "a.MIDI")
    (tmp_path / "bad.mid").write_bytes(b"not midi at all")
    (tmp_path / "notes.txt").write_text("ignored")
    files = melody_files(tmp_path)
    assert [f.name for f in files] == ["a.MIDI", "bad.mid", "b.mid"]  # sorted by path, recursive
    mels = [mel for _, mel in read_melodies(files, tmp_path / "cache")]
    assert len(mels) == 2  # bad.mid is left out
    assert mels[0].notes[0].pitch == 62 and mels[1].notes == m.notes
    assert [mel.notes for _, mel in read_melodies(files, tmp_path / "cache")] == [x.notes for x in mels]  # cached
