"""``python -m genmodels harmonise`` / ``generate`` / ``eval`` on a harmony checkpoint (a tiny model
trained in seconds on hand-made chorales)."""

from __future__ import annotations

import pretty_midi
import pytest
from harmony_fixtures import toy_corpus

from genmodels.cli.main import main
from genmodels.learn.config import TrainConfig
from genmodels.learn.trainer import train
from genmodels.nn.rnn import ModelConfig

NOTES = "E4 G4 A4/2 B4/2 A4 G4 E4/2 D4/2 E4*2"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("harmony-cli")
    corpus = toy_corpus(tmp / "corpus")
    cfg = TrainConfig(
        domain="harmony",
        data=str(corpus),
        out=str(tmp / "ck"),
        model=ModelConfig(emb_dim=16, hidden=24, layers=1, dropout=0.0),
        batch=4,
        steps=20,
        eval_every=10,
        warmup=0,
        lr=1e-2,
        threads=1,
        precision="fp32",
    )
    train(cfg, progress=False)
    return tmp / "ck", corpus


def _parts(path):
    pm = pretty_midi.PrettyMIDI(str(path))
    return [i.name for i in pm.instruments], pm


def test_harmonise_note_names_writes_four_tracks(tiny, tmp_path, capsys):
    ck, _ = tiny
    out = tmp_path / "h.mid"
    assert main(["harmonise", str(ck), "--prompt-notes", NOTES, "--out", str(out), "--seed", "3"]) == 0
    names, pm = _parts(out)
    assert names == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [n.pitch for n in pm.instruments[0].notes][:4] == [64, 67, 69, 71]
    ends = [max(n.end for n in i.notes) for i in pm.instruments if i.notes]
    assert max(ends) - min(ends) < 1.0  # all voices run to the melody's end (within a beat)
    printed = capsys.readouterr().out
    assert "the most likely first" in printed and "wrote" in printed


def test_harmonise_a_midi_melody(tiny, tmp_path):
    ck, _ = tiny
    melody = pretty_midi.PrettyMIDI(initial_tempo=100)
    inst = pretty_midi.Instrument(0)
    for k, p in enumerate([72, 74, 76, 77, 79, 77, 76, 72]):  # C5.. fits the soprano range
        inst.notes.append(pretty_midi.Note(90, p, k * 0.6, (k + 1) * 0.6))
    melody.instruments.append(inst)
    src, out = tmp_path / "tune.mid", tmp_path / "out.mid"
    melody.write(str(src))
    assert main(["harmonise", str(ck), "--prompt-midi", str(src), "--out", str(out), "--candidates", "2"]) == 0
    names, pm = _parts(out)
    assert len(names) == 4 and len(pm.instruments[0].notes) == 8


def test_generate_on_a_harmony_checkpoint_harmonises(tiny, tmp_path):
    ck, _ = tiny
    out = tmp_path / "g.mid"
    assert main(["generate", str(ck), "--prompt-notes", NOTES, "--out", str(out)]) == 0
    assert len(_parts(out)[0]) == 4


@pytest.mark.parametrize(
    "args",
    [
        ["--prompt-notes", NOTES, "--prompt-midi", "x.mid"],
        [],
        ["--prompt-notes", NOTES, "--temperature", "-1"],
        ["--prompt-notes", "H9 Q"],
        ["--prompt-midi", "missing.mid"],
    ],
)
def test_bad_requests_are_clear_errors(tiny, tmp_path, capsys, args):
    ck, _ = tiny
    assert main(["harmonise", str(ck), *args, "--out", str(tmp_path / "x.mid")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_eval_reports_likelihood_and_harmonies(tiny, capsys):
    pytest.importorskip("genmodels.harmony.metrics")
    import json

    ck, corpus = tiny
    assert main(["eval", str(ck), "--data", str(corpus)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test"]["metric"] == "nats_per_note" and report["test"]["value"] > 0
    h = report["harmonies"]
    assert h["pieces"] == 3 and 0 <= h["bass_agreement"] <= 1 and "total" in h["faults_per_100_beats"]


def test_corpus_tune_found_by_words_of_its_name(tmp_path):
    """``--corpus-tune "wind that shakes"`` finds ryansMammoth-WindThatShakesTheBarleyReel-0000 (the ids run
    the words together); a name no tune has is a clear error."""
    from genmodels.cli.harmonise import corpus_tune
    from genmodels.core.errors import SettingsError

    (tmp_path / "test").mkdir()
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0)
    inst.notes += [pretty_midi.Note(90, p, k * 0.5, (k + 1) * 0.5) for k, p in enumerate([67, 69, 71, 72] * 3)]
    pm.instruments.append(inst)
    pm.write(str(tmp_path / "test" / "ryansMammoth-WindThatShakesTheBarleyReel-0000.mid"))
    assert [n.pitch for n in corpus_tune("wind that shakes", tmp_path).notes][:4] == [67, 69, 71, 72]
    assert corpus_tune("Barley-Reel", tmp_path).notes
    with pytest.raises(SettingsError, match="no tune"):
        corpus_tune("the kesh jig", tmp_path)


def test_musicxml_names_chords_at_the_chord_rate(tmp_path, capsys):
    """--musicxml writes the chord symbols at --chord-rate, as the terminal names them: at "half-bar", at most
    two in a bar."""
    from music21 import converter
    from music21 import harmony as m21harmony

    from tests.conftest import ROOT

    ck = ROOT / "checkpoints/harmony-gru"
    if not ck.exists():
        pytest.skip("no shipped harmony-gru")
    notes = "E4/2 F#4/2 G4/2 A4/2 B4/2 A4/2 G4/2 F#4/2 " * 4 + "E4*4"
    xml = tmp_path / "h.musicxml"
    args = ["harmonise", str(ck), "--prompt-notes", notes, "--chord-rate", "half-bar", "--seed", "2"]
    assert main([*args, "--out", str(tmp_path / "h.mid"), "--musicxml", str(xml)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("chords: ")]
    top = converter.parse(str(xml)).parts[0]
    per_bar = [
        len(list(m.recurse().getElementsByClass(m21harmony.ChordSymbol))) for m in top.getElementsByClass("Measure")
    ]
    assert max(per_bar) <= 2
    assert sum(per_bar) == len(printed[0].split()) - 1
