"""How often the key estimators agree with the key a folk tune's ABC `K:` field names.

Takes a fixed, seeded sample of tunes from music21's bundled ABC collections (tunes whose `K:`
field names a tonic; the file header is kept, each tune is parsed on its own), reads each tune's
notes with music21 and compares, against the written key:
  old  the earlier estimator (music21's Krumhansl analysis, major/minor only; kept in this script)
  new  genmodels.music.scales.estimate_key (mode profiles + final-note preference; folk modes)
Columns: tonic+mode exact; tonic only; tonic and "major/minor" (dorian, phrygian and locrian counted
as minor, mixolydian and lydian as major, as the old estimator's labels are); signature (the
estimate has the written key's key signature: the same notes, perhaps a relative mode).
Essen (`essenFolksong`) writes the key signature as a major key in `K:` (accidentals are explicit,
tunes are often excerpts or pentatonic and end elsewhere), so only its signature column means
anything; it is left out of the total.

Usage: OMP_NUM_THREADS=1 python scripts/key_accuracy.py [--per-collection 150] [--seed 0]
Parsed notes are cached in data/cache/key_accuracy/ so a second run is fast.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genmodels.core.errors import NotationError  # noqa: E402
from genmodels.music import scales  # noqa: E402

COLLECTIONS = ("ryansMammoth", "oneills1850", "airdsAirs", "essenFolksong")
TONIC_ONLY = {"essenFolksong"}
_MINORISH = {"minor", "dorian", "phrygian", "locrian"}


def old_estimate_key(pitches, durations=None):
    """The earlier estimator, kept here for comparison: music21's Krumhansl-style key analysis
    (major/minor only), preferring a close candidate whose tonic is the final note or is played."""
    if not pitches:
        return (0, "major")
    from music21 import note as m21note
    from music21 import stream

    s = stream.Stream()
    for i, p in enumerate(pitches):
        n = m21note.Note(int(p))
        n.quarterLength = float(durations[i]) if durations else 1.0
        s.append(n)
    try:
        k = s.analyze("key")
    except Exception:  # music21 analysis failure on odd input: fall back to C major
        return (0, "major")
    used = {int(p) % 12 for p in pitches}
    candidates = [k] + [
        a
        for a in getattr(k, "alternateInterpretations", [])
        if a.mode in ("major", "minor") and k.correlationCoefficient - a.correlationCoefficient < 0.15
    ]
    for want in ({int(pitches[-1]) % 12}, used):
        better = [c for c in candidates if c.tonic.pitchClass in want]
        if better:
            k = better[0]
            break
    return (k.tonic.pitchClass, k.mode if k.mode in ("major", "minor") else "major")


def abc_tunes(collection: str) -> list[dict]:
    """Every tune of a collection with a `K:` field that names a tonic: id, text, written key."""
    from music21 import corpus

    out = []
    for path in sorted(str(p) for p in corpus.getComposer(collection) if str(p).endswith(".abc")):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        parts = re.split(r"(?m)^(?=X:)", text)
        header = "" if parts[0].startswith("X:") else parts.pop(0)
        header = "\n".join(ln for ln in header.splitlines() if re.match(r"^[A-Za-z]:", ln))
        for i, tune in enumerate(parts):
            k = re.search(r"(?m)^K:(.*)$", tune)
            if not k:
                continue
            try:
                key = scales.parse_abc_key(k.group(1))
            except NotationError:
                continue
            out.append(
                {
                    "id": f"{collection}/{Path(path).name}#{i}",
                    "text": header + "\n" + tune,
                    "key": list(key),
                    "collection": collection,
                }
            )
    return out


def tune_notes(text: str) -> tuple[list[int], list[float]]:
    """Pitches and quarter-length durations of a tune's first part (ties merged, chords' top note)."""
    from music21 import converter

    score = converter.parse(text, format="abc")
    part = score.parts[0] if getattr(score, "parts", None) else score
    pitches, durs = [], []
    for el in part.stripTies().flatten().notes:
        if el.duration.isGrace or el.quarterLength <= 0:
            continue
        pitches.append(max(p.midi for p in el.pitches))
        durs.append(float(el.quarterLength))
    return pitches, durs


def load_sample(per_collection: int, seed: int, collections: tuple[str, ...]) -> list[dict]:
    cache = ROOT / "data/cache/key_accuracy"
    cache.mkdir(parents=True, exist_ok=True)
    sample = []
    for coll in collections:
        tunes = abc_tunes(coll)
        rng = random.Random(f"{seed}-{coll}")
        picked = rng.sample(tunes, min(per_collection, len(tunes)))
        t0 = time.time()
        for j, t in enumerate(picked):
            cp = cache / (hashlib.sha1(t["text"].encode()).hexdigest()[:20] + ".json")
            if cp.exists():
                t["pitches"], t["durations"] = json.loads(cp.read_text())
            else:
                try:
                    t["pitches"], t["durations"] = tune_notes(t["text"])
                except Exception as e:  # a tune music21 cannot parse is reported, not fatal
                    t["pitches"], t["durations"] = [], []
                    print(f"  skip {t['id']}: {type(e).__name__}", file=sys.stderr)
                cp.write_text(json.dumps([t["pitches"], t["durations"]]))
            if (j + 1) % 50 == 0:
                print(f"{coll}: {j + 1}/{len(picked)} tunes, {time.time() - t0:.0f}s", file=sys.stderr)
        sample += [t for t in picked if len(t["pitches"]) >= 8]
    return sample


def _agree(est: tuple[int, str], truth: tuple[int, str]) -> tuple[bool, bool, bool, bool]:
    (et, em), (tt, tm) = est, truth
    major_minor = ("minor" if em in _MINORISH else "major") == ("minor" if tm in _MINORISH else "major")
    same_notes = scales.key_signature(et, em) == scales.key_signature(tt, tm)
    return et == tt and em == tm, et == tt, et == tt and major_minor, same_notes


def evaluate(sample: list[dict]) -> dict:
    """{collection: {estimator: [exact, tonic, major/minor, signature, n]}} plus 'total' (Essen left out)."""
    estimators = {"old": old_estimate_key, "new": scales.estimate_key}
    res: dict = {}
    for t in sample:
        truth = tuple(t["key"])
        for name, fn in estimators.items():
            ok = _agree(fn(t["pitches"], t["durations"]), truth)
            for group in (t["collection"],) + (() if t["collection"] in TONIC_ONLY else ("total",)):
                row = res.setdefault(group, {}).setdefault(name, [0, 0, 0, 0, 0])
                for i, v in enumerate(ok):
                    row[i] += v
                row[4] += 1
    return res


def print_table(res: dict) -> None:
    print(
        "| tunes | n | old exact | new exact | old tonic | new tonic | old maj/min | new maj/min "
        "| old signature | new signature |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for group in sorted(res, key=lambda g: (g == "total", g in TONIC_ONLY, g)):
        o, n = res[group]["old"], res[group]["new"]
        cells = [f"{o[i] / o[4]:.3f} | {n[i] / n[4]:.3f}" for i in range(4)]
        note = " (signature only)" if group in TONIC_ONLY else ""
        print(f"| {group}{note} | {o[4]} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-collection", type=int, default=150, help="tunes sampled from each collection")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (0 = the reported sample)")
    ap.add_argument("--collections", default=",".join(COLLECTIONS), help="comma-separated music21 collections")
    ap.add_argument("--json", help="also write the per-tune results here")
    args = ap.parse_args()
    sample = load_sample(args.per_collection, args.seed, tuple(args.collections.split(",")))
    modes = {}
    for t in sample:
        if t["collection"] not in TONIC_ONLY:
            modes[t["key"][1]] = modes.get(t["key"][1], 0) + 1
    print(f"{len(sample)} tunes; written modes (without Essen): {dict(sorted(modes.items()))}")
    print_table(evaluate(sample))
    if args.json:
        rows = [
            {
                "id": t["id"],
                "written": t["key"],
                "old": old_estimate_key(t["pitches"], t["durations"]),
                "new": scales.estimate_key(t["pitches"], t["durations"]),
            }
            for t in sample
        ]
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
