"""``generate`` with a melody model: continue a prompt (or, without one, write a tune from its key and meter),
regenerate bars or keep a rhythm; transpose; write MIDI, ABC and MusicXML."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genmodels.core.errors import SettingsError
from genmodels.core.options import from_flat, option
from genmodels.infer.constraints import MelodySteering
from genmodels.music import PITCH_RANGE, Melody, format_notes, parse_note_prompt, read_midi, write_midi
from genmodels.music.abc import to_abc
from genmodels.music.form import PART_BARS, Form
from genmodels.music.musicxml import musicxml_bytes
from genmodels.music.scales import key_name, parse_abc_key, to_key, transpose
from genmodels.tokenizers.melody import STYLE_NAMES


@dataclass(frozen=True)
class MelodyGenerateOptions:
    """The melody options of ``python -m genmodels generate`` (library callers use the Sampler)."""

    key: str = option(
        "",
        'melody: tonic and mode to write in, e.g. "A dorian"; the prompt is moved there by scale degree',
        shown="the prompt's; C major without a prompt",
    )
    stay_in_key: str = option(
        "off",
        "melody: pitches outside the key's scale: off, gentle (penalised) or strict (never)",
        choices=("off", "gentle", "strict"),
    )
    end_on_tonic: bool = option(False, "melody: the last bar is complete and its last note is the tonic")
    regenerate_bars: str = option(
        "",
        'melody: regenerate these bars of --prompt-midi/--prompt-notes, e.g. "3-4", keeping the others',
        shown="none",
    )
    keep_rhythm: str = option(
        "",
        "melody: a MIDI file whose rhythm (durations, rests, bar lines) is kept; only pitches are sampled",
        shown="none",
    )
    form: str = option(
        "free",
        "melody: the tune's parts in play order, e.g. AABB, AB, ABAC (a letter twice in a row: a repeated "
        "part), or free: as the model writes it; the length is the form's",
    )
    part_bars: int = option(8, "melody: bars in each part of --form", choices=PART_BARS)
    endings: bool = option(False, "melody: --form's repeated parts get first and second endings")
    style: str = option(
        "",
        "melody: the kind of tune, one of the model's styles (tunebook: fiddle and pipe tunes whose parts repeat; "
        "folksong; chorale)",
        shown="drawn given the prompt",
    )
    transpose: int = option(0, "melody: move the result by this many semitones")
    abc: str = option("", "melody: also write the result as ABC to this file", shown="none")
    musicxml: str = option("", "melody: also write the result as MusicXML to this file", shown="none")
    tempo: float = option(0.0, "melody: tempo in quarter notes per minute", shown="the prompt's, else 120")


def parse_bar_range(text: str) -> tuple[int, int]:
    """'3-4' -> (3, 4); '5' -> (5, 5). SettingsError otherwise."""
    parts = str(text).replace(" ", "").split("-")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2):
        raise SettingsError(f'Bars to regenerate are written "3-4" or "5"; got {text!r}')
    return nums[0], nums[-1]


def _prompt_from_args(args: argparse.Namespace):
    """The prompt melody; without --prompt-midi or --prompt-notes an empty one in --meter (4/4 unless
    given), from whose header the model starts the tune itself."""
    try:
        meter = tuple(int(x) for x in str(args.meter or "4/4").split("/"))
    except ValueError:
        meter = ()
    if len(meter) != 2:
        raise SettingsError(f"--meter {args.meter!r}: write it as 3/4, 4/4, 6/8, ...")
    if args.prompt_midi:
        return read_midi(args.prompt_midi, track=getattr(args, "track", None))
    if args.prompt_notes:
        return parse_note_prompt(args.prompt_notes, meter=meter)
    return Melody([], meter)


def _melody_options(args: argparse.Namespace) -> MelodyGenerateOptions:

    names = [f.name for f in dataclasses.fields(MelodyGenerateOptions)]
    return from_flat(MelodyGenerateOptions, {k: getattr(args, k) for k in names if getattr(args, k, None) is not None})


def run_melody_generate(sampler: Any, args: argparse.Namespace, length: int, settings: Any) -> list:
    """``generate`` for a melody model: continue, regenerate bars or keep a rhythm; transpose; write
    MIDI (and ABC / MusicXML when asked). Returns the results."""

    o = _melody_options(args)
    form = Form(o.form, o.part_bars, o.endings)
    steering = MelodySteering(o.stay_in_key, o.end_on_tonic, form=form, style=o.style or None)
    key = parse_abc_key(o.key) if o.key else None
    prompt = _keyed_prompt(_prompt_from_args(args), key, o.tempo)
    results = _melody_results(sampler, o, prompt, key, length, settings, steering)
    if o.transpose:
        for r in results:
            r.full = transpose(r.full, o.transpose, *PITCH_RANGE)
    _write_melody_results(results, o, args, steering)
    return results


def _keyed_prompt(prompt: Any, key: tuple[int, str] | None, tempo: float | None) -> Any:
    """The prompt moved to ``key`` (by scale degree) and at ``tempo``, where given."""

    if key and prompt.notes:
        prompt = to_key(prompt, *key)
    elif key:
        prompt = dataclasses.replace(prompt, key=key)
    return dataclasses.replace(prompt, tempo=tempo) if tempo else prompt


def _melody_results(sampler: Any, o: Any, prompt: Any, key: Any, length: int, settings: Any, steering: Any) -> list:
    """Keep a rhythm, regenerate bars, or continue the prompt, as the options ask."""

    if o.keep_rhythm:
        rhythm = read_midi(o.keep_rhythm)
        rhythm = dataclasses.replace(rhythm, key=key or rhythm.key, tempo=o.tempo or rhythm.tempo)
        return sampler.repitch(rhythm, settings, steering)
    if o.regenerate_bars:
        if not prompt.notes:
            raise SettingsError("--regenerate-bars needs the melody to edit: --prompt-midi or --prompt-notes")
        first, last = parse_bar_range(o.regenerate_bars)
        candidates = settings.n if settings.n > 1 else 8
        return [sampler.regenerate_bars(prompt, first, last, settings, steering, candidates=candidates)]
    return sampler.generate_melody(prompt, bars=length, settings=settings, steering=steering)


def _write_melody_results(results: list, o: Any, args: argparse.Namespace, steering: Any) -> None:
    """Each result as MIDI (and ABC / MusicXML when asked), NAME-1, NAME-2 ... for several; one line each."""

    many = len(results) > 1

    def named(base: str | Path, i: int) -> Path:
        p = Path(base)
        return p.with_name(f"{p.stem}-{i + 1}{p.suffix}") if many else p

    out = Path(args.out or "generated.mid")
    for i, r in enumerate(results):
        write_midi(r.full, named(out, i), program=args.program)
        if o.abc:
            named(o.abc, i).write_text(to_abc(r.full, title=f"Generated in {key_name(*r.full.key)}"))
        if o.musicxml:
            named(o.musicxml, i).write_bytes(musicxml_bytes(r.full))
        rate = f"; constraints overruled {r.overruled} of {r.events} events" if steering.active else ""
        style = f", written as a {STYLE_NAMES[r.style]}" if r.style else ""
        print(f"{named(out, i)} ({key_name(*r.full.key)}{style}{rate}): {format_notes(r.full)}")
