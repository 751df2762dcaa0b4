"""The chorale corpus: the grid of a hand-checked chorale, round trips, ranges, splits, skips."""

from __future__ import annotations

import json

import pytest

from genmodels.core.errors import DataError
from genmodels.harmony.grid import HOLD, RANGES, REST, VOICES, Chorale, row_from_notes, voice_notes
from genmodels.learn import chorales as hc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("harmony")
    stats = hc.small_corpus(out, n=6)
    return out, stats


def _parsed(name: str) -> dict:
    path = next(p for p in hc.chorale_files() if p.endswith(f"/{name}.mxl"))
    return hc.parse_chorale(path)


def test_bwv269_grid_is_exact():
    """BWV 269 (Aus meines Herzens Grunde, G major, 3/4, one-beat pickup), checked against the score."""
    rec = _parsed("bwv269")
    ch = Chorale.from_dict(rec["chorale"])
    assert (ch.meter, ch.tonic, ch.mode) == ((3, 4), 7, "major")
    assert ch.offset == 8  # the pickup quarter starts on the third beat of the 3/4 bar
    assert ch.steps == 63 * 4  # 63 quarter notes
    # First chord: G2 B3 D4 G4, one quarter each; the soprano then holds G4 for a half note.
    assert [ch.voices[v][0] for v in range(4)] == [67, 62, 59, 43]
    assert ch.voices[0][:16] == (67, HOLD, HOLD, HOLD, 67) + (HOLD,) * 7 + (74, HOLD, HOLD, HOLD)
    # The tenor's eighth notes C4 B3 on beat 3 of bar 1.
    assert ch.voices[2][8:12] == (60, HOLD, 59, HOLD)
    # Fermatas: the six phrase ends, each a half note on a downbeat; the last is the final note.
    assert ch.fermatas == (40, 76, 112, 160, 208, 244)
    assert all(ch.position(t) == 0 for t in ch.fermatas)
    assert ch.notes(0)[-1].start == 244 and ch.notes(0)[-1].end == ch.steps
    assert rec["key_source"] == "analysis"


def test_notes_survive_the_round_trip(corpus):
    out, _ = corpus
    for split in hc.SPLITS:
        for ch in hc.load_split(out, split):
            for v in range(4):
                assert row_from_notes(voice_notes(ch.voices[v]), ch.steps) == ch.voices[v]
            assert Chorale.from_dict(json.loads(json.dumps(ch.to_dict()))) == ch


def test_transpositions_stay_in_range(corpus):
    out, stats = corpus
    train = hc.load_split(out, "train")
    assert stats["transposed_copies"] > 0
    sources = {c.meta["source"] for c in train}
    for c in train:
        k = c.meta["transposed"]
        assert -6 <= k <= 6
        assert c.id == (c.meta["source"] if k == 0 else f"{c.meta['source']}_t{k:+d}")
        if k != 0:
            for v, name in enumerate(VOICES):
                lo, hi = RANGES[name]
                assert all(lo <= n.pitch <= hi for n in c.notes(v))
    # Bach's own key is always in train, and a copy is its source moved by k semitones.
    originals = {c.id: c for c in train if c.meta["transposed"] == 0}
    assert set(originals) == sources
    for c in train:
        src = originals[c.meta["source"]]
        assert c.voices == src.transpose(c.meta["transposed"]).voices
        assert c.tonic == (src.tonic + c.meta["transposed"]) % 12
    for split in ("valid", "test"):
        assert all(c.meta["transposed"] == 0 for c in hc.load_split(out, split))


def test_split_is_deterministic_and_disjoint(corpus, tmp_path):
    out, stats = corpus
    again = hc.small_corpus(tmp_path, n=6)
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "manifest.json", "stats.json"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    assert again["sha256"] == stats["sha256"]
    groups = {s: {hc.chorale_group(c.meta["source"]) for c in hc.load_split(out, s)} for s in hc.SPLITS}
    assert all(groups[s] for s in hc.SPLITS)  # small_corpus gives every split a chorale
    assert not (
        groups["train"] & groups["valid"] or groups["train"] & groups["test"] or groups["valid"] & groups["test"]
    )
    manifest = json.loads((out / "manifest.json").read_text())["chorales"]
    assert {r["split"] for r in manifest} == set(hc.SPLITS)
    assert sum(stats["splits"][s]["chorales"] for s in hc.SPLITS) == stats["chorales"] == len(manifest)


def test_copies_of_one_chorale_share_a_split():
    assert hc.chorale_group("bwv248.9-s") == hc.chorale_group("bwv248.9-1") == "bwv248.9"
    assert hc.chorale_split("bwv248.9-s") == hc.chorale_split("bwv248.9-1")
    assert hc.chorale_group("bwv269") == "bwv269"
    counts = {s: 0 for s in hc.SPLITS}
    for i in range(1, 1001):
        counts[hc.chorale_split(f"bwv{i}.1")] += 1
    assert 700 < counts["train"] < 900 and 50 < counts["valid"] < 150 and 50 < counts["test"] < 150


