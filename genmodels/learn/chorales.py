"""The harmony corpus: J. S. Bach's four-part chorales from music21's bundled corpus, on the grid.

Every MusicXML file of music21's ``bach`` corpus is read; the four vocal parts (Soprano, Alto, Tenor,
Bass, found by part name, instruments left out) go onto the sixteenth grid of
:mod:`genmodels.harmony.grid`: ties merged, grace notes dropped, a note shorter than a sixteenth
merged into the note before it, rests as REST, the pickup as ``offset``. Chorales that cannot be
aligned are counted by reason. The split is by chorale (sha1 of the BWV number, so the copies of
one chorale share a split); the train split also holds every transposition in which all four voices
stay in their ranges. Output bytes are deterministic.

``python -m genmodels.learn.chorales`` builds ``data/harmony/`` and its data/README.md section.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

from genmodels.core.errors import DataError
from genmodels.core.paths import atomic_write, atomic_write_json, repo_path, stable_bucket
from genmodels.harmony.grid import HOLD, RANGES, REST, VOICES, Chorale, VoiceNote, row_from_notes
from genmodels.learn.text_corpus import write_readme_section
from genmodels.music.scales import key_name

SPLITS = ("train", "valid", "test")
TRANSPOSITIONS = range(-6, 7)
FORMAT = 1  # bump when the record changes
DATA_README = repo_path("data/README.md")
_SUFFIXES = (".mxl", ".xml", ".musicxml")


class _Skip(Exception):
    """A chorale that cannot be aligned; the message is the reason counted in stats.json."""


def chorale_group(chorale_id: str) -> str:
    """The BWV number a file belongs to (``bwv248.9-s`` → ``bwv248.9``): copies share a split."""
    m = re.match(r"[a-z]+\d+(\.\d+)?", chorale_id.lower())
    return m.group(0) if m else chorale_id.lower()


def chorale_split(chorale_id: str) -> str:
    """Deterministic ~80/10/10 split from the sha1 of the chorale's BWV number."""
    h = stable_bucket(chorale_group(chorale_id), 100)
    return "train" if h < 80 else ("valid" if h < 90 else "test")


def chorale_files() -> list[str]:
    """Sorted paths of the MusicXML files of music21's bach corpus (Humdrum duplicates and the
    Roman-numeral analyses left out)."""
    from music21 import corpus

    return sorted(str(p) for p in corpus.getComposer("bach") if str(p).endswith(_SUFFIXES))


def _file_id(path: str) -> str:
    name = Path(path).name
    for s in _SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


# ----------------------------------------------------------------------------------------------
# music21 score -> chorale record (runs in worker processes)
# ----------------------------------------------------------------------------------------------


def _vocal_parts(score: Any) -> list[Any]:
    """Soprano, alto, tenor, bass by part name (the first word), exactly one of each."""
    found: dict[str, list] = {v: [] for v in VOICES}
    for p in score.parts:
        words = f"{p.partName or p.id or ''}".lower().split()
        first = re.sub(r"[^a-z]", "", words[0]) if words else ""
        if first in found:
            found[first].append(p)
    if any(len(found[v]) != 1 for v in VOICES):
        raise _Skip("not exactly 4 vocal parts")
    return [found[v][0] for v in VOICES]


def _meter(part: Any) -> tuple[int, int]:
    from music21 import meter as m21meter

    sigs = {(ts.numerator, ts.denominator) for ts in part.recurse().getElementsByClass(m21meter.TimeSignature)}
    if not sigs:
        raise _Skip("no meter")
    if len(sigs) > 1:
        raise _Skip("meter change")
    meter = sigs.pop()
    if meter[1] not in (2, 4, 8) or meter[0] < 1:
        raise _Skip("unsupported meter")
    return meter


