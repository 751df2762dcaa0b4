"""Write a folder of melody MIDI files again with their repeats played out and no form event, as MIDI
files from other programs carry them, to score a model on the tokens a model without repeat signs reads.

Usage: python -m scripts.played_out data/melody/test runs/played-out/test
then:  python -m genmodels eval checkpoints/melody-gru --midi-dir runs/played-out/test
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from genmodels.learn.data import melody_files
from genmodels.music.midi import read_midi, write_midi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="folder of .mid files")
    ap.add_argument("out", help="folder to write (created)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files = melody_files(Path(a.source))
    with_form = 0
    for f in files:
        m = read_midi(f)
        with_form += bool(m.form)
        write_midi(dataclasses.replace(m, form=()), out / f.name)
    print(f"{len(files)} tunes written to {out} ({with_form} had repeats, now played out without signs)")


if __name__ == "__main__":
    main()
