"""How often ``read_midi`` gives a folk tune's written key back from a MIDI file that carries only a key
signature event.

The tunes: the held-out split (``tune_split`` = "test", as the melody corpus splits them) of music21's
bundled ABC collections whose ``K:`` field names tonic and mode (ryansMammoth, oneills1850, airdsAirs),
parsed as the corpus builder parses them (cached per tune in data/cache/midi_key_accuracy/).
Each tune is written to MIDI with its notes, meter and tempo and one key signature event, and no
``key:`` text event (files from other programs have none), then read back with ``read_midi``.

Two ways of writing the key signature event:
  relative-major  the major key with the tune's signature (how many programs write every tune: the flag
                  says major, the signature is right)
  written-mode    the tune's own major/minor flag (dorian and mixolydian as their relative major, which
                  is all MIDI can say)
Two readers:
  flag trusted    the key number's tonic and major/minor flag, as read_midi did before
  read_midi       the library's reader now
Column: exact = tonic and folk mode as written (church modes outside the folk four mapped as the
corpus maps them). Under a right signature a wrong mode is also a wrong tonic (E minor read as G
major), so there is no separate tonic column.

Usage: OMP_NUM_THREADS=1 python scripts/midi_key_accuracy.py [--splits test]
The first run parses the held-out tunes with music21 (a few minutes on one core).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pretty_midi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genmodels.core.errors import MidiError, NotationError  # noqa: E402
from genmodels.learn.melody_corpus import _safe, _tune_record, corpus_files, tune_split  # noqa: E402
from genmodels.music import Melody, Note, read_midi  # noqa: E402
from genmodels.music.midi import melody_to_midi  # noqa: E402
from genmodels.music.scales import key_signature, nearest_folk_mode  # noqa: E402

COLLECTIONS = ("ryansMammoth", "oneills1850", "airdsAirs")


def tune_records(splits: tuple[str, ...]) -> list[tuple[str, dict]]:
    """(collection, corpus record) for every tune of ``splits``. A file is cut at its ``X:`` lines and only
    the held-out tunes are parsed (the i-th tune of a file is the corpus's ``COLL-FILE-i``)."""
    from music21 import converter

    cache = ROOT / "data/cache/midi_key_accuracy"
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for coll, path in corpus_files(COLLECTIONS):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        parts = re.split(r"(?m)^(?=X:)", text)
        header = "" if parts[0].startswith("X:") else parts.pop(0)
        stem = _safe(Path(path).name.rsplit(".", 1)[0])
        for i, tune in enumerate(parts):
            tune_id = f"{coll}-{stem}-{i:04d}"
            if tune_split(tune_id) not in splits:
                continue
            cp = cache / (hashlib.sha1((header + tune).encode()).hexdigest()[:20] + ".json")
            if cp.exists():
                rec = json.loads(cp.read_text())
            else:
                try:
                    rec = _tune_record(converter.parse(header + "\n" + tune, format="abc"), coll)
                except Exception as e:  # a tune music21 cannot parse is left out, as the corpus leaves it out
                    rec = {"skip": f"error {type(e).__name__}"}
                cp.write_text(json.dumps(rec))
            out.append((coll, rec))
    return out


def held_out_tunes(splits: tuple[str, ...]) -> list[tuple[str, Melody]]:
    """(collection, melody in its written key) for every tune of ``splits`` whose K: names tonic and mode."""
    out = []
    for coll, rec in tune_records(splits):
        sig = rec.get("signature")
        if "skip" in rec or not sig or sig[0] is None or sig[1] is None:
            continue
        try:
            key = (int(sig[0]), nearest_folk_mode(str(sig[1])))
            notes = [Note(*n) for n in rec["notes"]]
            out.append((coll, Melody(notes, tuple(rec["meter"]), key, rec["tempo"])))
        except (MidiError, NotationError):
            continue
    return out


def midi_with_signature(melody: Melody, flag: str) -> bytes:
    """The melody as MIDI bytes with one key signature event (``flag``: relative-major or written-mode)
    and no key text event."""
    pm = melody_to_midi(melody)
    pm.text_events = [t for t in pm.text_events if not t.text.startswith("key:")]
    tonic, mode = melody.key
    sharps = key_signature(tonic, mode)
    if flag == "written-mode" and mode == "minor":
        number = 12 + tonic
    else:
        number = 7 * sharps % 12  # the major key with these sharps
    pm.key_signature_changes = [pretty_midi.KeySignature(number, 0.0)]
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def flag_trusted(data: bytes) -> tuple[int, str]:
    """The earlier reading: the key number's tonic, major or minor as its flag says."""
    kn = pretty_midi.PrettyMIDI(io.BytesIO(data)).key_signature_changes[0].key_number
    return kn % 12, "major" if kn < 12 else "minor"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--splits", default="test", help="comma-separated corpus splits to measure on")
    args = ap.parse_args()
    tunes = held_out_tunes(tuple(args.splits.split(",")))
    modes = Counter(m.key[1] for _, m in tunes)
    print(f"{len(tunes)} tunes ({args.splits}); written modes: {dict(sorted(modes.items()))}")
    readers = {"flag trusted": flag_trusted, "read_midi": lambda data: read_midi(data).key}
    rows: dict = {}
    misses: Counter = Counter()
    for coll, melody in tunes:
        for flag in ("relative-major", "written-mode"):
            data = midi_with_signature(melody, flag)
            for name, read in readers.items():
                est = read(data)
                for group in (coll, "total", f"total, {melody.key[1]} tunes"):
                    row = rows.setdefault((flag, name, group), [0, 0])
                    row[0] += est == melody.key
                    row[1] += 1
                if est != melody.key:
                    misses[(flag, name, melody.key[1], est[1])] += 1
    print("| key signature event | tunes | n | flag trusted | read_midi |")
    print("|---|---|---:|---:|---:|")
    for flag, group in sorted({(f, g) for f, _, g in rows}):
        (a, n), (b, _) = rows[(flag, "flag trusted", group)], rows[(flag, "read_midi", group)]
        print(f"| {flag} | {group} | {n} | {a}/{n} = {a / n:.3f} | {b}/{n} = {b / n:.3f} |")
    print("\nmisses (event, reader, written mode -> read mode): count")
    for (flag, name, want, got), n in sorted(misses.items()):
        print(f"  {flag}, {name}: {want} -> {got}: {n}")


if __name__ == "__main__":
    main()
