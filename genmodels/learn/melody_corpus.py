"""The default melody corpus: folk tunes and Bach chorale melodies from music21's bundled corpus.

Each tune is reduced to a monophonic Melody, written as a real .mid file with write_midi and read
back with read_midi (the same path a user's MIDI takes), then split by a hash of its stable id.
Parsing is cached per source file, so a second build is fast; output bytes are deterministic.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from genmodels.core.errors import DataError, MidiError, NotationError
from genmodels.core.paths import atomic_write, stable_bucket, tree_hash
from genmodels.music.midi import read_midi, skyline, write_midi
from genmodels.music.scales import estimate_key, estimate_key_in_signature, nearest_folk_mode
from genmodels.music.types import SUPPORTED_METERS, TICKS_PER_QUARTER, Melody, Note, bar_ticks_for
from genmodels.tokenizers.melody import MelodyTokenizer

COLLECTIONS = ("essenFolksong", "ryansMammoth", "oneills1850", "airdsAirs", "bach")
SPLITS = ("train", "valid", "test")
MIN_NOTES = 8
CACHE_FORMAT = 3  # bump when a tune record changes, so cached parses are redone
_MAJORISH = {"major", "ionian", "mixolydian", "lydian"}
_MINORISH = {"minor", "aeolian", "dorian", "phrygian", "locrian"}


def tune_split(tune_id: str) -> str:
    """Deterministic ~90/5/5 split from the sha1 of the tune id."""
    h = stable_bucket(tune_id, 100, hex_digits=8)
    return "train" if h < 90 else ("valid" if h < 95 else "test")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def corpus_files(collections: tuple[str, ...] = COLLECTIONS, limit: int | None = None) -> list[tuple[str, str]]:
    """Sorted (collection, absolute path) pairs; `limit` = at most that many files per collection."""
    from music21 import corpus

    out = []
    for coll in collections:
        paths = sorted(
            str(p) for p in corpus.getComposer(coll) if str(p).endswith((".abc", ".mxl", ".xml", ".musicxml"))
        )
        if limit is not None:
            paths = paths[:limit]
        out += [(coll, p) for p in paths]
    return out


# ----------------------------------------------------------------------------------------------
# music21 score -> melody record (runs in worker processes)
# ----------------------------------------------------------------------------------------------


class _SkipTune(Exception):
    """A tune that the corpus leaves out; the message is the reason counted in the stats."""


def _tune_record(score: Any, coll: str) -> dict:
    """One music21 Score -> {'meter','key','tempo','notes'} or {'skip': reason}."""
    try:
        part = _melody_part(score, coll)
        measures = list(part.getElementsByClass("Measure"))
        meter = _single_meter(part, measures)
        bar_ql = bar_ticks_for(meter) / TICKS_PER_QUARTER
        shift_ql = _pickup_shift(measures, bar_ql)
        _check_bar_lines(measures, shift_ql, bar_ql)
        notes = _part_notes(part, shift_ql)
    except _SkipTune as e:
        return {"skip": str(e)}
    signature = _key_signature(part)
    return {
        "meter": list(meter),
        "key": list(_part_key(part, signature)),
        "signature": _written_key(signature),
        "tempo": _part_tempo(part, score),
        "notes": [[n.pitch, n.start, n.duration] for n in notes],
    }


def _melody_part(score: Any, coll: str) -> Any:
    """The part holding the tune: the first one, or the soprano of a Bach chorale."""
    parts = list(score.parts) if hasattr(score, "parts") else []
    if not parts:
        raise _SkipTune("no parts")
    if coll != "bach":
        return parts[0]
    soprano = [p for p in parts if "soprano" in f"{p.partName or ''} {p.id}".lower()]
    if not soprano:
        raise _SkipTune("no soprano part")
    return soprano[0]


def _single_meter(part: Any, measures: list) -> tuple[int, int]:
    """The tune's one supported meter. music21's ABC reader gives single short measures (section
    pickups) their own time signature; only a signature that lasts two or more measures counts."""
    from music21 import meter as m21meter

    signatures = list(part.recurse().getElementsByClass(m21meter.TimeSignature))
    if not signatures:
        raise _SkipTune("no meter")
    last_no = measures[-1].number if measures else 0
    spans = []
    for i, ts in enumerate(signatures):
        nxt = signatures[i + 1].measureNumber if i + 1 < len(signatures) else last_no + 1
        cur = ts.measureNumber
        span = (nxt - cur) if (nxt is not None and cur is not None) else 2
        spans.append(((ts.numerator, ts.denominator), span))
    meters = {m for m, span in spans if span >= 2} or {spans[0][0]}
    if len(meters) > 1:
        raise _SkipTune("meter change")
    meter = meters.pop()
    if meter not in SUPPORTED_METERS:
        raise _SkipTune("unsupported meter")
    return meter


def _pickup_shift(measures: list, bar_ql: float) -> float:
    """Quarter notes to shift the tune right so that bar lines fall at multiples of the bar."""
    if len(measures) > 1:
        return float(-measures[1].offset) % bar_ql
    if measures and measures[0].paddingLeft:
        return float(measures[0].paddingLeft) % bar_ql
    return 0.0


def _check_bar_lines(measures: list, shift_ql: float, bar_ql: float) -> None:
    """Full-length bars must start on the grid (short section pickups and endings may not)."""
    full = [m for m in measures[1:] if abs(float(m.duration.quarterLength) - bar_ql) < 1e-6]
    if not full:
        return
    # In 48ths of a quarter, so that triplet and dotted bar lengths compare exactly.
    off_grid = sum(1 for m in full if round(((float(m.offset) + shift_ql) % bar_ql) * 48) % round(bar_ql * 48))
    if off_grid > 0.1 * len(full):
        raise _SkipTune("bar lines off the meter grid")


def _part_notes(part: Any, shift_ql: float) -> list[Note]:
    """Ties merged, grace notes dropped, chords reduced to the top note, skyline over voices."""
    events = []
    for el in part.stripTies().flatten().notes:
        if el.duration.isGrace or el.quarterLength <= 0:
            continue
        if el.isChord and not el.pitches:
            continue
        pitch = max(x.midi for x in el.pitches) if el.isChord else el.pitch.midi
        start = round((float(el.offset) + shift_ql) * TICKS_PER_QUARTER)
        end = round((float(el.offset) + float(el.quarterLength) + shift_ql) * TICKS_PER_QUARTER)
        events.append((pitch, start, end))
    notes = skyline(events)
    if len(notes) < MIN_NOTES:
        raise _SkipTune(f"fewer than {MIN_NOTES} notes")
    return notes


def _key_signature(part: Any) -> Any:
    """The part's first key signature (a music21 Key where the source names tonic and mode), or None."""
    from music21 import key as m21key

    return next(iter(part.recurse().getElementsByClass(m21key.KeySignature)), None)


