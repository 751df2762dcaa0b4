"""Melody co-writing in the sampler: stay in key, end on the tonic, regenerate bars, keep a rhythm,
transpose, and the generate command's melody options; on a tiny model and on the shipped melody-gru."""

from __future__ import annotations

import pytest
from conftest import ROOT

from genmodels.core.errors import PitchRangeError, SettingsError
from genmodels.infer.constraints import MelodySteering
from genmodels.infer.decoding import Settings
from genmodels.music import Melody, Note, parse_note_prompt, read_midi
from genmodels.music.scales import scale_pitch_classes, to_key, transpose

SHIPPED = ROOT / "checkpoints/melody-gru"
PROMPT = "C4 D4 E4 F4 G4/2 A4/2 G4"


@pytest.mark.parametrize("key", [(0, "major"), (9, "minor"), (2, "minor")])
def test_strict_key_keeps_every_generated_pitch_in_the_scale(melody_gen, key):
    prompt = to_key(parse_note_prompt(PROMPT, key=(0, "major")), *key)
    scale = set(scale_pitch_classes(*key))
    for r in melody_gen.generate_melody(prompt, 6, Settings(temperature=1.5, seed=5, n=8), MelodySteering("strict")):
        assert {n.pitch % 12 for n in r.continuation.notes} <= scale
        assert r.events > 0 and 0 <= r.overruled


def test_end_on_tonic_for_many_seeds(melody_gen):
    prompt = parse_note_prompt(PROMPT, meter=(3, 4), key=(7, "major"))
    for seed in range(6):
        for r in melody_gen.generate_melody(
            prompt, 4, Settings(temperature=1.2, seed=seed, n=8), MelodySteering("gentle", True)
        ):
            m = r.full
            assert m.end % m.bar_ticks == 0, "the last bar is complete"
            assert m.notes[-1].pitch % 12 == 7 and m.n_bars == prompt.n_bars + 4


def test_off_steering_changes_nothing_and_overrules_nothing(tiny_melody):
    prompt = parse_note_prompt(PROMPT)
    a = tiny_melody.generate_melody(prompt, 4, Settings(temperature=1.0, seed=2, n=3))
    b = tiny_melody.generate_melody(prompt, 4, Settings(temperature=1.0, seed=2, n=3), MelodySteering("off"))
    assert [r.full for r in a] == [r.full for r in b] and all(r.overruled == 0 for r in b)


def test_regenerate_keeps_the_other_bars_exactly(melody_gen):
    m = melody_gen.generate_melody(parse_note_prompt(PROMPT), 6, Settings(temperature=1.0, seed=1))[0].full
    for first, last in ((3, 4), (1, 1), (m.n_bars - 1, m.n_bars)):
        r = melody_gen.regenerate_bars(m, first, last, Settings(temperature=1.0, seed=9), candidates=4)
        for b in [*range(0, first - 1), *range(last, m.n_bars)]:
            assert r.full.slice_bars(b, b + 1).notes == m.slice_bars(b, b + 1).notes, f"bar {b + 1} changed"
        assert r.continuation.n_bars <= last - first + 1
        assert r.full.slice_bars(first - 1, last).notes == r.continuation.notes


def test_regenerate_chooses_the_best_scored_candidate(tiny_melody):
    m = tiny_melody.generate_melody(parse_note_prompt(PROMPT), 6, Settings(seed=1))[0].full
    _, scores, best = tiny_melody.regenerate_scored(m, 2, 3, Settings(temperature=1.0, seed=4), candidates=6)
    assert len(scores) == 6 and scores[best] == max(scores)


@pytest.mark.parametrize("first,last", [(0, 2), (3, 2), (2, 99), (1.5, 2), (-1, 1)])
def test_bad_bar_ranges_are_refused(tiny_melody, first, last):
    m = parse_note_prompt(PROMPT + " " + PROMPT)
    with pytest.raises(SettingsError):
        tiny_melody.regenerate_bars(m, first, last)


def test_regenerate_of_an_empty_melody_is_refused(tiny_melody):
    with pytest.raises(SettingsError):
        tiny_melody.regenerate_bars(Melody([], (4, 4)), 1, 1)


def test_repitch_keeps_durations_rests_and_bar_lines(melody_gen):
    rhythm = Melody(
        [Note(60, 6, 12), Note(62, 18, 6), Note(64, 30, 60), Note(65, 96, 36), Note(67, 144, 24)], (3, 4), (9, "minor")
    )
    for r in melody_gen.repitch(rhythm, Settings(temperature=1.3, seed=3, n=6), MelodySteering("strict", True)):
        assert [(n.start, n.duration) for n in r.full.notes] == [(n.start, n.duration) for n in rhythm.notes]
        assert {n.pitch % 12 for n in r.full.notes} <= set(scale_pitch_classes(9, "minor"))
        assert r.full.notes[-1].pitch % 12 == 9 and r.full.meter == (3, 4)


