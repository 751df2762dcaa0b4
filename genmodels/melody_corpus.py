"""The default melody corpus: folk tunes and Bach chorale melodies from music21's bundled corpus.

Each tune is reduced to a monophonic Melody, written as a real .mid file with melody_to_midi and
read back with read_midi (the same path a user's MIDI takes), then split by a hash of its stable
id. Parsing is cached per source file, so a second build is fast; output bytes are deterministic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from genmodels.data import melody_files, read_melodies
from genmodels.errors import DataError, MidiError
from genmodels.util import atomic_write, stable_bucket, tree_hash
from genmodels.melody import (
    PITCH_RANGE, SUPPORTED_METERS, TICKS_PER_QUARTER, Melody, MelodyTokenizer, Note,
    bar_ticks_for, read_midi, write_midi,
)

log = logging.getLogger(__name__)

COLLECTIONS = ("essenFolksong", "ryansMammoth", "oneills1850", "airdsAirs", "bach")
SPLITS = ("train", "valid", "test")
MIN_NOTES = 8
CACHE_FORMAT = 3
_MAJORISH = {"major", "ionian", "mixolydian", "lydian"}
_MINORISH = {"minor", "aeolian", "dorian", "phrygian", "locrian"}


def split_of(tune_id: str) -> str:
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
        paths = sorted(str(p) for p in corpus.getComposer(coll)
                       if str(p).endswith((".abc", ".mxl", ".xml", ".musicxml")))
        if limit is not None:
            paths = paths[:limit]
        out += [(coll, p) for p in paths]
    return out


# ----------------------------------------------------------------------------------------------
# music21 score -> melody record (runs in worker processes)
# ----------------------------------------------------------------------------------------------

def _tune_record(score: Any, coll: str) -> dict:
    """One music21 Score -> {'meter','key','tempo','notes'} or {'skip': reason}."""
    from music21 import key as m21key, meter as m21meter, tempo as m21tempo

    parts = list(score.parts) if hasattr(score, "parts") else []
    if not parts:
        return {"skip": "no parts"}
    part = parts[0]
    if coll == "bach":
        sop = [p for p in parts if "soprano" in f"{p.partName or ''} {p.id}".lower()]
        if not sop:
            return {"skip": "no soprano part"}
        part = sop[0]
    tss = list(part.recurse().getElementsByClass(m21meter.TimeSignature))
    if not tss:
        return {"skip": "no meter"}
    measures = list(part.getElementsByClass("Measure"))
    last_no = measures[-1].number if measures else 0
    # music21's ABC reader gives single short measures (section pickups) their own time
    # signature; only a signature that lasts two or more measures counts as a meter.
    spans = []
    for i, ts in enumerate(tss):
        nxt = tss[i + 1].measureNumber if i + 1 < len(tss) else last_no + 1
        cur = ts.measureNumber
        span = (nxt - cur) if (nxt is not None and cur is not None) else 2
        spans.append(((ts.numerator, ts.denominator), span))
    meters = {m for m, span in spans if span >= 2} or {spans[0][0]}
    if len(meters) > 1:
        return {"skip": "meter change"}
    mtr = meters.pop()
    if mtr not in SUPPORTED_METERS:
        return {"skip": "unsupported meter"}
    bar_ql = bar_ticks_for(mtr) / TICKS_PER_QUARTER

    # Pickup: shift so bar lines fall at multiples of the bar length.
    shift_ql = 0.0
    if len(measures) > 1:
        shift_ql = float(-measures[1].offset) % bar_ql
    elif measures and measures[0].paddingLeft:
        shift_ql = float(measures[0].paddingLeft) % bar_ql
    # Full-length bars must start on the grid (short section pickups/endings may not).
    full = [m for m in measures[1:] if abs(float(m.duration.quarterLength) - bar_ql) < 1e-6]
    if full:
        off_grid = sum(1 for m in full if round(((float(m.offset) + shift_ql) % bar_ql) * 48) % round(bar_ql * 48))
        if off_grid > 0.1 * len(full):
            return {"skip": "bar lines off the meter grid"}

    # Notes: ties merged, grace notes dropped, chords -> top note, skyline over voices.
    flat = part.stripTies().flatten()
    raw = []
    for el in flat.notes:
        if el.duration.isGrace or el.quarterLength <= 0:
            continue
        if el.isChord:
            if not el.pitches:
                continue
            p = max(x.midi for x in el.pitches)
        else:
            p = el.pitch.midi
        while p < PITCH_RANGE[0]:
            p += 12
        while p > PITCH_RANGE[1]:
            p -= 12
        s = round((float(el.offset) + shift_ql) * TICKS_PER_QUARTER)
        e = round((float(el.offset) + float(el.quarterLength) + shift_ql) * TICKS_PER_QUARTER)
        if e > s >= 0:
            raw.append((s, -p, e))
    raw.sort()
    onsets = []
    for s, negp, e in raw:
        if not onsets or onsets[-1][0] != s:
            onsets.append([s, -negp, e])
    notes = []
    for i, (s, p, e) in enumerate(onsets):
        if i + 1 < len(onsets):
            e = min(e, onsets[i + 1][0])
        if e > s:
            notes.append([p, s, e - s])
    if len(notes) < MIN_NOTES:
        return {"skip": "fewer than 8 notes"}

    # Key with mode.
    ks = next(iter(part.recurse().getElementsByClass(m21key.KeySignature)), None)
    mode = getattr(ks, "mode", None) if ks is not None else None
    if isinstance(ks, m21key.Key) and (mode in _MAJORISH or mode in _MINORISH):
        tonic, mode = ks.tonic.pitchClass, ("major" if mode in _MAJORISH else "minor")
    else:
        try:
            k = part.analyze("key")
            if ks is not None and k.sharps != ks.sharps:
                k = ks.asKey(k.mode if k.mode in ("major", "minor") else "major")
            tonic, mode = k.tonic.pitchClass, ("minor" if k.mode == "minor" else "major")
        except Exception:  # analysis can fail on odd scores: fall back to the signature's major
            tonic, mode = (ks.asKey("major").tonic.pitchClass if ks is not None else 0), "major"

    bpm = 120.0
    mm = next(iter(part.recurse().getElementsByClass(m21tempo.MetronomeMark)), None)
    if mm is None:
        mm = next(iter(score.recurse().getElementsByClass(m21tempo.MetronomeMark)), None)
    if mm is not None:
        try:
            q = mm.getQuarterBPM()
            if q and 20 <= q <= 400:
                bpm = round(float(q), 2)
        except Exception:
            pass
    return {"meter": list(mtr), "key": [tonic, mode], "signature": _written_key(ks), "tempo": bpm, "notes": notes}


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


class _Progress:
    """A one-line stderr progress report; the ETA is weighted by source-file size."""

    def __init__(self, weights: list[int], enabled: bool, label: str = "melody corpus") -> None:
        self.weights, self.enabled, self.label = weights, enabled, label
        self.total, self.t0, self.n, self.done_w, self.timed_w = len(weights), time.time(), 0, 0, 0

    def step(self, i: int, cached: bool = False) -> None:
        self.n += 1
        self.done_w += self.weights[i]
        if not cached:
            self.timed_w += self.weights[i]
        if not self.enabled:
            return
        el = time.time() - self.t0
        left_w = sum(self.weights) - self.done_w
        eta = el / self.timed_w * left_w if self.timed_w else 0.0
        sys.stderr.write(f"\r{self.label}: {self.n}/{self.total} files, "
                         f"{el:5.0f}s elapsed, ETA {eta:5.0f}s ")
        if self.n == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _load_records(jobs: list[tuple[str, str]], cache_dir: Path, workers: int, progress: bool) -> list[dict]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict] = {}
    todo = []
    for i, (coll, path) in enumerate(jobs):
        cp = _cache_path(cache_dir, coll, path)
        if cp.exists():
            try:
                results[i] = json.loads(cp.read_text())
                continue
            except (OSError, ValueError):
                pass
        todo.append(i)
    bar = _Progress([max(1, os.path.getsize(p)) for _, p in jobs], progress)
    for i in results:
        bar.step(i, cached=True)

    def store(i: int, res: dict) -> None:
        results[i] = res
        cp = _cache_path(cache_dir, *jobs[i])
        atomic_write(cp, json.dumps(res))
        bar.step(i)

    if todo:
        if workers > 1 and len(todo) > 1:
            ctx = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
            with ctx.Pool(workers) as pool:
                for i, res in zip(todo, pool.imap(parse_source, [jobs[i] for i in todo], chunksize=1)):
                    store(i, res)
        else:
            for i in todo:
                store(i, parse_source(jobs[i]))
    return [results[i] for i in range(len(jobs))]


def prepare_melody(out_dir: str | os.PathLike = "data/melody", workers: int = 2, limit: int | None = None,
                   progress: bool = True, collections: tuple[str, ...] = COLLECTIONS) -> dict:
    """Build the melody corpus under out_dir/{train,valid,test}/ plus manifest.json; return stats.

    `limit` takes at most that many source files per collection (for quick tests). Parsed tunes
    are cached under out_dir/../cache/melody/. Every tune goes music21 -> Melody -> .mid ->
    read_midi; its tokens come from the read-back Melody.
    """
    out = Path(out_dir)
    cache_dir = out.parent / "cache" / "melody"
    t0 = time.time()
    jobs = corpus_files(tuple(collections), limit)
    if not jobs:
        raise DataError("No music21 corpus files found: is music21's corpus installed?")
    records = _load_records(jobs, cache_dir, max(1, int(workers)), progress)

    for s in SPLITS:
        d = out / s
        d.mkdir(parents=True, exist_ok=True)
        for f in d.glob("*.mid"):  # a rebuild must not keep tunes from an older build
            f.unlink()
    tok = MelodyTokenizer()
    manifest = []
    skipped: dict[str, int] = {}
    per_split = {s: 0 for s in SPLITS}
    per_coll: dict[str, dict[str, int]] = {}
    notes_total = 0
    rt_ok = 0
    midi_mismatch = 0
    source_errors = 0
    for (coll, path), res in zip(jobs, records):
        if res.get("error"):
            source_errors += 1
        for rec in res["tunes"]:
            if "skip" in rec:
                skipped[rec["skip"]] = skipped.get(rec["skip"], 0) + 1
                continue
            try:
                mel = Melody(notes=[Note(*n) for n in rec["notes"]], meter=tuple(rec["meter"]),
                             key=tuple(rec["key"]), tempo=rec["tempo"])
            except MidiError:
                skipped["invalid melody"] = skipped.get("invalid melody", 0) + 1
                continue
            split = split_of(rec["id"])
            fpath = out / split / f"{rec['id']}.mid"
            write_midi(mel, fpath)
            try:
                back = read_midi(fpath)
            except MidiError:
                fpath.unlink()
                skipped["unreadable midi"] = skipped.get("unreadable midi", 0) + 1
                continue
            if (back.notes, back.meter, back.key) != (mel.notes, mel.meter, mel.key):
                midi_mismatch += 1
            try:
                ok = tok.decode(tok.encode(back)).notes == back.notes
            except MidiError:
                ok = False
            rt_ok += ok
            n = len(back.notes)
            notes_total += n
            per_split[split] += 1
            c = per_coll.setdefault(coll, {s: 0 for s in SPLITS})
            c[split] += 1
            manifest.append({
                "id": rec["id"], "collection": coll, "split": split,
                "source": f"music21/corpus/{coll}/{Path(path).name}",
                "meter": f"{back.meter[0]}/{back.meter[1]}", "key": [back.key[0], back.key[1]],
                "tempo": back.tempo, "n_notes": n, "n_bars": back.n_bars,
                "sha1": hashlib.sha1(fpath.read_bytes()).hexdigest(),
            })
    manifest.sort(key=lambda r: r["id"])
    n_tunes = len(manifest)
    import music21

    stats = {
        "n_tunes": n_tunes,
        "n_notes": notes_total,
        "splits": per_split,
        "collections": {c: per_coll[c] for c in sorted(per_coll)},
        "skipped": dict(sorted(skipped.items())),
        "source_files": len(jobs),
        "source_errors": source_errors,
        "roundtrip_fraction": (rt_ok / n_tunes) if n_tunes else 0.0,
        "midi_mismatch": midi_mismatch,
        "music21_version": music21.__version__,
    }
    (out / "manifest.json").write_text(json.dumps({"stats": stats, "tunes": manifest}, indent=1,
                                                  sort_keys=True) + "\n")
    stats["seconds"] = round(time.time() - t0, 1)
    stats["corpus_hash"] = tree_hash(out)
    return stats


def load_melodies(folder: str | os.PathLike, return_skipped: bool = False) -> Any:
    """Every .mid/.midi under `folder` (recursive, sorted) read with read_midi.

    Files that raise MidiError are skipped and counted (logged; returned too with
    return_skipped=True as (melodies, n_skipped)). DataError if the folder is missing, holds no
    MIDI files, or none of them is usable.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"Melody folder {str(root)!r} does not exist or is not a folder")
    files = melody_files(root)
    if not files:
        raise DataError(f"No .mid or .midi files found under {str(root)!r}")
    melodies = [m for _, m in read_melodies(files, Path("data/cache"))]
    skipped = len(files) - len(melodies)
    if skipped:
        log.warning("skipped %d of %d MIDI files under %s (not readable as a melody)", skipped, len(files), root)
    if not melodies:
        raise DataError(f"None of the {len(files)} MIDI files under {str(root)!r} holds a usable melody")
    return (melodies, skipped) if return_skipped else melodies