def _part_key(part: Any, ks: Any) -> tuple[int, str]:
    """(tonic, 'major'|'minor'): the written key `ks` where it names a mode, else music21's analysis
    held to the written signature."""
    from music21 import key as m21key

    mode = getattr(ks, "mode", None) if ks is not None else None
    if isinstance(ks, m21key.Key) and (mode in _MAJORISH or mode in _MINORISH):
        return ks.tonic.pitchClass, ("major" if mode in _MAJORISH else "minor")
    try:
        k = part.analyze("key")
        if ks is not None and k.sharps != ks.sharps:
            k = ks.asKey(k.mode if k.mode in ("major", "minor") else "major")
        return k.tonic.pitchClass, ("minor" if k.mode == "minor" else "major")
    except Exception:  # analysis can fail on odd scores: fall back to the signature's major
        return (ks.asKey("major").tonic.pitchClass if ks is not None else 0), "major"


def _written_key(ks: Any) -> list | None:
    """The source's own key signature as [tonic pitch class or None, mode name or None, sharps]:
    the ABC ``K:`` field gives tonic and mode (``K:Ador`` → [9, "dorian", 1]); a bare signature
    gives only the number of sharps."""
    if ks is None:
        return None
    from music21 import key as m21key

    if isinstance(ks, m21key.Key):
        return [ks.tonic.pitchClass, str(ks.mode), int(ks.sharps)]
    return [None, None, int(ks.sharps)]


def _part_tempo(part: Any, score: Any) -> float:
    """The first metronome mark of the part (else of the score) in quarter BPM, if plausible; else 120."""
    from music21 import tempo as m21tempo

    mark = next(iter(part.recurse().getElementsByClass(m21tempo.MetronomeMark)), None)
    if mark is None:
        mark = next(iter(score.recurse().getElementsByClass(m21tempo.MetronomeMark)), None)
    if mark is not None:
        try:
            bpm = mark.getQuarterBPM()
            if bpm and 20 <= bpm <= 400:
                return round(float(bpm), 2)
        except Exception:  # music21 raises on marks without a usable number
            pass
    return 120.0


