"""Melody: header and bar-event tokens with a grammar, tunes from MIDI files, nats per note.

Training streams are re-drawn each epoch with every tune transposed by a random interval (seeded by
the epoch, so resuming reproduces them exactly).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import torch

from genmodels.data import (
    CACHE_DIR,
    TokenData,
    melody_files,
    read_melodies,
    recorded_path,
    token_stream,
)
from genmodels.domains.base import Domain
from genmodels.errors import CheckpointError, DataError, GenmodelsError
from genmodels.util import atomic_write_json, hash_split

SPLITS = ("train", "valid", "test")
BENCH_PROMPT = "E4 G4 A4/2 B4/2 A4 G4"  # the benchmark's request continues this
END_TO_END_BARS = 64
MUSIC_TUNES = 200


def _split_files(folder: Path) -> dict[str, list[Path]]:
    """The MIDI files of each split: train/valid/test subfolders, else a split by file name (small
    folders: the last files by name, so valid and test are never empty)."""
    if all((folder / s).is_dir() for s in SPLITS):
        return {s: melody_files(folder / s) for s in SPLITS}
    files: dict[str, list[Path]] = {s: [] for s in SPLITS}
    for f in melody_files(folder):
        files[hash_split(f.name)].append(f)
    if not files["valid"] or not files["test"]:
        allf = melody_files(folder)
        if len(allf) < 3:
            raise DataError(f"{folder} needs at least 3 readable .mid/.midi files to train on (found {len(allf)})")
        n = max(1, len(allf) // 10)
        files = {"train": allf[: -2 * n], "valid": allf[-2 * n : -n], "test": allf[-n:]}
    return files


def _encode_all(tok, tunes: list) -> tuple[torch.Tensor, int]:
    seqs = [tok.encode(m) for _, m in tunes]
    return token_stream(seqs), sum(tok.count_notes(s) for s in seqs)


def _transposed_stream(tok, tunes: list, seed: int, epoch: int) -> torch.Tensor:
    """The train split for ``epoch``: every tune moved by a random interval, in a shuffled order."""
    from genmodels.melody import MidiError

    rng = random.Random(seed * 100_003 + epoch)
    seqs = []
    for _, m in tunes:
        k = rng.randint(-5, 6)
        try:
            t = m.transpose(k) if k else m
        except MidiError:  # a note would leave the pitch range: keep the tune as it is
            t = m
        seqs.append(tok.encode(t))
    order = list(range(len(seqs)))
    rng.shuffle(order)
    return token_stream([seqs[i] for i in order])


def melody_data(folder: str | Path, augment: bool = True, seed: int = 0, cache_dir: str | Path | None = None,
                tokenizer: Any = None) -> TokenData:
    """Melodies from ``folder`` (train/valid/test subfolders, or any .mid/.midi files split by name);
    ``cache_dir``: where parsed tunes are kept (default: the repository's data/cache)."""
    from genmodels.melody import MelodyTokenizer

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"MIDI folder not found: {folder}")
    files = _split_files(folder)
    tunes = {s: read_melodies(fs, cache_dir or CACHE_DIR) for s, fs in files.items()}
    if not tunes["train"] or not tunes["valid"]:
        raise DataError(f"No readable melodies in {folder} "
                        f"(train: {len(tunes['train'])}, valid: {len(tunes['valid'])})")
    if not tunes["test"]:
        tunes["test"] = tunes["valid"]
    tok = tokenizer or MelodyTokenizer()
    base_train, _ = _encode_all(tok, tunes["train"])
    valid, valid_notes = _encode_all(tok, tunes["valid"])
    test, test_notes = _encode_all(tok, tunes["test"])
    info = {"data": recorded_path(folder), "split": {
        s: {"tunes": len(tunes[s]), "files": len(files[s])} for s in SPLITS},
        "augment": "random transposition -5..+6 semitones per tune per epoch" if augment else "none"}
    # The range the corpus uses (before augmentation): sampling never leaves it.
    pitches = [n.pitch for _, m in tunes["train"] for n in m.notes]
    info["pitch_range"] = [min(pitches), max(pitches)]
    info["split"]["valid"]["notes"] = valid_notes
    info["split"]["test"]["notes"] = test_notes

    def train_stream(epoch: int) -> torch.Tensor:
        return _transposed_stream(tok, tunes["train"], seed, epoch) if augment else base_train

    return TokenData(MELODY, tok, train_stream, valid, valid_notes, test, test_notes, info)


def held_out_tunes(data: str | Path, split: str = "test") -> list:
    folder = Path(data) / split
    files = melody_files(folder)
    if not files:
        raise DataError(f"No held-out tunes in {folder}; run python -m genmodels prepare melody")
    return [m for _, m in read_melodies(files)]


def generate_like(sampler: Any, tunes: list, n: int = MUSIC_TUNES, temperature: float = 1.0, seed: int = 0) -> list:
    """One generated tune per held-out tune (cycled to ``n``): same meter, key and number of bars,
    generated from the header alone at ``temperature`` with a fixed random seed."""
    from genmodels.melody import Melody
    from genmodels.sampling import Settings

    out = []
    for i in range(n):
        ref = tunes[i % len(tunes)]
        empty = Melody([], ref.meter, ref.key, ref.tempo)
        bars = max(1, min(ref.n_bars, 32))
        settings = Settings(temperature=temperature, seed=seed + i)
        out.append(sampler.generate_melody(empty, bars=bars, settings=settings)[0].full)
    return out


