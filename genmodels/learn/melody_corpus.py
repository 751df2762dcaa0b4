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
from genmodels.music.form import grid_bars, repeat_problem, written_bars
from genmodels.music.midi import read_midi, skyline, write_midi
from genmodels.music.scales import estimate_key, estimate_key_in_signature, nearest_folk_mode
from genmodels.music.tunebook import write_tunebook
from genmodels.music.types import SUPPORTED_METERS, TICKS_PER_QUARTER, Melody, Note, Repeat, bar_ticks_for
from genmodels.tokenizers.melody import MelodyTokenizer

COLLECTIONS = ("essenFolksong", "ryansMammoth", "oneills1850", "airdsAirs", "bach")
SPLITS = ("train", "valid", "test")
MIN_NOTES = 8
# Essen's permission covers distribution inside music21 only: its tunes train the models but are not
# copied into the tune book that ships in git.
TUNEBOOK_LEAVES_OUT = ("essenFolksong",)
# Each collection's kind of tune (the tokenizer's style tokens): the ABC books' fiddle and pipe tunes repeat their
# parts, Essen's songs are sung through, Bach's chorales repeat their first phrases.
COLLECTION_STYLES = {
    "essenFolksong": "folksong",
    "ryansMammoth": "tunebook",
    "oneills1850": "tunebook",
    "airdsAirs": "tunebook",
    "bach": "chorale",
}
CACHE_FORMAT = 5  # bump when a tune record changes, so cached parses are redone (4: with repeats; 5: titles)