def test_repitch_without_notes_is_refused(tiny_melody):
    with pytest.raises(SettingsError):
        tiny_melody.repitch(Melody([], (4, 4)))


def test_transpose_names_the_note_out_of_range():
    m = parse_note_prompt("C4 G7")
    with pytest.raises(PitchRangeError, match="note 2"):
        transpose(m, 12, 21, 108)
    assert transpose(m, -2, 21, 108).key == (10, "major")


def test_cli_melody_options_end_to_end(tiny_melody, small_melody_dir, tmp_path, capsys):
    from music21 import converter

    from genmodels.cli.main import main

    ck = str(tiny_melody.ckpt.path)
    a, b, c = tmp_path / "a.mid", tmp_path / "b.mid", tmp_path / "c.mid"
    assert (
        main(
            [
                "generate",
                ck,
                "--prompt-notes",
                PROMPT,
                "--key",
                "A minor",
                "--stay-in-key",
                "strict",
                "--end-on-tonic",
                "--length",
                "4",
                "--out",
                str(a),
                "--abc",
                str(tmp_path / "a.abc"),
                "--musicxml",
                str(tmp_path / "a.musicxml"),
                "--tempo",
                "90",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    m = read_midi(a)
    assert m.key == (9, "minor") and m.notes[-1].pitch % 12 == 9 and abs(m.tempo - 90) < 1e-6
    assert converter.parse(str(tmp_path / "a.abc"), format="abc").flatten().notes
    assert converter.parse(str(tmp_path / "a.musicxml")).flatten().notes
    assert main(["generate", ck, "--prompt-midi", str(a), "--regenerate-bars", "2-3", "--out", str(b)]) == 0
    mb = read_midi(b)
    assert mb.slice_bars(0, 1).notes == m.slice_bars(0, 1).notes
    assert main(["generate", ck, "--keep-rhythm", str(a), "--transpose", "2", "--out", str(c)]) == 0
    assert [(n.start, n.duration) for n in read_midi(c).notes] == [(n.start, n.duration) for n in m.notes]
    assert main(["generate", ck, "--prompt-midi", str(a), "--regenerate-bars", "3-2", "--out", str(b)]) == 2
    assert main(["generate", ck, "--prompt-midi", str(a), "--transpose", "90", "--out", str(b)]) == 2
    err = capsys.readouterr().err
    assert "reversed" in err and "allowed pitch" in err


def test_a_prompt_longer_than_the_context_keeps_every_bar(shipped_melody):
    """Only the model's context is cut to CONTEXT_BARS: the result is the whole prompt plus the new bars."""
    from genmodels.infer.decoding import CONTEXT_BARS

    bt = 48
    n = CONTEXT_BARS + 6
    # a different pitch in every bar, and a note tied over the bar line where the context begins
    notes = [Note(48 + b % 30, b * bt, 24) for b in range(n)]
    cut = (n - CONTEXT_BARS) * bt
    notes[n - CONTEXT_BARS - 1] = Note(70, cut - 24, 48)
    notes[n - CONTEXT_BARS] = Note(72, cut + 24, 24)
    prompt = Melody(notes, (4, 4), (0, "major"))
    for r in shipped_melody.generate_melody(prompt, 2, Settings(temperature=1.0, seed=3, n=2)):
        assert r.prompt == prompt
        assert r.full.n_bars == n + 2
        assert r.full.slice_bars(0, n - 1).notes == prompt.slice_bars(0, n - 1).notes
        assert [x for x in r.full.notes if x.start < cut][-1] == Note(70, cut - 24, 48), "the tie stays one note"
        assert r.full.slice_bars(n).notes == r.continuation.slice_bars(r.continuation.n_bars - 2).notes
    m = r.full
    again = shipped_melody.regenerate_bars(m, n + 1, n + 1, Settings(temperature=1.0, seed=4), candidates=2)
    assert again.full.n_bars == m.n_bars and again.full.slice_bars(0, n).notes == m.slice_bars(0, n).notes


@pytest.mark.parametrize(
    ("options", "meter", "key_number"),
    [
        ([], (4, 4), 0),
        (["--key", "D minor", "--meter", "6/8"], (6, 8), 12 + 2),
        (["--key", "G", "--meter", "3/4"], (3, 4), 7),
    ],
)
def test_cli_writes_a_tune_from_nothing(shipped_melody, tmp_path, options, meter, key_number):
    """Without a prompt the model starts the tune from its header (meter and key), as folk-rnn does."""
    import pretty_midi

    from genmodels.cli.main import main

    out = tmp_path / "new.mid"
    args = ["generate", str(SHIPPED), "--length", "8", "--seed", "4", *options, "--out", str(out)]
    assert main(args) == 0
    pm = pretty_midi.PrettyMIDI(str(out))
    assert [k.key_number for k in pm.key_signature_changes] == [key_number]
    assert [(t.numerator, t.denominator) for t in pm.time_signature_changes] == [meter]
    m = read_midi(out)
    assert m.meter == meter and m.n_bars == 8 and len(m.notes) >= 8