def _offset_steps(part: Any, bar_ql: Fraction) -> int:
    """Where step 0 sits in its bar; checks that every later bar line falls on the meter grid."""
    measures = list(part.getElementsByClass("Measure"))
    shift = Fraction(0)
    if len(measures) > 1:
        shift = (-Fraction(measures[1].offset)) % bar_ql
    elif measures and measures[0].paddingLeft:
        shift = Fraction(measures[0].paddingLeft) % bar_ql
    full = [m for m in measures[1:] if Fraction(m.duration.quarterLength) == bar_ql]
    off = sum(1 for m in full if (Fraction(m.offset) + shift) % bar_ql != 0)
    if off:
        raise _Skip("bar lines off the meter grid")
    steps = shift * 4
    if steps.denominator != 1:
        raise _Skip("pickup off the sixteenth grid")
    return int(steps)


def _q(x: Any) -> int:
    """Quarter lengths → steps, rounded half up (exact on the music21 fractions)."""
    return int((Fraction(x) * 4 + Fraction(1, 2)) // 1)


def _part_notes(part: Any, counts: Counter) -> list[VoiceNote]:
    """One vocal part's notes on the grid: ties merged, grace notes dropped, a note shorter than a
    sixteenth merged into the note before it."""
    notes: list[VoiceNote] = []
    prev_end = Fraction(-1)
    for el in part.stripTies().flatten().notes:
        if el.duration.isGrace or el.quarterLength <= 0:
            counts["grace notes dropped"] += 1
            continue
        if el.isChord and len(el.pitches) > 1:
            raise _Skip("chord inside a part")
        pitch = el.pitches[0].midi if el.isChord else el.pitch.midi
        start, end = Fraction(el.offset), Fraction(el.offset) + Fraction(el.quarterLength)
        if start < prev_end:
            raise _Skip("overlapping notes inside a part")
        s, e = _q(start), _q(end)
        if e <= s:  # shorter than a sixteenth: its time goes to the note before
            counts["notes shorter than a sixteenth merged"] += 1
            if notes and notes[-1].end == s:
                notes[-1] = VoiceNote(notes[-1].pitch, notes[-1].start, max(notes[-1].steps, e - notes[-1].start))
        else:
            notes.append(VoiceNote(pitch, s, e - s))
        prev_end = end
    return notes


def _fermatas(part: Any, row: tuple[int, ...]) -> list[int]:
    """Steps where a soprano note under a fermata starts."""
    from music21 import expressions

    out = set()
    for el in part.flatten().notes:
        if any(isinstance(x, expressions.Fermata) for x in el.expressions):
            t = min(_q(el.offset), len(row) - 1)
            while t > 0 and row[t] == HOLD:
                t -= 1
            if row[t] >= 0:
                out.add(t)
    return sorted(out)


def _key(parts: list[Any]) -> tuple[int, str, str]:
    """(tonic, mode, where it came from): music21's key analysis (Krumhansl-Schmuckler) over the four
    voices, kept where it agrees with the written key signature within one accidental (modal chorales
    are often written with one flat fewer); else the signature's key in the analysed mode."""
    from music21 import key as m21key
    from music21 import stream

    ks = next(iter(parts[0].recurse().getElementsByClass(m21key.KeySignature)), None)
    try:
        k = stream.Score([p for p in parts]).analyze("key")
    except Exception:  # analysis can fail on odd scores: fall back to the signature's major
        k = None
    mode = "minor" if k is not None and k.mode == "minor" else "major"
    if k is not None and (ks is None or abs(k.sharps - ks.sharps) <= 1):
        return k.tonic.pitchClass, mode, "analysis"
    if ks is None:
        return 0, "major", "default C major"
    return ks.asKey(mode).tonic.pitchClass, mode, "signature (analysis disagreed)"


def chorale_record(score: Any, chorale_id: str) -> dict:
    """One music21 Score → a Chorale dict plus counts, or {'skip': reason}."""
    counts: Counter = Counter()
    try:
        parts = _vocal_parts(score)
        meter = _meter(parts[0])
        offset = _offset_steps(parts[0], Fraction(meter[0] * 4, meter[1]))
        ends = {Fraction(p.highestTime) for p in parts}
        if len(ends) != 1:
            raise _Skip("parts of different lengths")
        steps = _q(ends.pop())
        if steps <= 0:
            raise _Skip("empty")
        rows = [row_from_notes(_part_notes(p, counts), steps) for p in parts]
        if any(all(x == REST for x in r) for r in rows):
            raise _Skip("a voice without notes")
    except _Skip as e:
        return {"id": chorale_id, "skip": str(e)}
    tonic, mode, key_source = _key(parts)
    ch = Chorale(
        voices=tuple(rows),
        meter=meter,
        tonic=tonic,
        mode=mode,
        offset=offset % (meter[0] * 16 // meter[1]),
        fermatas=tuple(_fermatas(parts[0], rows[0])),
        id=chorale_id,
        meta={"source": chorale_id, "transposed": 0},
    )
    return {"id": chorale_id, "chorale": ch.to_dict(), "counts": dict(counts), "key_source": key_source}


def parse_chorale(path: str) -> dict:
    """Parse one corpus file into a chorale record (worker entry point; never raises)."""
    from music21 import converter

    cid = _file_id(path)
    try:
        return chorale_record(converter.parse(path), cid)
    except Exception as e:  # a broken file is counted, not fatal
        return {"id": cid, "skip": f"unreadable ({type(e).__name__})"}


def _parse_all(paths: list[str], workers: int) -> list[dict]:
    if workers > 1 and len(paths) > 1:
        ctx = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
        with ctx.Pool(workers) as pool:
            return list(pool.imap(parse_chorale, paths, chunksize=4))
    return [parse_chorale(p) for p in paths]


# ----------------------------------------------------------------------------------------------
# Ranges, transpositions, splits
# ----------------------------------------------------------------------------------------------


def voice_extremes(chorale: Chorale) -> list[tuple[int, int] | None]:
    """(lowest, highest) pitch of each voice, None for a voice without notes."""
    out: list[tuple[int, int] | None] = []
    for v in range(4):
        ps = [x for x in chorale.voices[v] if x >= 0]
        out.append((min(ps), max(ps)) if ps else None)
    return out


def in_range(chorale: Chorale, semitones: int = 0) -> bool:
    """Whether every voice, moved by ``semitones``, stays inside grid.RANGES."""
    for name, ext in zip(VOICES, voice_extremes(chorale), strict=True):
        lo, hi = RANGES[name]
        if ext is not None and not (lo <= ext[0] + semitones and ext[1] + semitones <= hi):
            return False
    return True


def transpositions(chorale: Chorale) -> list[int]:
    """The shifts in −6..+6 that keep all four voices in range; 0 (Bach's own key) always."""
    return sorted({0} | {k for k in TRANSPOSITIONS if in_range(chorale, k)})


def _copies(chorale: Chorale, shifts: list[int]) -> list[Chorale]:
    out = []
    for k in shifts:
        c = chorale.transpose(k)
        cid = chorale.id if k == 0 else f"{chorale.id}_t{k:+d}"
        out.append(Chorale(**{**c.__dict__, "id": cid, "meta": {"source": chorale.id, "transposed": k}}))
    return out


def _content_key(ch: Chorale) -> tuple:
    """The four rows relative to the first soprano pitch: equal keys = the same harmonisation."""
    first = next((x for x in ch.voices[0] if x >= 0), 0)
    return tuple(tuple(x - first if x >= 0 else x for x in v) for v in ch.voices)


def assign_splits(chorales: list[Chorale]) -> dict[str, str]:
    """id → split: by BWV number; a harmonisation that appears again under another number
    (in any key) follows the split of its first (sorted) copy, so no copy leaks across splits."""
    first: dict[tuple, str] = {}
    out = {}
    for ch in sorted(chorales, key=lambda c: c.id):
        key = _content_key(ch)
        out[ch.id] = first.setdefault(key, chorale_split(ch.id))
    return out


# ----------------------------------------------------------------------------------------------
# Build
# ----------------------------------------------------------------------------------------------


def _collect(records: list[dict], stats: dict) -> list[Chorale]:
    """The aligned chorales of ``records``; skips, merged notes, keys and meters counted in ``stats``."""
    out = []
    for rec in records:
        if "skip" in rec:
            stats["skipped"][rec["skip"]] = stats["skipped"].get(rec["skip"], 0) + 1
            stats["skipped_ids"].setdefault(rec["skip"], []).append(rec["id"])
            continue
        ch = Chorale.from_dict(rec["chorale"])
        out.append(ch)
        for k, v in rec.get("counts", {}).items():
            stats[k.replace(" ", "_")] = stats.get(k.replace(" ", "_"), 0) + v
        for d, k in ((stats["key_sources"], rec["key_source"]), (stats["modes"], ch.mode)):
            d[k] = d.get(k, 0) + 1
        stats["chorales_without_fermatas"] += not ch.fermatas
        m = f"{ch.meter[0]}/{ch.meter[1]}"
        stats["meters"][m] = stats["meters"].get(m, 0) + 1
        for name, ext in zip(VOICES, voice_extremes(ch), strict=True):
            if ext is not None and not (RANGES[name][0] <= ext[0] and ext[1] <= RANGES[name][1]):
                stats["out_of_range"][name] += 1
    return sorted(out, key=lambda c: c.id)


def _new_stats(source_files: int) -> dict:
    import music21

    return {
        "format": FORMAT,
        "music21_version": music21.__version__,
        "source_files": source_files,
        "chorales": 0,
        "transposed_copies": 0,
        "splits": {s: {"chorales": 0, "sequences": 0, "steps": 0, "notes": dict.fromkeys(VOICES, 0)} for s in SPLITS},
        "notes_per_voice": dict.fromkeys(VOICES, 0),
        "skipped": {},
        "skipped_ids": {},
        "meters": {},
        "modes": {},
        "key_sources": {},
        "out_of_range": dict.fromkeys(VOICES, 0),
        "notes_shorter_than_a_sixteenth_merged": 0,
        "grace_notes_dropped": 0,
        "chorales_without_fermatas": 0,
        "ranges": {v: list(RANGES[v]) for v in VOICES},
        "transpositions": [TRANSPOSITIONS.start, TRANSPOSITIONS.stop - 1],
    }


def _count(stats: dict, split: str, copies: list[Chorale]) -> None:
    s = stats["splits"][split]
    s["chorales"] += 1
    s["sequences"] += len(copies)
    for c in copies:
        s["steps"] += c.steps
        for v, name in enumerate(VOICES):
            s["notes"][name] += len(c.notes(v))
    for v, name in enumerate(VOICES):
        stats["notes_per_voice"][name] += len(copies[0].notes(v)) if copies else 0
    stats["chorales"] += 1
    stats["transposed_copies"] += sum(1 for c in copies if c.meta["transposed"] != 0)


def _build(records: list[dict], out: Path, source_files: int) -> dict:
    """Write {train,valid,test}.jsonl, manifest.json and (last, atomically) stats.json."""
    stats = _new_stats(source_files)
    chorales = _collect(records, stats)
    splits = assign_splits(chorales)
    stats["duplicates"] = len(chorales) - len({_content_key(c) for c in chorales})
    lines: dict[str, list[str]] = {s: [] for s in SPLITS}
    manifest = []
    for ch in chorales:
        split = splits[ch.id]
        shifts = transpositions(ch) if split == "train" else [0]
        copies = _copies(ch, shifts)
        lines[split] += [json.dumps(c.to_dict(), sort_keys=True, separators=(",", ":")) for c in copies]
        _count(stats, split, copies)
        manifest.append(_manifest_row(ch, split, shifts))
    out.mkdir(parents=True, exist_ok=True)
    if (out / "stats.json").exists():
        (out / "stats.json").unlink()  # its presence means "complete": gone while rebuilding
    for s in SPLITS:
        atomic_write(out / f"{s}.jsonl", "".join(x + "\n" for x in lines[s]))
    atomic_write_json(out / "manifest.json", {"chorales": manifest})
    stats["sha256"] = tree_hash_of(out, [f"{s}.jsonl" for s in SPLITS] + ["manifest.json"])
    atomic_write_json(out / "stats.json", stats)
    return stats


def _manifest_row(ch: Chorale, split: str, shifts: list[int]) -> dict:

    return {
        "id": ch.id,
        "bwv": chorale_group(ch.id),
        "split": split,
        "meter": f"{ch.meter[0]}/{ch.meter[1]}",
        "key": key_name(ch.tonic, ch.mode),
        "steps": ch.steps,
        "offset": ch.offset,
        "fermatas": len(ch.fermatas),
        "transpositions": shifts,
    }


def tree_hash_of(folder: Path, names: list[str]) -> str:
    """SHA-256 over the named files of ``folder`` (names and bytes): equal hashes = identical corpora."""

    h = hashlib.sha256()
    for n in names:
        h.update(n.encode())
        h.update(hashlib.sha256((folder / n).read_bytes()).digest())
    return h.hexdigest()


def prepare_harmony(
    out: str | os.PathLike = "data/harmony",
    workers: int = 1,
    progress: bool = True,
    readme: str | os.PathLike | None = DATA_README,
) -> dict:
    """Build the chorale corpus into ``out``; returns the stats (also in ``out/stats.json``). The
    harmony section of ``readme`` (data/README.md; None: none) is rewritten from the stats."""
    t0 = time.time()
    paths = chorale_files()
    if not paths:
        raise DataError(
            "No Bach chorales found in music21's corpus: install music21 with its corpus (pip install music21)"
        )
    if progress:
        print(f"harmony corpus: parsing {len(paths)} chorale files ...", file=sys.stderr, flush=True)
    stats = _build(_parse_all(paths, max(1, int(workers))), Path(out), len(paths))
    if readme is not None:
        write_readme_section(readme, "harmony", write_data_readme_section(stats))
    stats["seconds"] = round(time.time() - t0, 1)
    return stats


def small_corpus(out: str | os.PathLike, n: int = 8) -> dict:
    """A tiny corpus in the same format from the first few chorale files (by name): ``n - 2`` train
    chorales and one each for valid and test, so every split has one. Parses only those (seconds)."""
    paths = chorale_files()
    picked: dict[str, list[str]] = {s: [] for s in SPLITS}
    want = {"train": max(1, n - 2), "valid": 1, "test": 1}
    for p in paths:
        s = chorale_split(_file_id(p))
        if len(picked[s]) < want[s]:
            picked[s].append(p)
        if all(len(picked[k]) >= want[k] for k in SPLITS):
            break
    chosen = sorted(p for s in SPLITS for p in picked[s])
    return _build([parse_chorale(p) for p in chosen], Path(out), len(chosen))


def load_split(folder: str | os.PathLike, split: str) -> list[Chorale]:
    """The chorales of one split (``train`` includes the transposed copies)."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    path = Path(folder) / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path} is missing: build the chorale corpus with `python -m genmodels prepare harmony`")
    out = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(Chorale.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError, IndexError) as e:
                raise DataError(
                    f"{path} line {i} is not a chorale ({e}); rebuild with `python -m genmodels prepare harmony`"
                ) from e
    return out


# ----------------------------------------------------------------------------------------------
# data/README.md
# ----------------------------------------------------------------------------------------------


def _counts(d: dict) -> str:
    return ", ".join(f"{k} {n}" for k, n in d.items())


def _processing_paragraph(stats: dict) -> str:
    return (
        "Processing (`genmodels/learn/chorales.py`): the parts named Soprano, Alto, Tenor and Bass "
        "(instrumental parts left out) on a sixteenth-note grid (each step: a MIDI pitch where a note "
        f"starts, hold, or rest); ties merged, grace notes dropped ({stats['grace_notes_dropped']}), "
        "notes shorter than a sixteenth merged into the note before "
        f"({stats['notes_shorter_than_a_sixteenth_merged']}); the pickup kept as the offset of step 0 in "
        "its bar; fermatas = steps where a soprano note with a fermata starts "
        f"({stats.get('chorales_without_fermatas', 0)} chorales have none in the source). Key: music21's "
        "Krumhansl-Schmuckler analysis (`analyze('key')`) of the four voices, kept where it agrees "
        "with the written key signature within one accidental (modal chorales are written with one "
        "flat fewer), else the written signature's key in the analysed mode. Where the key came from: "
        f"{_counts(stats['key_sources'])}. Modes: {_counts(stats['modes'])}. Meters: {_counts(stats['meters'])}."
    )


def _split_paragraph(stats: dict) -> str:
    ranges = ", ".join(f"{v} {lo}..{hi}" for v, (lo, hi) in stats["ranges"].items())
    lo, hi = stats["transpositions"]
    return (
        "Split by chorale: sha1 of the BWV number (`bwv248.9-s` and `bwv248.9-1` share one), ~80/10/10; "
        "a harmonisation found again under another number (in any key) goes with its first copy "
        f"({stats.get('duplicates', 0)} such copies). Train also holds every transposition in "
        f"{lo:+d}..{hi:+d} semitones in which all four voices stay in their ranges (MIDI, `grid.RANGES`: "
        f"{ranges}); Bach's own key is always kept. Valid and test: each chorale once, as written. "
        f"Bach's own chorales with a voice outside its range: {_counts(stats['out_of_range'])} (too few to "
        "widen the ranges; they are kept in their own key only)."
    )


def write_data_readme_section(stats: dict) -> str:
    """Markdown section for data/README.md describing the chorale corpus built with ``stats``."""
    ver = stats.get("music21_version", "")
    sp = stats["splits"]
    rows = [
        f"| {s} | {sp[s]['chorales']} | {sp[s]['sequences']:,} | {sp[s]['steps']:,} | "
        + " | ".join(f"{sp[s]['notes'][v]:,}" for v in VOICES)
        + " |"
        for s in SPLITS
    ]
    ids = stats["skipped_ids"]
    skipped = "; ".join(f"{k}: {v} ({', '.join(ids.get(k, []))})" for k, v in sorted(stats["skipped"].items()))
    return "\n".join(
        [
            "## Harmony corpus: Bach chorales (`data/harmony/`)",
            "",
            f"Source: the MusicXML files of the `bach` folder of the corpus bundled inside music21 {ver} "
            f"(`pip install music21=={ver}`): {stats['source_files']} files (the Humdrum duplicates and the "
            "Roman-numeral analyses in the same folder are not read). Licence: as for the melody corpus "
            "(music21's `corpus/license.txt`, quoted above); J. S. Bach's chorales are public domain as compositions.",
            "",
            _processing_paragraph(stats),
            "",
            _split_paragraph(stats),
            "",
            f"Chorales: {stats['chorales']}; transposed copies (train): {stats['transposed_copies']:,}.",
            "",
            "| split | chorales | sequences | steps | soprano notes | alto notes | tenor notes | bass notes |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f'Skipped (could not be aligned): {skipped or "none"}. "Bar lines off the meter grid": a bar '
            "of irregular length mid-piece moves every later bar line off the meter's grid.",
            "",
            "Files: `{train,valid,test}.jsonl` (one chorale per line: id, meter, tonic, mode, offset, "
            "fermatas, voices, meta with `source` and `transposed`), `manifest.json`, `stats.json` "
            "(written last: its presence means the build is complete).",
            "",
            "Rebuild: `python -m genmodels prepare harmony` (or `python -m genmodels.learn.chorales`); "
            f"deterministic, SHA-256 of the files `{stats.get('sha256', '')[:16]}…` when this was written.",
            "",
        ]
    )
