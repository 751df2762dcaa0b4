"""Melody token streams from a folder of MIDI files (train/valid/test), re-drawn each epoch with every tune
transposed by a random interval (seeded by the epoch, so resuming reproduces them exactly)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import torch

from genmodels.core.errors import DataError
from genmodels.core.paths import hash_split
from genmodels.core.registry import get_domain
from genmodels.learn.data import CACHE_DIR, TokenData, melody_files, read_melodies, recorded_path, token_stream
from genmodels.learn.melody_corpus import collection_style
from genmodels.music import MidiError
from genmodels.tokenizers.melody import MelodyTokenizer

SPLITS = ("train", "valid", "test")


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


def tune_style(tok, name: str) -> str | None:
    """The style token a corpus tune is written with (its collection's), None where the tokenizer has no
    styles or the tune comes from elsewhere."""
    style = collection_style(name)
    return style if style in getattr(tok, "style_ids", {}) else None


def encode_tunes(tok, tunes: list, styled: bool = False) -> tuple[torch.Tensor, int]:
    """The tunes' token stream and its notes; ``styled``: each corpus tune starts with its collection's style
    (tunes from elsewhere, and any MIDI folder scored as it is, start with <bos>)."""
    seqs = [tok.encode(m, style=tune_style(tok, name) if styled else None) for name, m in tunes]
    return token_stream(seqs), sum(tok.count_notes(s) for s in seqs)


PLAYED_OUT_SHARE = 0.25


def _transposed_stream(tok, tunes: list, seed: int, epoch: int) -> torch.Tensor:
    """The train split for ``epoch``: every tune moved by a random interval, in a shuffled order. A quarter
    of the tunes are anonymous: <bos> and played out, without signs, as MIDI files from elsewhere carry them
    (the model learns to hear a part come back in both spellings); the rest start with their collection's
    style and keep their signs. A tokenizer without styles plays out a quarter of the tunes with repeats."""

    rng = random.Random(seed * 100_003 + epoch)
    seqs = []
    for name, m in tunes:
        k = rng.randint(-5, 6)
        played_out = rng.random() < PLAYED_OUT_SHARE
        try:
            t = m.transpose(k) if k else m
        except MidiError:  # a note would leave the pitch range: keep the tune as it is
            t = m
        if played_out and t.form:
            t = dataclasses.replace(t, form=())
        seqs.append(tok.encode(t, style=None if played_out else tune_style(tok, name)))
    order = list(range(len(seqs)))
    rng.shuffle(order)
    return token_stream([seqs[i] for i in order])


def melody_data(
    folder: str | Path, augment: bool = True, seed: int = 0, cache_dir: str | Path | None = None, tokenizer: Any = None
) -> TokenData:
    """Melodies from ``folder`` (train/valid/test subfolders, or any .mid/.midi files split by name);
    ``cache_dir``: where parsed tunes are kept (default: the repository's data/cache)."""

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"MIDI folder not found: {folder}")
    files = _split_files(folder)
    tunes = {s: read_melodies(fs, cache_dir or CACHE_DIR) for s, fs in files.items()}
    if not tunes["train"] or not tunes["valid"]:
        raise DataError(
            f"No readable melodies in {folder} (train: {len(tunes['train'])}, valid: {len(tunes['valid'])})"
        )
    if not tunes["test"]:
        tunes["test"] = tunes["valid"]
    # Styles where the corpus has them (the default corpus's collections); a user's own tunes train without.
    tok = tokenizer or MelodyTokenizer(styles=any(collection_style(name) for name, _ in tunes["train"]))
    base_train, _ = encode_tunes(tok, tunes["train"], styled=True)
    valid, valid_notes = encode_tunes(tok, tunes["valid"], styled=True)
    test, test_notes = encode_tunes(tok, tunes["test"], styled=True)
    info = {
        "data": recorded_path(folder),
        "split": {s: {"tunes": len(tunes[s]), "files": len(files[s])} for s in SPLITS},
        "augment": "random transposition -5..+6 semitones per tune per epoch; a quarter of the tunes written "
        "played out, with <bos> for their style"
        if augment
        else "none",
    }
    # The range the corpus uses (before augmentation): sampling never leaves it.
    pitches = [n.pitch for _, m in tunes["train"] for n in m.notes]
    info["pitch_range"] = [min(pitches), max(pitches)]
    # The styles the tunes were written with: a model fine-tuned on tunes of none writes as <bos> (see Sampler).
    info["styles"] = sorted({s for name, _ in tunes["train"] if (s := tune_style(tok, name))})
    info["split"]["valid"]["notes"] = valid_notes
    info["split"]["test"]["notes"] = test_notes

    def train_stream(epoch: int) -> torch.Tensor:
        return _transposed_stream(tok, tunes["train"], seed, epoch) if augment else base_train

    return TokenData(get_domain("melody"), tok, train_stream, valid, valid_notes, test, test_notes, info)


def held_out_tunes(data: str | Path, split: str = "test") -> list:
    folder = Path(data) / split
    files = melody_files(folder)
    if not files:
        raise DataError(f"No held-out tunes in {folder}; run python -m genmodels prepare melody")
    return [m for _, m in read_melodies(files)]