def parse_source(job: tuple[str, str]) -> dict:
    """Parse one corpus file into tune records (worker entry point; never raises)."""
    coll, path = job
    from music21 import converter, stream

    stem = _safe(Path(path).name.rsplit(".", 1)[0])
    try:
        obj = converter.parse(path)
    except Exception as e:
        return {"source": path, "error": f"{type(e).__name__}: {e}"[:200], "tunes": []}
    scores = list(obj.scores) if isinstance(obj, stream.Opus) else [obj]
    tunes = []
    for i, sc in enumerate(scores):
        try:
            rec = _tune_record(sc, coll)
        except Exception as e:  # a broken tune must not lose the rest of the opus
            rec = {"skip": f"error {type(e).__name__}"}
        rec["id"] = f"{coll}-{stem}-{i:04d}"
        tunes.append(rec)
    return {"source": path, "tunes": tunes}


# ----------------------------------------------------------------------------------------------
# Build
# ----------------------------------------------------------------------------------------------


def _cache_path(cache_dir: Path, coll: str, path: str) -> Path:
    import music21

    rel = f"{coll}/{Path(path).name}"
    h = hashlib.sha1(f"{CACHE_FORMAT}|{rel}|music21-{music21.__version__}".encode()).hexdigest()[:16]
    return cache_dir / f"{_safe(coll)}-{h}.json"


def _read_cached(cache_path: Path) -> dict | None:
    try:
        return json.loads(cache_path.read_text())
    except (OSError, ValueError):  # missing or half-written: parse the source again
        return None


def _load_records(jobs: list[tuple[str, str]], cache_dir: Path, workers: int, progress: bool) -> list[dict]:
    """parse_source for every job, from the cache where it holds the file, else in `workers` processes."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict] = {}
    for i, job in enumerate(jobs):
        cached = _read_cached(_cache_path(cache_dir, *job))
        if cached is not None:
            results[i] = cached
    todo = [i for i in range(len(jobs)) if i not in results]
    # Progress in source bytes, not files: parse time grows with file size, so the ETA holds.
    sizes = [max(1, os.path.getsize(p)) for _, p in jobs]
    with tqdm(
        total=sum(sizes),
        initial=sum(sizes[i] for i in results),
        unit="B",
        unit_scale=True,
        desc="melody corpus",
        disable=not progress,
    ) as bar:
        for i, res in zip(todo, _parse_all([jobs[i] for i in todo], workers), strict=True):
            results[i] = res
            atomic_write(_cache_path(cache_dir, *jobs[i]), json.dumps(res))
            bar.update(sizes[i])
    return [results[i] for i in range(len(jobs))]


def _parse_all(jobs: list[tuple[str, str]], workers: int):
    """parse_source over `jobs`, in order, in a process pool when it is worth one."""
    if workers > 1 and len(jobs) > 1:
        ctx = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
        with ctx.Pool(workers) as pool:
            yield from pool.imap(parse_source, jobs, chunksize=1)
    else:
        yield from map(parse_source, jobs)


@dataclass
class CorpusStats:
    """What a build kept, skipped and checked; `as_dict` is the manifest's `stats`."""

    source_files: int
    source_errors: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> tunes left out
    splits: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    collections: dict[str, dict[str, int]] = field(default_factory=dict)  # collection -> split -> tunes
    n_tunes: int = 0
    n_notes: int = 0
    roundtrips: int = 0  # tunes whose tokens decode back to the same notes
    midi_mismatch: int = 0  # tunes that read back from their .mid file differently
    modes: Counter = field(default_factory=Counter)  # mode -> tunes
    key_sources: Counter = field(default_factory=Counter)  # where each tune's key came from -> tunes

    def count_tune(self, collection: str, split: str, n_notes: int, roundtrip_ok: bool) -> None:
        self.n_tunes += 1
        self.n_notes += n_notes
        self.roundtrips += roundtrip_ok
        self.splits[split] += 1
        self.collections.setdefault(collection, {s: 0 for s in SPLITS})[split] += 1

    def as_dict(self) -> dict:
        import music21

        return {
            "n_tunes": self.n_tunes,
            "n_notes": self.n_notes,
            "splits": dict(self.splits),
            "collections": {c: self.collections[c] for c in sorted(self.collections)},
            "skipped": dict(sorted(self.skipped.items())),
            "source_files": self.source_files,
            "source_errors": self.source_errors,
            "roundtrip_fraction": (self.roundtrips / self.n_tunes) if self.n_tunes else 0.0,
            "midi_mismatch": self.midi_mismatch,
            "modes": dict(sorted(self.modes.items())),
            "key_sources": dict(sorted(self.key_sources.items())),
            "music21_version": music21.__version__,
        }


