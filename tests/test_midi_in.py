"""MIDI in and note prompts: articulation gaps, track choice, trailing rests, bar lines and accidentals."""

import pretty_midi
import pytest

from genmodels.core.errors import SeedError
from genmodels.music import Melody, Note, format_notes, list_tracks, midi_bytes, parse_note_prompt, read_midi
from genmodels.tokenizers.melody import MelodyTokenizer

TOK = MelodyTokenizer()


def _bytes(pm: pretty_midi.PrettyMIDI) -> bytes:
    import io

    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def _detached(pitches, beats: float, held: float, tempo=120.0) -> bytes:
    """One track: notes of `beats` quarters each, each sounding for `held` of its length."""
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    inst = pretty_midi.Instrument(program=73, name="flute")
    q = 60.0 / tempo
    for i, p in enumerate(pitches):
        s = i * beats * q
        inst.notes.append(pretty_midi.Note(90, p, s, s + beats * q * held))
    pm.instruments.append(inst)
    return _bytes(pm)


# ----- 10.3 articulation gaps -----


def test_legato_but_detached_half_notes_have_no_tiny_rests():
    m = read_midi(_detached([72, 74, 76, 77, 79, 77, 76, 74], 2.0, 0.9))
    assert [n.duration for n in m.notes] == [24] * 8
    assert format_notes(m) == "C5*2 D5*2 E5*2 F5*2 G5*2 F5*2 E5*2 D5*2"
    q = read_midi(_detached([60, 62, 64, 65], 1.0, 0.85))  # quarters held 85%
    assert [n.duration for n in q.notes] == [12] * 4


def test_real_rests_stay():
    staccato = read_midi(_detached([72, 74, 76, 77], 1.0, 0.5))  # eighth note + eighth rest
    assert [n.duration for n in staccato.notes] == [6] * 4
    # a sixteenth rest after a dotted eighth is written music, not articulation
    m = read_midi(_detached([72, 74, 76, 77], 1.0, 0.75))
    assert [n.duration for n in m.notes] == [9] * 4


# ----- 10.4 track choice -----


def _accompanied() -> bytes:
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    chords = pretty_midi.Instrument(program=0, name="Piano chords")
    for bar in range(8):  # 8 bars x 4 beats x 3 notes = 96 notes, tops above the flute
        for beat in range(4):
            t = (bar * 4 + beat) * 0.5
            for p in (79, 83, 86):
                chords.notes.append(pretty_midi.Note(70, p, t, t + 0.5))
    flute = pretty_midi.Instrument(program=73, name="Flute")
    for i in range(32):  # 32 notes of one beat each
        flute.notes.append(pretty_midi.Note(90, 60 + (i % 8), i * 0.5, i * 0.5 + 0.5))
    pm.instruments += [chords, flute]
    return _bytes(pm)


def test_list_tracks_describes_each_track():
    tracks = list_tracks(_accompanied())
    assert [t.index for t in tracks] == [0, 1]
    chords, flute = tracks
    assert (chords.name, chords.program, chords.n_notes, chords.max_polyphony) == ("Piano chords", 0, 96, 3)
    assert (flute.name, flute.program, flute.n_notes, flute.max_polyphony) == ("Flute", 73, 32, 1)
    assert flute.instrument == "Flute" and chords.instrument == "Acoustic Grand Piano"
    assert (flute.lowest, flute.highest) == (60, 67) and (chords.lowest, chords.highest) == (79, 86)


def test_default_track_prefers_the_monophonic_melody_and_track_picks():
    data = _accompanied()
    assert [n.pitch for n in read_midi(data).notes][:8] == list(range(60, 68))
    assert [n.pitch for n in read_midi(data, track=0).notes][:2] == [86, 86]
    assert [n.pitch for n in read_midi(data, track=1).notes][:3] == [60, 61, 62]
    with pytest.raises(Exception, match="track 5"):
        read_midi(data, track=5)


# ----- 15.8 trailing rests -----


def test_trailing_rest_is_kept_in_the_prompt():
    a, b = parse_note_prompt("C4 D4 E4 r"), parse_note_prompt("C4 D4 E4")
    assert a != b and a.end == 48 and b.end == 36
    assert parse_note_prompt("C4 D4 E4 r/2").end == 42


def test_trailing_rest_reaches_the_model():
    from genmodels.infer.sampling import Sampler

    prefix = Sampler.melody_prefix
    fake = type("S", (), {"tok": TOK})()
    ids_rest = prefix(fake, parse_note_prompt("C4 D4 E4 r", key=(0, "major")))
    ids_plain = prefix(fake, parse_note_prompt("C4 D4 E4", key=(0, "major")))
    assert ids_plain == TOK.encode(parse_note_prompt("C4 D4 E4", key=(0, "major")), add_eos=False)[:-2]
    assert [TOK.vocab[i] for i in ids_rest[-3:]] == ["d:12", "rest", "d:12"]
    assert [TOK.vocab[i] for i in ids_plain[-2:]] == ["p:64", "d:12"]
    half = prefix(fake, parse_note_prompt("C4 D4 E4 r/2", key=(0, "major")))
    assert [TOK.vocab[i] for i in half[-2:]] == ["rest", "d:6"]