def collection_style(name: str) -> str | None:
    """The style of a corpus tune from its file name (it starts with the collection), None for other files."""
    return COLLECTION_STYLES.get(str(name).split("-", 1)[0])


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
        if _has_repeats(part, measures):
            notes, passes = _played_notes(part, shift_ql, bar_ql)
        else:
            notes, passes = _part_notes(part, shift_ql), []
    except _SkipTune as e:
        return {"skip": str(e)}
    form, dropped = _repeats(notes, meter, passes)
    signature = _key_signature(part)
    return {
        "meter": list(meter),
        "key": list(_part_key(part, signature)),
        "signature": _written_key(signature),
        "tempo": _part_tempo(part, score),
        "notes": [[n.pitch, n.start, n.duration] for n in notes],
        "form": [[r.start, r.body, r.ending1, r.ending2] for r in form],
        "form_dropped": dropped,
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


# ----------------------------------------------------------------------------------------------
# Repeats: the tune played out, and the form that writes it
# ----------------------------------------------------------------------------------------------
# music21's expandRepeats is not used: where a part ends in :| without a |: before it, it goes back to
# the start of the tune, while abc2midi (and players) go back to the previous section's end.


def _has_repeats(part: Any, measures: list) -> bool:
    from music21 import bar, spanner

    if any(isinstance(b, bar.Repeat) for m in measures for b in (m.leftBarline, m.rightBarline)):
        return True
    return any(True for _ in part.recurse().getElementsByClass(spanner.RepeatBracket))


def _is_repeat(barline: Any, direction: str) -> bool:
    from music21 import bar

    return isinstance(barline, bar.Repeat) and barline.direction == direction


def _bracket_numbers(part: Any, measures: list) -> dict[int, set[int]]:
    """Measure index -> the ending numbers of the volta bracket (RepeatBracket) it lies under."""
    from music21 import spanner

    ids = {id(m): i for i, m in enumerate(measures)}
    out: dict[int, set[int]] = {}
    for rb in part.recurse().getElementsByClass(spanner.RepeatBracket):
        nums = set(rb.getNumberList()) if hasattr(rb, "getNumberList") else {int(rb.number)}
        for m in rb.getSpannedElements():
            if id(m) in ids:
                out.setdefault(ids[id(m)], set()).update(nums)
    return out


def _play_sections(measures: list, brackets: dict[int, set[int]], bar_ql: float) -> list[tuple]:
    """The measures in play order, as sections ('once', indices) or ('twice', pass 1, pass 2). A :|
    goes back to the last |: or, without one, to the end of the previous section; the measures of
    bracket 1 are played in the first pass, those of bracket 2 (after the :|) in the second; a pickup
    written before |: is played again where the first pass ends short of a bar by its length."""
    dur = [float(m.duration.quarterLength) for m in measures]
    sections: list[tuple] = []
    once: list[int] = []
    start = i = 0
    while i < len(measures):
        m = measures[i]
        if _is_repeat(m.leftBarline, "start") and i not in brackets:
            if once:
                sections.append(("once", once))
            once, start = [], i
        if _is_repeat(m.rightBarline, "end") and i >= start:
            span = list(range(start, i + 1))
            if once and once[0] < start:
                sections.append(("once", [k for k in once if k < start]))
            once = []
            j, second = i + 1, []
            while j < len(measures) and 2 in brackets.get(j, set()) and 1 not in brackets.get(j, set()):
                second.append(j)
                j += 1
            pass1 = [k for k in span if 2 not in brackets.get(k, set()) or 1 in brackets.get(k, set())]
            body = [k for k in span if k not in brackets]
            pass2 = (
                body + second
                if second
                else [k for k in span if 2 in brackets.get(k, set()) or 1 not in brackets.get(k, set())]
            )
            last = pass1[-1]
            if (
                start > 0
                and dur[start - 1] < bar_ql - 1e-6
                and abs(dur[last] + dur[start - 1] - bar_ql) < 1e-6
                and dur[start] > bar_ql - 1e-6
            ):
                pass2 = [start - 1] + pass2
            sections.append(("twice", pass1, pass2))
            i = start = j
            continue
        once.append(i)
        i += 1
    if once:
        sections.append(("once", once))
    return sections


def _measure_events(m: Any) -> list[tuple[int, float, float]]:
    """(pitch, offset in the measure, quarter length) of a measure's notes (ties already merged)."""
    out = []
    for el in m.recurse().notes:
        if el.duration.isGrace or el.quarterLength <= 0 or (el.isChord and not el.pitches):
            continue
        pitch = max(x.midi for x in el.pitches) if el.isChord else el.pitch.midi
        out.append((pitch, float(el.getOffsetInHierarchy(m)), float(el.quarterLength)))
    return out


def _played_notes(part: Any, shift_ql: float, bar_ql: float) -> tuple[list[Note], list[tuple[int, int, int]]]:
    """The tune played out with its repeats, and each repeated section's (start, second pass, end) in ticks."""
    part = part.stripTies()
    measures = list(part.getElementsByClass("Measure"))
    sections = _play_sections(measures, _bracket_numbers(part, measures), bar_ql)
    events, passes = [], []
    t = shift_ql

    def tick(q: float) -> int:
        return round(q * TICKS_PER_QUARTER)

    def play(indices: list[int]) -> None:
        nonlocal t
        for k in indices:
            for pitch, off, ql in _measure_events(measures[k]):
                events.append((pitch, tick(t + off), tick(t + off + ql)))
            t += float(measures[k].duration.quarterLength)

    for sec in sections:
        if sec[0] == "once":
            play(sec[1])
        else:
            s = tick(t)
            play(sec[1])
            mid = tick(t)
            play(sec[2])
            passes.append((s, mid, tick(t)))
    notes = skyline(events)
    if len(notes) < MIN_NOTES:
        raise _SkipTune(f"fewer than {MIN_NOTES} notes")
    return notes, passes


def _repeats(notes: list[Note], meter: tuple[int, int], passes: list[tuple[int, int, int]]) -> tuple[list, list[str]]:
    """The Repeats that write the played-out tune, and why the other repeated sections are written out.

    On the bar grid a section's pass holds the bars that start inside it; the body is what the two
    passes share from their first bar on, the rest of each pass is its ending (so a tune whose passes
    differ only in the pickup into the next one gets one-bar endings, as |: ... [1 ... :|[2 ... writes)."""
    if not passes:
        return [], []
    melody = Melody(notes=notes, meter=meter)
    bars = grid_bars(melody)
    bt = melody.bar_ticks
    form: list[Repeat] = []
    dropped: list[str] = []
    pos = 0
    for s, mid, e in passes:
        a, m, b = (min(len(bars), max(pos, -(-x // bt))) for x in (s, mid, e))
        p1, p2 = bars[a:m], bars[m:b]
        k = 0
        while k < min(len(p1), len(p2)) and p1[k] == p2[k]:
            k += 1
        if k and (k == len(p1)) != (k == len(p2)):  # one pass longer: the last shared bar joins both endings
            k -= 1
        if not k:
            dropped.append("passes differ on the bar grid")
            continue
        r = Repeat(a, k, len(p1) - k, len(p2) - k)
        problem = repeat_problem(bars, r)
        if problem:
            dropped.append("note tied into the repeat" if "tied" in problem else "passes differ on the bar grid")
            continue
        form.append(r)
        pos = r.end
    return form, dropped


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


def _title(score: Any) -> str:
    """The source's title (ABC ``T:``, MusicXML work or movement title), one line, or ''."""
    try:
        md = score.metadata
        title = (md.title or md.movementName or "") if md is not None else ""
    except Exception:  # metadata of a broken source must not lose the tune
        return ""
    title = re.sub(r"\.(mxl|xml|musicxml|krn)$", "", " ".join(str(title).split()))  # Bach: the file name
    return re.sub(r"^bwv(?=\d)", "BWV ", title)[:120]


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
        rec["title"] = _title(sc)
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
    form: Counter = field(default_factory=Counter)  # repeats and endings kept, bars played and written
    form_dropped: Counter = field(default_factory=Counter)  # repeated sections written out, by reason

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
            "form": dict(sorted(self.form.items())),
            "form_dropped": dict(sorted(self.form_dropped.items())),
            "music21_version": music21.__version__,
        }


def prepare_melody(
    out_dir: str | os.PathLike = "data/melody",
    workers: int = 2,
    limit: int | None = None,
    progress: bool = True,
    collections: tuple[str, ...] = COLLECTIONS,
    tunebook: str | os.PathLike | None = None,
) -> dict:
    """Build the melody corpus under out_dir/{train,valid,test}/ plus manifest.json; return stats.
    `tunebook`: also write every kept tune, with its title, as one tune book file there (the picker's).

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
    summary["corpus_hash"] = tree_hash(out)
    if tunebook is not None:
        shipped = [r for r in manifest if r["collection"] not in TUNEBOOK_LEAVES_OUT]
        files = {r["id"]: (out / r["split"] / f"{r['id']}.mid").read_bytes() for r in shipped}
        write_tunebook(tunebook, shipped, files)
    summary["seconds"] = round(time.time() - t0, 1)
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
        key, key_source = tune_key(rec.get("signature"), notes)
        form = tuple(Repeat(*r) for r in rec.get("form", ()))
        melody = Melody(notes=notes, meter=tuple(rec["meter"]), key=key, tempo=rec["tempo"], form=form)
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
    stats.midi_mismatch += (back.notes, back.meter, back.key, back.form) != (
        melody.notes,
        melody.meter,
        melody.key,
        melody.form,
    )
    try:
        roundtrip_ok = tokenizer.decode(tokenizer.encode(back)).notes == back.notes
    except MidiError:
        roundtrip_ok = False
    _count_form(stats, coll, back, rec.get("form_dropped", []))
    stats.count_tune(coll, split, len(back.notes), roundtrip_ok)
    stats.modes[back.key[1]] += 1
    stats.key_sources[key_source] += 1
    return {
        "id": rec["id"],
        "title": rec.get("title", ""),
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


def _count_form(stats: CorpusStats, coll: str, melody: Melody, dropped: list[str]) -> None:
    f = stats.form
    f[f"{coll} tunes"] += 1
    f[f"{coll} tunes with repeats"] += bool(melody.form)
    f[f"{coll} tunes with endings"] += any(r.ending1 for r in melody.form)
    f["repeats"] += len(melody.form)
    f["repeats with endings"] += sum(1 for r in melody.form if r.ending1)
    f["bars played"] += melody.n_bars
    f["bars written"] += written_bars(melody)
    for reason in dropped:
        stats.form_dropped[reason] += 1


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
            "repeats are played out (a `:|` goes back to the last `|:`, or without one to the end of the "
            "previous section, as abc2midi plays it; first and second endings in their passes) and kept as "
            "the tune's form (see below); "
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
        *_readme_form(stats),
        "",
        (
            f"Token round trip (encode -> decode reproduces every note): "
            f"{stats.get('roundtrip_fraction', 0.0):.4f} of tunes."
        ),
        "",
        (
            "Tune book (ships in git, `data/tunes/tunebook.zip`, `genmodels/music/tunebook.py`): every tune "
            "above but Essen's (its permission covers distribution inside music21 only) as its `.mid` file, "
            "with the source's title (ABC `T:`, the chorale's BWV number), "
            "collection, meter, key and split, in one deflated zip; the Melody page's corpus tunes, "
            "searched by title, collection, meter and key. Same licences as the corpus."
        ),
        "",
        (
            "Rebuild: `python -m genmodels prepare melody` (deterministic: same bytes on every run; "
            "parsed scores are cached under `data/cache/melody/`; it writes the tune book too)."
        ),
        "",
    ]
    return "\n".join(lines)


def _readme_form(stats: dict) -> list[str]:
    """The repeats kept as the tunes' form, per collection."""
    f = stats.get("form", {})
    if not f:
        return []
    colls = sorted({k.rsplit(" tunes", 1)[0] for k in f if k.endswith(" tunes")})
    lines = [
        (
            "Form: each tune's `.mid` file plays it out and lists its repeats in a text event "
            "(`form: start body ending1 ending2`, in bars); the tokenizer writes a repeated body once, ending "
            "in `:|` (with `[1` `[2` endings), and opening with `|:` unless it starts at the first bar, which "
            "opens implicitly as in ABC. On the bar grid a section's two passes share their body "
            "bars from the first on; the rest of each pass is its ending, so a tune whose passes differ only "
            "in the pickup into the next section has one-bar endings."
        ),
        "",
        "| collection | tunes | with repeats | with endings |",
        "|---|---:|---:|---:|",
    ]
    for c in colls:
        lines.append(
            f"| {c} | {f.get(f'{c} tunes', 0)} | {f.get(f'{c} tunes with repeats', 0)} | "
            f"{f.get(f'{c} tunes with endings', 0)} |"
        )
    played, written = f.get("bars played", 0), f.get("bars written", 0)
    lines += [
        "",
        f"Repeats: {f.get('repeats', 0):,}, of which {f.get('repeats with endings', 0):,} with first and second "
        f"endings; bars played {played:,}, written {written:,}.",
    ]
    dropped = stats.get("form_dropped", {})
    if dropped:
        lines.append(
            "Repeated sections written out (played as heard, without signs): "
            + ", ".join(f"{k}: {v}" for k, v in dropped.items())
            + "."
        )
    return lines


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