def prepare_melody(
    out_dir: str | os.PathLike = "data/melody",
    workers: int = 2,
    limit: int | None = None,
    progress: bool = True,
    collections: tuple[str, ...] = COLLECTIONS,
) -> dict:
    """Build the melody corpus under out_dir/{train,valid,test}/ plus manifest.json; return stats.

    `limit` takes at most that many source files per collection (for quick tests). Parsed tunes
    are cached under out_dir/../cache/melody/. Every tune goes music21 -> Melody -> .mid ->
    read_midi; its tokens come from the read-back Melody.
    """
    out = Path(out_dir)
    t0 = time.time()
    jobs = corpus_files(tuple(collections), limit)
    if not jobs:
        raise DataError("No music21 corpus files found: is music21's corpus installed?")
    records = _load_records(jobs, out.parent / "cache" / "melody", max(1, int(workers)), progress)
    _empty_split_folders(out)

    tokenizer = MelodyTokenizer()
    stats = CorpusStats(source_files=len(jobs))
    manifest = []
    for (coll, path), res in zip(jobs, records, strict=True):
        stats.source_errors += bool(res.get("error"))
        for rec in res["tunes"]:
            row = _write_tune(rec, coll, path, out, tokenizer, stats)
            if row is not None:
                manifest.append(row)
    manifest.sort(key=lambda r: r["id"])
    summary = stats.as_dict()
    atomic_write(
        out / "manifest.json", json.dumps({"stats": summary, "tunes": manifest}, indent=1, sort_keys=True) + "\n"
    )
    summary["seconds"] = round(time.time() - t0, 1)
    summary["corpus_hash"] = tree_hash(out)
    return summary


def _empty_split_folders(out: Path) -> None:
    """Create out/{train,valid,test}/ and delete their .mid files: a rebuild keeps no older tune."""
    for s in SPLITS:
        d = out / s
        d.mkdir(parents=True, exist_ok=True)
        for f in d.glob("*.mid"):
            f.unlink()


def tune_key(signature: list | None, notes: list[Note]) -> tuple[tuple[int, str], str]:
    """A tune's (tonic, mode) and where it came from. The source's own key where it names tonic and
    mode (the ABC ``K:`` field, e.g. ``K:Ador``; church modes outside the folk four map to the nearest);
    where it gives only the key signature, the best-scoring key with that signature; else estimated."""
    tonic, mode, sharps = signature if signature else (None, None, None)
    if tonic is not None and mode is not None:
        try:
            return (int(tonic), nearest_folk_mode(str(mode))), "written"
        except NotationError:
            pass
    pitches = [n.pitch for n in notes]
    durations = [n.duration / TICKS_PER_QUARTER for n in notes]
    if sharps is not None:
        return estimate_key_in_signature(pitches, durations, int(sharps)), "estimated within the written key signature"
    return estimate_key(pitches, durations), "estimated"


def _write_tune(rec: dict, coll: str, source: str, out: Path, tokenizer, stats: CorpusStats) -> dict | None:
    """Write one tune record as out/SPLIT/ID.mid, read it back, count it; its manifest row or None."""
    if "skip" in rec:
        stats.skipped[rec["skip"]] += 1
        return None
    try:
        notes = [Note(*n) for n in rec["notes"]]
        key, source = tune_key(rec.get("signature"), notes)
        melody = Melody(notes=notes, meter=tuple(rec["meter"]), key=key, tempo=rec["tempo"])
    except MidiError:
        stats.skipped["invalid melody"] += 1
        return None
    split = tune_split(rec["id"])
    path = out / split / f"{rec['id']}.mid"
    write_midi(melody, path)
    try:
        back = read_midi(path)
    except MidiError:
        path.unlink()
        stats.skipped["unreadable midi"] += 1
        return None
    stats.midi_mismatch += (back.notes, back.meter, back.key) != (melody.notes, melody.meter, melody.key)
    try:
        roundtrip_ok = tokenizer.decode(tokenizer.encode(back)).notes == back.notes
    except MidiError:
        roundtrip_ok = False
    stats.count_tune(coll, split, len(back.notes), roundtrip_ok)
    stats.modes[back.key[1]] += 1
    stats.key_sources[source] += 1
    return {
        "id": rec["id"],
        "collection": coll,
        "split": split,
        "source": f"music21/corpus/{coll}/{Path(source).name}",
        "meter": f"{back.meter[0]}/{back.meter[1]}",
        "key": [back.key[0], back.key[1]],
        "tempo": back.tempo,
        "n_notes": len(back.notes),
        "n_bars": back.n_bars,
        "sha1": hashlib.sha1(path.read_bytes()).hexdigest(),
    }


