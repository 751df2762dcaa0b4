"""Form figures of tunes as played: repeated bars, part echo, cadences at part ends, the last note.

Measured on the first 16 played bars of each tune (from the first full bar: a pickup bar is left out,
so the parts line up): the repeated-bar share (bars equal to an earlier bar), the part echo (bars
9-16 equal to the bar eight before, which a repeated 8-bar part or an AABB tune gives), the cadence
share at part ends (bars 8 and 16: the last note starting on a strong beat is the tonic or the
dominant and holds at least a beat), and the tune's last note (tonic, on a strong beat, its length).
``form_report`` compares held-out dance tunes with the model's continuations of their first two bars: the
style drawn given them, or their own (the collections of these tunes are all fiddle-tune books), and the
network alone, without the copies of the tune's own bars, where the checkpoint has cache weights.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from genmodels.infer.constraints import MelodySteering
from genmodels.infer.decoding import Settings
from genmodels.infer.sampling import Sampler
from genmodels.learn.data import melody_files, read_melodies
from genmodels.music import Melody
from genmodels.music.form import Form, beat_ticks, grid_bars, strong_beats

FORM_BARS = 16
PART_BARS = 8
DANCE_COLLECTIONS = ("ryansMammoth", "oneills1850", "airdsAirs")  # ABC dance-tune books (Essen has no repeats)


def first_full_bar(melody: Melody) -> int:
    """1 when bar 0 is a pickup (it starts with silence and holds a note), else 0."""
    return 1 if melody.notes and 0 < melody.notes[0].start < melody.bar_ticks else 0


def form_bars(melody: Melody, n: int = FORM_BARS) -> list:
    """The grid bars the figures look at: ``n`` bars from the first full bar."""
    s = first_full_bar(melody)
    return grid_bars(melody)[s : s + n]


def repeated_bars(bars: list) -> tuple[int, int]:
    """(bars equal to an earlier bar, bars)."""
    seen, rep = set(), 0
    for b in bars:
        rep += b in seen
        seen.add(b)
    return rep, len(bars)


def part_echo(bars: list, part: int = PART_BARS) -> tuple[int, int]:
    """(bars of the second part equal to the bar a part earlier, bars of the second part)."""
    pairs = [(bars[i], bars[i - part]) for i in range(part, min(len(bars), 2 * part))]
    return sum(a == b for a, b in pairs), len(pairs)


def cadence_note(melody: Melody, bar: int):
    """The last note starting on a strong beat of ``bar`` (0-based), or None."""
    bt = melody.bar_ticks
    strong = {bar * bt + s for s in strong_beats(melody.meter)}
    notes = [n for n in melody.notes if n.start in strong]
    return notes[-1] if notes else None


def cadences(melody: Melody, bar: int, final: bool = False) -> bool:
    """Bar ``bar`` cadences: its last note on a strong beat is the tonic (or, unless ``final``, the
    dominant) and holds at least a beat."""
    n = cadence_note(melody, bar)
    if n is None:
        return False
    tonic = melody.key[0] % 12
    pcs = {tonic} if final else {tonic, (tonic + 7) % 12}
    return n.pitch % 12 in pcs and n.duration >= beat_ticks(melody.meter)


def last_note(melody: Melody) -> tuple[bool, bool, float]:
    """(the tune's last note is the tonic, it starts on a strong beat, its length in beats)."""
    n = melody.notes[-1]
    pos = n.start % melody.bar_ticks
    return n.pitch % 12 == melody.key[0] % 12, pos in strong_beats(melody.meter), n.duration / beat_ticks(melody.meter)


def form_figures(melodies: list[Melody], part: int = PART_BARS) -> dict:
    """The figures over tunes with at least 16 played bars after the pickup."""
    rep = echo = cad = 0
    n_rep = n_echo = n_cad = 0
    tonic_end = strong_end = 0
    lengths: Counter = Counter()
    used = 0
    for m in melodies:
        bars = form_bars(m)
        if len(bars) < FORM_BARS:
            continue
        used += 1
        a, b = repeated_bars(bars)
        rep, n_rep = rep + a, n_rep + b
        a, b = part_echo(bars, part)
        echo, n_echo = echo + a, n_echo + b
        s = first_full_bar(m)
        for end in range(part - 1, FORM_BARS, part):
            cad += cadences(m, s + end)
            n_cad += 1
        t, strong, beats = last_note(m)
        tonic_end += t
        strong_end += strong
        lengths[_length_bin(beats)] += 1
    share = lambda a, b: round(a / b, 3) if b else None  # noqa: E731
    return {
        "tunes": used,
        "repeated_bars": share(rep, n_rep),
        "part_echo": share(echo, n_echo),
        "cadence_at_part_ends": share(cad, n_cad),
        "last_note_tonic": share(tonic_end, used),
        "last_note_on_strong_beat": share(strong_end, used),
        "last_note_beats": {k: share(v, used) for k, v in sorted(lengths.items())},
    }


def _length_bin(beats: float) -> str:
    return "<1/2" if beats < 0.5 else "<1" if beats < 1 else "1" if beats == 1 else ">1"


def dance_tunes(data: str | Path, split: str = "test") -> list[Melody]:
    """The held-out tunes of the dance collections (file names start with the collection)."""
    files = [f for f in melody_files(Path(data) / split) if f.name.startswith(DANCE_COLLECTIONS)]
    return [m for _, m in read_melodies(files)]


def continuations(
    sampler: Sampler,
    tunes: list[Melody],
    seed: int = 0,
    temperature: float = 1.0,
    form: Form | None = None,
    style: str | None = None,
) -> list[Melody]:
    """Each tune's first two bars (after a pickup) continued by the model to 16 bars, played out; with
    ``form``, continued in that form (its length); with ``style``, as that kind of tune."""
    out = []
    steering = MelodySteering(form=form or MelodySteering().form, style=style)
    for i, m in enumerate(tunes):
        keep = first_full_bar(m) + 2
        prompt = m.slice_bars(0, keep)
        prompt = Melody(prompt.notes, prompt.meter, prompt.key, prompt.tempo)
        settings = Settings(temperature=temperature, seed=seed + i)
        r = sampler.generate_melody(prompt, FORM_BARS + first_full_bar(m) - keep, settings, steering)[0]
        out.append(r.full)
    return out


def form_report(sampler: Sampler, data: str | Path, limit: int | None = None, seed: int = 0) -> dict:
    """Held-out dance tunes against the model's continuations of their first two bars, both played out."""
    tunes = [m for m in dance_tunes(data) if len(form_bars(m)) >= FORM_BARS][:limit]
    return {
        "held_out": form_figures(tunes),
        "generated": form_figures(continuations(sampler, tunes, seed)),
        "generated_own_style": form_figures(continuations(sampler, tunes, seed, style="tunebook"))
        if "tunebook" in getattr(sampler.tok, "styles", ())
        else None,
        "generated_network_alone": form_figures(continuations(Sampler(sampler.ckpt, cache=False), tunes, seed))
        if sampler.cache
        else None,
        "generated_AABB": form_figures(continuations(sampler, tunes, seed, form=Form("AABB", PART_BARS))),
        "note": "first 16 played bars after any pickup; generated: the first 2 bars of each held-out tune "
        "continued as the model writes (no form chosen): the style drawn given the 2 bars, or the tunes' own "
        "(their collections' fiddle-tune style, as the Melody page continues a tune of the tune book); and in "
        "the form AABB with 8-bar parts (the pickup bar counts in A); generated_network_alone: the style drawn, "
        "without the copies of the tune's own bars (genmodels.nn.cache)",
    }