def music_report(sampler: Any, data: str | Path, n: int = MUSIC_TUNES) -> dict:
    """Musical statistics of ``n`` generated tunes against the held-out tunes of ``data``."""
    from genmodels import music_stats

    tunes = held_out_tunes(data)
    generated = generate_like(sampler, tunes, n)
    # novelty: the longest runs shared with training tunes
    index = music_stats.NoveltyIndex(held_out_tunes(data, "train"), max_n=16)
    rows = music_stats.compare(generated, tunes, index=index)
    for r in rows:
        for k in ("generated", "held_out", "difference"):
            if isinstance(r.get(k), float):
                r[k] = round(r[k], 4)
    return {"tunes_generated": n, "held_out_tunes": len(tunes), "temperature": 1.0, "rows": rows}


def _prompt_from_args(args: argparse.Namespace):
    from genmodels.melody import parse_note_prompt, read_midi

    if args.prompt_midi:
        return read_midi(args.prompt_midi, track=getattr(args, "track", None))
    if args.prompt_notes:
        return parse_note_prompt(args.prompt_notes, meter=tuple(int(x) for x in args.meter.split("/")))
    raise GenmodelsError("A melody model needs --prompt-notes or --prompt-midi")


class MelodyDomain(Domain):
    name = "melody"
    metric = "nats_per_note"
    metric_unit = "note"
    metric_note = "Nats per note on held-out tunes; an n-gram model on the same tokens is the floor to beat."
    data_folder = "data/melody"
    default_length = 8
    length_unit = "bars"
    tokenizer_file = "tokenizer.json"
    sample_length = f"{END_TO_END_BARS} bars + MIDI + audio"

    def load_tokenizer(self, folder: Path):
        from genmodels.melody import MelodyTokenizer

        f = Path(folder) / self.tokenizer_file
        try:
            return MelodyTokenizer.from_config(json.loads(f.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{f}: not a readable melody tokenizer ({e})") from e

    def fine_tune_tokenizer(self, parent: Any) -> Any:
        from genmodels.melody import MelodyTokenizer

        newest = MelodyTokenizer()
        return newest if newest.vocab[: parent.vocab_size] == parent.vocab else parent

    def save_tokenizer(self, folder: Path, tokenizer: Any) -> None:
        atomic_write_json(Path(folder) / self.tokenizer_file, tokenizer.to_config())

    def load_data(self, folder: str | Path, *, tokenizer: Any = None, vocab_size: int = 2048,
                  augment: bool = True, seed: int = 0) -> TokenData:
        return melody_data(folder, augment=augment, seed=seed, tokenizer=tokenizer)  # the vocabulary is fixed

    def stream_from(self, source: str | Path, tokenizer: Any) -> tuple[torch.Tensor, int]:
        files = melody_files(Path(source))
        tunes = read_melodies(files) if files else []
        if not tunes:
            raise DataError(f"No readable .mid/.midi files in {source}")
        return _encode_all(tokenizer, tunes)

    def prepare(self, out: Path | None, workers: int) -> dict:
        from genmodels.corpus import DATA_README, write_readme_section
        from genmodels.melody.corpus import prepare_melody, write_data_readme_section

        stats = prepare_melody(out or self.default_data, workers=workers)
        write_readme_section(DATA_README, self.name, write_data_readme_section(stats))
        return stats

    def baseline(self, data: str | Path | None = None, order: int | None = None) -> dict:
        from genmodels.baselines import melody_baseline

        return melody_baseline(data or self.default_data, orders=range(2, 9) if order is None else [int(order)])

    def banned_tokens(self, tokenizer: Any, config: dict) -> torch.Tensor:
        # Pitches outside the training data's range: the model has no evidence for them.
        from genmodels.melody import PITCH_RANGE

        banned = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        if config.get("pitch_range"):
            lo, hi = config["pitch_range"]
            for p in range(PITCH_RANGE[0], PITCH_RANGE[1] + 1):
                if not lo <= p <= hi:
                    banned[tokenizer.pitch_id(p)] = True
        return banned

    def token_label(self, tokenizer: Any, token_id: int) -> str:
        return tokenizer.vocab[token_id]

    def run_generate(self, sampler: Any, args: argparse.Namespace, length: int, settings: Any) -> None:
        from genmodels.melody import format_notes, write_midi

        prompt = _prompt_from_args(args)
        out = Path(args.out or "generated.mid")
        for i, r in enumerate(sampler.generate_melody(prompt, bars=length, settings=settings)):
            path = out if settings.n == 1 else out.with_name(f"{out.stem}-{i + 1}{out.suffix}")
            write_midi(r.full, path, program=args.program)
            print(f"{path}: {format_notes(r.full)}")

    def card_sample(self, sampler: Any, data: str | Path) -> str:
        from genmodels.melody import format_notes

        return format_notes(generate_like(sampler, held_out_tunes(data), 1)[0])

    def end_to_end(self, sampler: Any) -> None:
        from genmodels.audio import wav_bytes
        from genmodels.melody import melody_to_midi, midi_bytes, parse_note_prompt
        from genmodels.sampling import Settings

        prompt = parse_note_prompt(BENCH_PROMPT, meter=(4, 4))
        r = sampler.generate_melody(prompt, bars=END_TO_END_BARS, settings=Settings(temperature=1.0, seed=1))[0]
        midi_bytes(r.full)
        wav_bytes(melody_to_midi(r.full))

    def sample_statistics(self, checkpoint: Any, data: str | Path) -> dict:
        from genmodels.sampling import Sampler

        return music_report(Sampler(checkpoint), data)


MELODY = MelodyDomain()