# ----------------------------------------------------------------------------------------------
# data/README.md
# ----------------------------------------------------------------------------------------------

_LICENCE_LINES = [
    "Licences:",
    (
        "- music21's `corpus/license.txt`: \"To the best of our knowledge, the each piece of music in "
        "the corpus is either out of copyright in the United States or is licensed for use, though "
        "there may be restrictions on commercial use. The encodings may be under copyright but have "
        'been licensed for use, though there may be restrictions on commercial use."'
    ),
    (
        '- `corpus/essenFolksong/license.txt`: "The legal status of the Essen folksong database is '
        'unclear, as the data has been input by many people." Prof. Ewa Dahlig-Turek "has given '
        'permission for non-commercial distribution and use of these files in music21"; the ABC '
        "encodings are by Seymour Schlien, distributed with his permission. Treat the Essen "
        "material as non-commercial/research use."
    ),
    (
        "- The tunes themselves are traditional (Essen, Ryan 1883, O'Neill 1850, Aird 1778-1803) "
        "and J. S. Bach's chorales: public domain as compositions."
    ),
]


def write_data_readme_section(stats: dict) -> str:
    """Markdown section for data/README.md describing the melody corpus built with `stats`."""
    import music21

    ver = stats.get("music21_version", music21.__version__)
    lines = [
        "## Melody corpus (`data/melody/`)",
        "",
        (
            f"Source: the corpus bundled inside music21 {ver} (installed from PyPI, `pip install "
            f"music21=={ver}`), folder `music21/corpus/`. Collections: Essen folk songs "
            "(`essenFolksong`, ABC), Ryan's Mammoth Collection (`ryansMammoth`), O'Neill's Music of "
            "Ireland 1850 (`oneills1850`), Aird's Airs (`airdsAirs`), and the soprano line of the Bach "
            "chorales (`bach`, MusicXML)."
        ),
        "",
        *_LICENCE_LINES,
        "",
        (
            "Processing (`genmodels/learn/melody_corpus.py`): every tune of every opus file; first part (Bach: "
            "Soprano); ties merged, grace notes dropped, chords reduced to the top note, monophonic "
            "skyline; the pickup is written as a leading rest so bar lines fall at multiples of the bar; "
            f"tunes with fewer than {MIN_NOTES} notes, no meter, an unsupported meter, or a meter change "
            "are skipped. Each tune is written as a `.mid` file and read back with `read_midi`, the path "
            "a user's MIDI takes. Split by sha1 of the tune id (collection-file-index): ~90% train, "
            "5% valid, 5% test. `manifest.json` lists id, collection, split, meter, key, notes and sha1."
        ),
        "",
        f"Tunes: {stats.get('n_tunes', 0):,}; notes: {stats.get('n_notes', 0):,}.",
        "",
        *_readme_counts(stats),
        "",
        (
            f"Token round trip (encode -> decode reproduces every note): "
            f"{stats.get('roundtrip_fraction', 0.0):.4f} of tunes."
        ),
        "",
        (
            "Rebuild: `python -m genmodels prepare melody` (deterministic: same bytes on every run; "
            "parsed scores are cached under `data/cache/melody/`)."
        ),
        "",
    ]
    return "\n".join(lines)


def _readme_counts(stats: dict) -> list[str]:
    """The tunes-per-collection-and-split table, then the skipped tunes by reason."""
    lines = [
        "Tunes per mode: " + ", ".join(f"{m} {n:,}" for m, n in stats.get("modes", {}).items()) + ". "
        "A tune's key and mode are the source's own (the ABC `K:` field, e.g. `K:Ador`; phrygian, lydian "
        "and locrian map to the nearest of the four); where a source gives only a key signature the mode "
        "is estimated within it. Essen's `K:` fields name a tonic without a mode, which music21 reads as "
        "major, so nearly all Essen tunes are labelled major: a known limitation of the labels."
    ]
    lines += ["Where the key came from: " + ", ".join(f"{k} {n:,}" for k, n in stats.get("key_sources", {}).items())]
    lines += ["", "| collection | train | valid | test |", "|---|---:|---:|---:|"]
    for c, d in stats.get("collections", {}).items():
        lines.append(f"| {c} | {d.get('train', 0)} | {d.get('valid', 0)} | {d.get('test', 0)} |")
    sp = stats.get("splits", {})
    lines.append(f"| **all** | {sp.get('train', 0)} | {sp.get('valid', 0)} | {sp.get('test', 0)} |")
    skipped = stats.get("skipped", {})
    if skipped:
        lines += ["", "Skipped tunes: " + ", ".join(f"{k}: {v}" for k, v in skipped.items()) + "."]
    return lines