def test_the_same_harmonisation_in_another_key_follows_its_first_copy():
    row = (60, HOLD, 62, REST)
    a = Chorale(voices=(row, row, row, row), id="bwv1.1")
    # Find an id whose own hash split differs from a's; a transposed duplicate must still follow a.
    other = next(f"bwv{i}.2" for i in range(2, 500) if hc.chorale_split(f"bwv{i}.2") != hc.chorale_split("bwv1.1"))
    b = Chorale(voices=a.transpose(3).voices, id=other)
    splits = hc.assign_splits([b, a])
    assert splits[other] == splits["bwv1.1"] == hc.chorale_split("bwv1.1")


def test_load_split_names_the_missing_file_and_the_command(tmp_path):
    with pytest.raises(DataError, match=r"train\.jsonl.*python -m genmodels prepare harmony"):
        hc.load_split(tmp_path, "train")
    (tmp_path / "valid.jsonl").write_text('{"voices": [1, 2]}\n')
    with pytest.raises(DataError, match="line 1"):
        hc.load_split(tmp_path, "valid")
    with pytest.raises(DataError, match="split must be one of"):
        hc.load_split(tmp_path, "dev")


def _score(parts_notes, meters=((4, 4),), names=("Soprano", "Alto", "Tenor", "Bass")):
    """A music21 Score: one part per name, each a list of (pitch name or list for a chord, quarters)."""
    from music21 import chord, meter, note, stream

    score = stream.Score()
    for name, notes in zip(names, parts_notes, strict=True):
        part = stream.Part()
        part.partName = name
        for i, ts in enumerate(meters):
            part.insert(i * 4, meter.TimeSignature(f"{ts[0]}/{ts[1]}"))
        offset = 0.0
        for pitch, ql in notes:
            el = chord.Chord(pitch, quarterLength=ql) if isinstance(pitch, list) else note.Note(pitch, quarterLength=ql)
            part.insert(offset, el)
            offset += ql
        score.insert(0, part)
    return score


_FOUR = [[("C5", 4)], [("G4", 4)], [("E4", 4)], [("C3", 4)]]


def test_unalignable_chorales_are_counted_by_reason():
    ok = hc.chorale_record(_score(_FOUR), "ok")
    assert "chorale" in ok
    assert Chorale.from_dict(ok["chorale"]).voices[3][:2] == (48, HOLD)
    three = _score(_FOUR[:3], names=("Soprano", "Alto", "Bass"))
    assert hc.chorale_record(three, "x")["skip"] == "not exactly 4 vocal parts"
    two_sopranos = _score(_FOUR + [[("C5", 4)]], names=("Soprano 1", "Soprano 2", "Alto", "Tenor", "Bass"))
    assert hc.chorale_record(two_sopranos, "x")["skip"] == "not exactly 4 vocal parts"
    chord = [[(["C5", "E5"], 4)]] + _FOUR[1:]
    assert hc.chorale_record(_score(chord), "x")["skip"] == "chord inside a part"
    longer = [[("C5", 4), ("D5", 4)]] + _FOUR[1:]
    assert hc.chorale_record(_score(longer), "x")["skip"] == "parts of different lengths"
    change = [n * 2 for n in _FOUR]
    assert hc.chorale_record(_score(change, meters=((4, 4), (3, 4))), "x")["skip"] == "meter change"


def test_instrument_parts_are_left_out_and_short_notes_merged():
    soprano = [("C5", 1), ("D5", 0.125), ("E5", 0.125), ("F5", 0.75), ("G5", 2)]
    parts = [soprano] + _FOUR[1:] + [[("C6", 4)]]
    rec = hc.chorale_record(_score(parts, names=("Soprano", "Alto", "Tenor", "Bass", "Violin 1")), "x")
    ch = Chorale.from_dict(rec["chorale"])
    # The two 32nds: D5 takes one step (rounded), E5 rounds to no time and merges into D5.
    assert ch.voices[0][:8] == (72, HOLD, HOLD, HOLD, 74, 77, HOLD, HOLD)
    assert rec["counts"] == {"notes shorter than a sixteenth merged": 1}


def test_stats_and_readme_section(corpus):
    out, stats = corpus
    on_disk = json.loads((out / "stats.json").read_text())
    assert on_disk["chorales"] == stats["chorales"] and on_disk["sha256"] == stats["sha256"]
    text = hc.write_data_readme_section(on_disk)
    assert "python -m genmodels prepare harmony" in text and "| train |" in text
    assert "Skipped" in text and "licen" in text.lower()
