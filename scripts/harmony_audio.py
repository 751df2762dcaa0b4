"""Listen by numbers: a held-out folk tune harmonised, and the loudness of each voice within the mix for every
instrument set (RMS in dBFS at the synthesizer's own level, each voice rendered alone), then the mix's peak and
RMS as the app plays it (normalised). The tune should sit at or above the other voices.

Usage (from the repository root): python -m scripts.harmony_audio checkpoints/harmony-lstm [--tune N] [--seed S]
"""

import argparse
import io
import wave
from pathlib import Path

import numpy as np

from genmodels.harmony import export
from genmodels.harmony.adapt import soprano_from_melody
from genmodels.infer.harmonise import HarmonySettings, harmonise
from genmodels.music import midi as midi_io
from genmodels.music.audio import render, wav_bytes

ROOT = Path(__file__).resolve().parents[1]


def db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a harmony checkpoint directory")
    ap.add_argument("--tune", type=int, default=0, help="index of the tune in data/melody/test (sorted by name)")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the harmony")
    args = ap.parse_args()
    path = sorted((ROOT / "data" / "melody" / "test").glob("*.mid"))[args.tune]
    melody = midi_io.read_midi(path.read_bytes())
    harmony = harmonise(args.checkpoint, soprano_from_melody(melody).chorale, HarmonySettings(seed=args.seed)).chorale
    print(
        f"{path.stem}: {melody.n_bars} bars, {melody.tempo:g} BPM; notes per voice",
        [len(harmony.notes(v)) for v in range(4)],
    )
    for name, programs in export.INSTRUMENT_SETS.items():
        pm = export.to_pretty_midi(harmony, programs, melody.tempo)
        parts = []
        for v in range(4):  # each voice alone, the others silent, at the synthesizer's own level
            alone = export.to_pretty_midi(harmony, programs, melody.tempo)
            for u, inst in enumerate(alone.instruments):
                inst.notes = inst.notes if u == v else []
            parts.append(f"{export.VOICE_NAMES[v]} {db(render(alone, normalise=False)):6.1f}")
        with wave.open(io.BytesIO(wav_bytes(pm))) as w:
            mix = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768
        peak = 20 * np.log10(np.abs(mix).max())
        print(f"{name:16s} " + "  ".join(parts) + f"  | played: peak {peak:5.1f} dBFS, RMS {db(mix):5.1f} dBFS")


if __name__ == "__main__":
    main()
