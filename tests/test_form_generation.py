"""Tunes with a chosen form: real repeats, cadences at part ends, exports that show the form and play
it out, and the form figures of eval --form on hand-built melodies."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ROOT

from genmodels.core.errors import SettingsError
from genmodels.eval.form_report import cadences, form_figures, last_note, part_echo, repeated_bars
from genmodels.infer.constraints import MelodySteering
from genmodels.infer.decoding import Settings
from genmodels.music import Melody, Note, parse_note_prompt, read_midi
from genmodels.music.abc import to_abc
from genmodels.music.bars import read_back
from genmodels.music.form import Form, grid_bars
from genmodels.music.musicxml import musicxml_bytes

# ----------------------------------------------------------------------------------------------
# The figures, on hand-built melodies
# ----------------------------------------------------------------------------------------------


def quarters(pitches_per_bar, meter=(2, 4), key=(0, "major")):
    notes = []
    for b, ps in enumerate(pitches_per_bar):
        d = meter[0] * 48 // meter[1] // len(ps)
        notes += [Note(p, b * d * len(ps) + k * d, d) for k, p in enumerate(ps)]
    return Melody(notes, meter, key)


def test_repeated_bars_and_part_echo_count_what_they_say():
    a = [[60 + i, 62 + i] for i in range(8)]  # eight different bars
    b = [[72 - i, 71 - i] for i in range(8)]
    aa = quarters(a + a)  # a repeated 8-bar part
    assert repeated_bars(grid_bars(aa)) == (8, 16)
    assert part_echo(grid_bars(aa)) == (8, 8)
    ab = quarters(a + b)
    assert repeated_bars(grid_bars(ab)) == (0, 16)
    assert part_echo(grid_bars(ab)) == (0, 8)
    half = quarters(a + a[:4] + b[:4])
    assert part_echo(grid_bars(half)) == (4, 8)
    figures = form_figures([aa, ab])
    assert figures["tunes"] == 2 and figures["repeated_bars"] == 0.25 and figures["part_echo"] == 0.5


def test_cadence_needs_tonic_or_dominant_on_a_strong_beat_held_a_beat():
    # 4/4 in C: the last note on a strong beat (beat 1 or 3) decides
    def bar(notes):
        return Melody([Note(p, s, d) for p, s, d in notes], (4, 4), (0, "major"))

    assert cadences(bar([(64, 0, 24), (60, 24, 24)]), 0, final=True)  # C on beat 3, a half note
    assert cadences(bar([(64, 0, 24), (67, 24, 12), (65, 36, 12)]), 0)  # G on beat 3, a quarter: half cadence
    assert not cadences(bar([(64, 0, 24), (67, 24, 12), (65, 36, 12)]), 0, final=True)  # G is no final cadence
    assert not cadences(bar([(64, 0, 24), (60, 24, 6), (62, 30, 18)]), 0)  # C held an eighth only
    assert not cadences(bar([(64, 0, 36), (60, 36, 12)]), 0)  # C on beat 4: not strong
    m = bar([(64, 0, 24), (60, 24, 24)])
    assert last_note(m) == (True, True, 2.0)


# ----------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------

SHIPPED = ROOT / "checkpoints/melody-gru"
PROMPT = "E4 G4 A4/2 B4/2 A4 G4"


def generate(sampler, form, seed=0, prompt=PROMPT, meter=(4, 4)):
    p = parse_note_prompt(prompt, meter=meter, key=(7, "major")) if prompt else Melody([], meter, (2, "major"))
    return sampler.generate_melody(p, settings=Settings(seed=seed), steering=MelodySteering(form=form))[0].full


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aabb_with_endings_repeats_exactly_and_cadences(melody_gen, seed):
    m = generate(melody_gen, Form("AABB", 4, endings=True), seed)
    bars = grid_bars(m)
    assert len(bars) == 16
    for part in (0, 8):  # pass 2 plays pass 1's first three bars again; the endings differ in rhythm or not
        assert bars[part : part + 3] == bars[part + 4 : part + 7]
    for end, final in [(3, False), (7, True), (11, False), (15, True)]:
        assert cadences(m, end, final=final), (end, bars[end])
    assert m.notes[-1].pitch % 12 == m.key[0]
    # written with repeat signs (a model that writes them), or its copies marked as repeats (one that does not):
    # either way the score and the exports show |: [1 :|[2
    assert [(r.start, r.body, r.ending1, r.ending2) for r in m.form] == [(0, 3, 1, 1), (8, 3, 1, 1)]
    abc = to_abc(m)
    assert abc.count("|:") == 2 and abc.count("[1") == 2 and abc.count(":|[2") == 2


@pytest.mark.parametrize("shape", ["ABAC", "AB", "AABA"])
def test_other_shapes(melody_gen, shape):
    m = generate(melody_gen, Form(shape, 4), prompt="", meter=(6, 8))
    bars = grid_bars(m)
    assert len(bars) == 4 * len(shape)
    starts = {}
    for i, letter in enumerate(shape):
        part = bars[4 * i : 4 * i + 4]
        if letter in starts:
            assert part == starts[letter]
        starts.setdefault(letter, part)
        assert cadences(m, 4 * i + 3, final=i == len(shape) - 1)
    after_last = [n for n in m.notes if n.start >= m.notes[-1].start]
    assert after_last[-1].pitch % 12 == 2


def test_free_form_with_signs_stops_at_the_length(tiny_melody):
    p = parse_note_prompt(PROMPT, meter=(4, 4))
    for seed in range(4):
        r = tiny_melody.generate_melody(p, bars=8, settings=Settings(seed=seed, temperature=1.5))[0]
        assert 9 <= r.full.n_bars <= 9 + 8  # an open repeat is closed, not cut


def test_bad_forms_are_refused(shipped_melody):
    for form in [Form("ABX", 8), Form("abab", 8), Form("AAAB", 8), Form("AB", 6)]:
        with pytest.raises(SettingsError):
            generate(shipped_melody, form)
    with pytest.raises(SettingsError, match="shorten the prompt"):
        generate(shipped_melody, Form("AABB", 4), prompt=" ".join(["C4"] * 20))


# ----------------------------------------------------------------------------------------------
# Exports: the written form, played out as the MIDI is
# ----------------------------------------------------------------------------------------------


def played(m):
    return [(n.pitch, n.start, n.duration) for n in m.notes]


@pytest.mark.parametrize("endings", [False, True])
def test_abc_and_musicxml_show_the_form_and_read_back_played_out(tiny_melody, endings, tmp_path):
    from music21 import converter

    m = generate(tiny_melody, Form("AABB", 4, endings=endings), seed=3)
    assert m.form
    abc = to_abc(m)
    assert abc.count("|:") == 2 and abc.count(":|") == 2 and ("[2" in abc) == endings and "::" not in abc
    back = read_back(converter.parse(abc, format="abc").parts[0].expandRepeats())
    assert back.notes == played(m)
    xml = musicxml_bytes(m)
    assert xml.count(b'direction="backward"') == 2 and (b"<ending" in xml) == endings
    back = read_back(converter.parseData(xml, format="musicxml").parts[0].expandRepeats())
    assert back.notes == played(m)
    # the MIDI file plays it out
    from genmodels.music import midi_bytes

    assert read_midi(midi_bytes(m)).notes == m.notes
    if shutil.which("abc2midi"):
        (tmp_path / "t.abc").write_text(abc)
        subprocess.run(["abc2midi", str(tmp_path / "t.abc"), "-o", str(tmp_path / "t.mid")], capture_output=True)
        heard = read_midi(tmp_path / "t.mid").notes
        # every note as played; the last one's length only up to where abc2midi ends a bar of trailing rest
        assert heard[:-1] == m.notes[:-1]
        assert (heard[-1].pitch, heard[-1].start) == (m.notes[-1].pitch, m.notes[-1].start)


def test_engraved_score_draws_the_endings(tiny_melody):
    from genmodels.music.engrave import render_svg_pages

    m = generate(tiny_melody, Form("AABB", 4, endings=True), seed=3)
    svg = "".join(render_svg_pages(m))
    assert 'class="ending' in svg


def test_cli_generate_with_a_form(shipped_melody, tmp_path, capsys):
    from genmodels.cli.main import main

    out = tmp_path / "tune.mid"
    main(
        [
            "generate",
            str(SHIPPED),
            "--prompt-notes",
            PROMPT,
            "--form",
            "AABB",
            "--part-bars",
            "4",
            "--endings",
            "--abc",
            str(tmp_path / "tune.abc"),
            "--out",
            str(out),
        ]
    )
    m = read_midi(out)
    assert m.n_bars == 16
    assert "K:" in (tmp_path / "tune.abc").read_text()


def test_the_prompt_opens_a_repeat_where_the_model_would(tiny_melody):
    """With no form chosen, whether the prompt opens a repeat (at its first bar, or after its pickup) is drawn
    from the model's posterior: the same seed gives the same choice, and the prompt's notes stay as they are."""
    from genmodels.music import parse_note_prompt

    g = tiny_melody
    prompt = parse_note_prompt("r*3 G4 | C5 D5 E5 F5 | G5 E5 C5 D5")
    prefix = g.melody_prefix(prompt)
    start = g.tok.sign_ids["|:"]
    first, second = [i for i, t in enumerate(prefix) if t == g.tok.bar_id][:2]
    allowed = [prefix, prefix[:first] + [start] + prefix[first:], prefix[:second] + [start] + prefix[second:]]
    picks = [g._written_prompt(prefix, None, seed, True, 8) for seed in range(24)]
    assert all(p in allowed for p in picks)
    assert picks == [g._written_prompt(prefix, None, seed, True, 8) for seed in range(24)]
    for seed in range(4):
        r = g.generate_melody(prompt, 6, Settings(seed=seed))[0]
        assert r.full.notes[: len(prompt.notes)] == prompt.notes
    tied = g.melody_prefix(parse_note_prompt("C4*6 D4*2 | E4*4 | F4*4"))  # a note held over the bar line
    assert all(g._written_prompt(tied, None, seed, True, 8) == tied for seed in range(8))


def test_end_on_the_tonic_holds_when_the_model_ends_at_a_repeat(shipped_melody):
    """A tune with repeat signs ends where its played bars reach the length, which may be at a ':|': the
    last note played is the tonic there too (with only the last written bar constrained, 4 of these 16
    held-out reels, each continued from its first two bars, ended elsewhere)."""
    from genmodels.eval.form_report import first_full_bar
    from genmodels.music.tunebook import SHIPPED, TuneBook

    book = TuneBook(SHIPPED)
    reels = [e.id for e in book.search("reel") if e.split == "test"][:16]
    assert len(reels) == 16
    for seed, tune_id in enumerate(reels):
        m = book.melody(tune_id)
        p = m.slice_bars(0, first_full_bar(m) + 2)
        p = Melody(p.notes, p.meter, p.key, p.tempo)
        r = shipped_melody.generate_melody(p, 14, Settings(seed=seed), MelodySteering(end_on_tonic=True))[0]
        assert r.full.notes[-1].pitch % 12 == m.key[0] % 12, (tune_id, seed, r.full.form)


def test_a_short_request_writes_new_bars_and_ends_on_the_tonic(shipped_melody):
    """Two bars asked after a two-bar prompt: the prompt is not opened as a repeat that would close at once
    (its second pass would be the prompt again, ending on the prompt's last note: 5 of 40 seeds did)."""
    from genmodels.music.scales import to_key

    prompt = to_key(parse_note_prompt("E4 D4 C4 D4 E4 E4 E4*2"), 7, "mixolydian")
    for seed in range(40):
        r = shipped_melody.generate_melody(prompt, 2, Settings(seed=seed), MelodySteering("strict", True))[0]
        assert r.full.pitches[-1] % 12 == 7 and not r.full.form, (seed, r.full.form)
