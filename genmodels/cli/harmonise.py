"""``python -m genmodels harmonise``: a melody (MIDI file, note names or a corpus tune) in, four parts out.

The melody goes through ``adapt.soprano_from_melody`` (top line of chords, range, meter, passing notes;
its messages are printed), then ``sample.harmonise``; the result is written as a four-track MIDI file
(and MusicXML where asked).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from genmodels.core.errors import SettingsError
from genmodels.core.paths import repo_path
from genmodels.harmony.adapt import in_melody_key, soprano_from_melody
from genmodels.harmony.chords import chord_symbols
from genmodels.harmony.export import INSTRUMENT_SETS, midi_bytes, to_musicxml
from genmodels.harmony.grid import STEP_TICKS, Chorale
from genmodels.infer.harmonise import HarmonyResult, HarmonySettings, harmonise, lower_onsets
from genmodels.learn.data import melody_files, read_melodies
from genmodels.music import parse_note_prompt, read_midi


def read_melody(args: argparse.Namespace) -> Any:
    """The melody ``args`` name: --prompt-midi (with --track), --prompt-notes (with --meter), or
    --corpus-tune (a title in the melody corpus's test split)."""

    given = [x for x in ("prompt_midi", "prompt_notes", "corpus_tune") if getattr(args, x, None)]
    if len(given) != 1:
        raise SettingsError(
            "give the melody once: --prompt-midi FILE, --prompt-notes 'C4 D4 E4' or --corpus-tune TITLE"
        )
    if given[0] == "prompt_midi":
        return read_midi(args.prompt_midi, track=getattr(args, "track", None))
    if given[0] == "prompt_notes":
        return parse_note_prompt(args.prompt_notes, meter=_meter(getattr(args, "meter", "4/4")))
    return corpus_tune(args.corpus_tune, getattr(args, "data_melody", None) or "data/melody")


def _meter(text: str) -> tuple[int, int]:
    try:
        n, d = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise SettingsError(f"--meter {text!r}: write it as 3/4, 4/4, 6/8, ...") from None
    return n, d


def corpus_tune(title: str, data: str | Path) -> Any:
    """The first melody-corpus test tune whose file name contains ``title``, compared without case, spaces or
    punctuation ("wind that shakes" finds ryansMammoth-WindThatShakesTheBarleyReel-0000)."""

    def plain(s: str) -> str:
        return re.sub(r"[^0-9a-z]", "", s.lower())

    folder = repo_path(data) / "test"
    files = [f for f in melody_files(folder) if plain(title) and plain(title) in plain(f.stem)]
    if not files:
        raise SettingsError(f"no tune in {folder} has {title!r} in its name (run python -m genmodels prepare melody)")
    tunes = read_melodies(files[:1])
    if not tunes:
        raise SettingsError(f"{files[0]} could not be read as a melody")
    return tunes[0][1]


def soprano_of(melody: Any, chord_rate: str = "beat") -> tuple[Chorale, list[str], int]:
    """The melody as a soprano ready to harmonise, what was done to it (for the user) and the semitones it
    was moved by."""
    adapted = soprano_from_melody(melody, chord_rate=chord_rate)
    return adapted.chorale, list(adapted.messages), adapted.transposed


def describe(result: HarmonyResult, harmony: Chorale, chord_rate: str = "beat") -> list[str]:
    """Lines for the terminal: the model's score of each candidate and the chord symbols of ``harmony`` (the
    kept candidate as delivered, in the melody's key) looked at every ``chord_rate``."""
    lines = ["candidates, the most likely first (by the model's likelihood of all their tokens; kept: the first):"]
    lines += [
        f"  {i + 1}: {nll * lower_onsets(c):.1f} nats in all ({nll:.3f} per lower-voice note)"
        for i, (nll, c) in enumerate(zip(result.nlls, result.candidates, strict=True))
    ]
    lines.append("chords: " + " ".join(sym for _, sym in chord_symbols(harmony, every=chord_rate)))
    return lines


def harmonise_command(checkpoint: Any, args: argparse.Namespace, settings: HarmonySettings) -> HarmonyResult:
    """Read the melody, harmonise it, print what happened, write --out (and --musicxml)."""
    melody = read_melody(args)
    rate = getattr(args, "chord_rate", None) or "beat"
    soprano, messages, transposed = soprano_of(melody, rate)
    result = harmonise(checkpoint, soprano, settings)
    harmony, moved = in_melody_key(result.chorale, transposed)
    for m in messages + ([moved] if moved else []) + describe(result, harmony, rate):
        print(m)
    out = Path(getattr(args, "out", None) or "harmonised.mid")
    out.write_bytes(midi_bytes(harmony, programs=INSTRUMENT_SETS["choir"], tempo=melody.tempo))
    print(f"wrote {out} (four tracks: soprano, alto, tenor, bass; {harmony.steps * STEP_TICKS // 12} quarters)")
    if getattr(args, "musicxml", None):
        _write_musicxml(harmony, Path(args.musicxml), rate)
    return result


def _write_musicxml(chorale: Chorale, path: Path, chord_rate: str) -> None:
    path.write_bytes(to_musicxml(chorale, chords=True, every=chord_rate))
    print(f"wrote {path} (four parts, chord symbols)")