def write_data_readme_section(stats: dict) -> str:
    """Markdown section for data/README.md describing the melody corpus built with `stats`."""
    import music21

    ver = stats.get("music21_version", music21.__version__)
    lines = [
        "## Melody corpus (`data/melody/`)",
        "",
        f"Source: the corpus bundled inside music21 {ver} (installed from PyPI, `pip install "
        f"music21=={ver}`), folder `music21/corpus/`. Collections: Essen folk songs "
        "(`essenFolksong`, ABC), Ryan's Mammoth Collection (`ryansMammoth`), O'Neill's Music of "
        "Ireland 1850 (`oneills1850`), Aird's Airs (`airdsAirs`), and the soprano line of the Bach "
        "chorales (`bach`, MusicXML).",
        "",
        "Licences:",
        "- music21's `corpus/license.txt`: \"To the best of our knowledge, the each piece of music in "
        "the corpus is either out of copyright in the United States or is licensed for use, though "
        "there may be restrictions on commercial use. The encodings may be under copyright but have "
        "been licensed for use, though there may be restrictions on commercial use.\"",
        "- `corpus/essenFolksong/license.txt`: \"The legal status of the Essen folksong database is "
        "unclear, as the data has been input by many people.\" Prof. Ewa Dahlig-Turek \"has given "
        "permission for non-commercial distribution and use of these files in music21\"; the ABC "
        "encodings are by Seymour Schlien, distributed with his permission. Treat the Essen "
        "material as non-commercial/research use.",
        "- The tunes themselves are traditional (Essen, Ryan 1883, O'Neill 1850, Aird 1778-1803) "
        "and J. S. Bach's chorales: public domain as compositions.",
        "",
        "Processing (`genmodels/melody_corpus.py`): every tune of every opus file; first part (Bach: "
        "Soprano); ties merged, grace notes dropped, chords reduced to the top note, monophonic "
        "skyline; the pickup is written as a leading rest so bar lines fall at multiples of the bar; "
        f"tunes with fewer than {MIN_NOTES} notes, no meter, an unsupported meter, or a meter change "
        "are skipped. Each tune is written as a `.mid` file and read back with `read_midi`, the path "
        "a user's MIDI takes. Split by sha1 of the tune id (collection-file-index): ~90% train, "
        "5% valid, 5% test. `manifest.json` lists id, collection, split, meter, key, notes and sha1.",
        "",
        f"Tunes: {stats.get('n_tunes', 0):,}; notes: {stats.get('n_notes', 0):,}.",
        "",
        "| collection | train | valid | test |",
        "|---|---:|---:|---:|",
    ]
    for c, d in stats.get("collections", {}).items():
        lines.append(f"| {c} | {d.get('train', 0)} | {d.get('valid', 0)} | {d.get('test', 0)} |")
    sp = stats.get("splits", {})
    lines.append(f"| **all** | {sp.get('train', 0)} | {sp.get('valid', 0)} | {sp.get('test', 0)} |")
    skipped = stats.get("skipped", {})
    if skipped:
        lines += ["", "Skipped tunes: " + ", ".join(f"{k}: {v}" for k, v in skipped.items()) + "."]
    lines += [
        "",
        f"Token round trip (encode -> decode reproduces every note): "
        f"{stats.get('roundtrip_fraction', 0.0):.4f} of tunes.",
        "",
        "Rebuild: `python -m genmodels prepare melody` (deterministic: same bytes on every run; "
        "parsed scores are cached under `data/cache/melody/`).",
        "",
    ]
    return "\n".join(lines)