def test_trailing_rests_survive_midi_and_tokens():
    m = Melody([Note(60, 0, 12), Note(62, 12, 12)], length=48)
    assert m.end == 48 and m.n_bars == 1
    back = read_midi(midi_bytes(m))
    assert back.notes == m.notes and back.end == 48
    pm = pretty_midi.PrettyMIDI(__import__("io").BytesIO(midi_bytes(m)))
    assert pm.get_end_time() == pytest.approx(2.0)  # 4 quarters at 120 BPM
    assert [n.pitch for n in pm.instruments[0].notes] == [60, 62]  # no silent note
    dec = TOK.decode(TOK.encode(m))
    assert dec.notes == m.notes and dec.end == 48
    two = m.concat(m)
    assert two.end == 96 and two.slice_bars(1).end == 48
    assert format_notes(parse_note_prompt("C4 D4 E4 r")) == "C4 D4 E4 r"


def test_no_trailing_rest_keeps_old_tokens():
    m = Melody([Note(60, 0, 12), Note(62, 12, 12)])
    assert m.end == 24 and m.length == 0
    assert [TOK.vocab[i] for i in TOK.encode(m)[-3:]] == ["rest", "d:24", "<eos>"]


# ----- 10.9 note syntax: bar lines and unicode accidentals -----


def test_bar_lines_and_unicode_accidentals():
    a = parse_note_prompt("C♯4 D4 E♭4 F4 | G4*4 |", key=(0, "major"))
    b = parse_note_prompt("C#4 D4 Eb4 F4 G4*4", key=(0, "major"))
    assert a.notes == b.notes
    assert parse_note_prompt("G4*2 | C5", meter=(2, 4)).notes == parse_note_prompt("G4*2 C5", meter=(2, 4)).notes
    with pytest.raises(SeedError, match="Bar 1 is not complete"):
        parse_note_prompt("C4 D4 | E4")
    with pytest.raises(SeedError, match="Bar 2 is not complete"):
        parse_note_prompt("C4*4 | D4 E4 | F4")


def test_cli_generate_track_option(tmp_path, capsys):
    import argparse

    from genmodels.cli.generate_melody import _prompt_from_args
    from genmodels.cli.main import main

    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "--track" in capsys.readouterr().out
    path = tmp_path / "acc.mid"
    path.write_bytes(_accompanied())
    args = argparse.Namespace(prompt_midi=str(path), prompt_notes=None, meter="4/4", track=0)
    assert _prompt_from_args(args).notes[0].pitch == 86
    args.track = None
    assert _prompt_from_args(args).notes[0].pitch == 60


# ----- 10.8 key estimate -----

WASHERWOMAN = (  # The Irish Washerwoman, a G-major jig, typed by hand with bar lines and a pickup
    "r*2 D5/2 C5/2 | B4/2 G4/2 G4/2 D4/2 G4/2 G4/2 | B4/2 G4/2 B4/2 D5/2 C5/2 B4/2 | "
    "C5/2 A4/2 A4/2 E4/2 A4/2 A4/2 | C5/2 A4/2 C5/2 E5/2 D5/2 C5/2 | B4/2 G4/2 G4/2 D4/2 G4/2 G4/2 | "
    "B4/2 G4/2 B4/2 D5/2 C5/2 B4/2 | C5/2 B4/2 C5/2 A4/2 D5/2 C5/2 | B4/2 G4/2 G4/2 G4 r/2 |"
)


def test_hand_typed_g_major_jig_is_labelled_g_major():
    m = parse_note_prompt(WASHERWOMAN, meter=(6, 8))
    assert m.key == (7, "major")
    assert m.n_bars == 9 and m.end == 9 * 36  # the closing eighth rest is kept


# ----- the key of a MIDI file: the signature is trusted, its major/minor flag is not -----

A_MINOR_TUNE = "E4 A4 A4 B4 | C5 B4 A4 G4 | E4 G4 G4 A4 | B4 A4 G4 E4 | E4 A4 A4 B4 | C5 D5 E5 C5 | D5 B4 G4 B4 | A4*4"
C_MAJOR_TUNE = "G4 C5 C5 D5 | E5 D5 C5 G4 | A4 F4 G4 E4 | D4 E4 F4 D4 | G4 C5 C5 D5 | E5 F5 G5 E5 | F5 D5 B4 D5 | C5*4"


def _with_signature(text: str, key_number: int) -> bytes:
    """The tune as a MIDI file from another program: one key signature event, no key text."""
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    pm.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    inst = pretty_midi.Instrument(program=0)
    for n in parse_note_prompt(text).notes:
        inst.notes.append(pretty_midi.Note(90, n.pitch, n.start / 24, n.end / 24))
    pm.instruments.append(inst)
    return _bytes(pm)


@pytest.mark.parametrize(
    ("text", "key_number", "key"),
    [
        (A_MINOR_TUNE, 0, (9, "minor")),  # flagged as its relative major, as many programs write it
        (A_MINOR_TUNE, 21, (9, "minor")),
        (C_MAJOR_TUNE, 0, (0, "major")),
        (C_MAJOR_TUNE, 21, (0, "major")),  # flagged minor: the notes say major
    ],
    ids=["minor-flagged-major", "minor-flagged-minor", "major-flagged-major", "major-flagged-minor"],
)
def test_a_key_signature_gives_the_notes_but_the_tune_gives_the_mode(text, key_number, key):
    assert read_midi(_with_signature(text, key_number)).key == key


@pytest.mark.parametrize("key", [(2, "minor"), (9, "minor"), (7, "major"), (4, "dorian"), (2, "mixolydian")])
def test_our_own_files_keep_their_key(key):
    """A file written here names its key in a text event: even a tune whose notes suggest another mode reads
    back in the key it was written in."""
    m = parse_note_prompt(C_MAJOR_TUNE, key=key)
    assert read_midi(midi_bytes(m)).key == key
