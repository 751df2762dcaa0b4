"""Round-trip rate of the ABC and MusicXML exports: each tune is exported, read back with music21, and
must give the same notes, meter and key.

Tunes: the MIDI files under FOLDER (default data/melody/test, the melody corpus's test split). When
that folder does not exist, a small set is built straight from music21's corpus with the corpus
builder's own reader (genmodels.learn.melody_corpus.parse_source): the first --files source files of each
collection, every tune written to MIDI and read back as the corpus does, at most --max-tunes of them
(a seeded sample).

Usage: OMP_NUM_THREADS=1 python scripts/notation_roundtrip.py [FOLDER] [--files 2] [--max-tunes 400]
Exit status 0 when every tune round-trips in both formats, 1 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genmodels.core.errors import MidiError  # noqa: E402
from genmodels.music import Melody, Note, midi_bytes, read_midi  # noqa: E402
from genmodels.music.roundtrip import FORMATS, roundtrip_report  # noqa: E402


def folder_tunes(folder: Path) -> list[tuple[str, Melody]]:
    """(file name, melody) for every MIDI file under `folder` that reads as a melody."""
    from genmodels.learn.data import melody_files

    out = []
    for f in melody_files(folder):
        try:
            out.append((Path(f).name, read_midi(f)))
        except MidiError as e:
            print(f"skip {f}: {e}", file=sys.stderr)
    return out


def corpus_tunes(files: int) -> list[tuple[str, Melody]]:
    """Tunes from the first `files` source files of each music21 collection, as the corpus builds them."""
    from genmodels.learn.melody_corpus import COLLECTIONS, corpus_files, parse_source

    out = []
    for job in corpus_files(COLLECTIONS, limit=files):
        for rec in parse_source(job)["tunes"]:
            if "skip" in rec:
                continue
            try:
                mel = Melody([Note(*n) for n in rec["notes"]], tuple(rec["meter"]), tuple(rec["key"]), rec["tempo"])
                out.append((rec["id"], read_midi(midi_bytes(mel))))
            except MidiError as e:
                print(f"skip {rec['id']}: {e}", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT / "data/melody/test"), help="folder of MIDI files")
    ap.add_argument("--files", type=int, default=2, help="source files per collection when building from music21")
    ap.add_argument("--max-tunes", type=int, default=400, help="check at most this many tunes (seeded sample)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed")
    args = ap.parse_args()
    folder = Path(args.folder)
    if folder.is_dir():
        tunes, source = folder_tunes(folder), str(folder)
    else:
        tunes, source = corpus_tunes(args.files), f"music21 corpus (first {args.files} files per collection)"
    if len(tunes) > args.max_tunes:
        tunes = sorted(random.Random(args.seed).sample(tunes, args.max_tunes))
    t0 = time.time()
    report = roundtrip_report(tunes)
    print(f"{len(tunes)} tunes from {source}; {time.time() - t0:.0f}s")
    print(report.summary())
    return 0 if all(report.passed[f] == report.checked[f] for f in FORMATS) else 1


if __name__ == "__main__":
    sys.exit(main())
