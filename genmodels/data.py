"""Token streams for training and evaluation, for either domain, from a prepared corpus or any folder.

A split becomes one 1-D stream of token ids (documents or tunes one after another, each starting with
``<bos>``), plus the number of units the metric divides by: characters for text (bits per character)
and notes for melodies (nats per note). Melody training streams are re-drawn each epoch with every
tune transposed by a random interval (seeded by the epoch, so resuming reproduces them exactly).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from genmodels.corpus import load_text_folder
from genmodels.errors import DataError
from genmodels.text import TextTokenizer
from genmodels.util import atomic_write, files_hash, hash_split

METRICS = {"text": "bits_per_char", "melody": "nats_per_note"}


@dataclass
class TokenData:
    domain: str
    tokenizer: Any
    train_stream: Callable[[int], torch.Tensor]  # epoch → stream
    valid: torch.Tensor
    valid_units: int
    test: torch.Tensor
    test_units: int
    info: dict = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return METRICS[self.domain]


def to_metric(domain: str, nats: float, units: int) -> float:
    per_unit = nats / max(units, 1)
    return per_unit / math.log(2) if domain == "text" else per_unit


def _stream(seqs: list[list[int]]) -> torch.Tensor:
    flat = [t for s in seqs for t in s]
    return torch.tensor(flat, dtype=torch.long)


# text -------------------------------------------------------------------------------------------
def text_stream(tokenizer: TextTokenizer, texts: list[str]) -> tuple[torch.Tensor, int]:
    return _stream([[tokenizer.bos_id] + tokenizer.encode(t) for t in texts]), sum(len(t) for t in texts)


def text_data(folder: str | Path, vocab_size: int = 2048, tokenizer: TextTokenizer | None = None) -> TokenData:
    """Text from ``folder`` (train/valid/test subfolders or any .txt files); its tokenizer.model is used
    when present, otherwise a tokenizer is trained on the train split."""
    folder = Path(folder)
    splits = load_text_folder(folder)
    if tokenizer is None:
        tok_file = folder / "tokenizer.model"
        tokenizer = (TextTokenizer.load(tok_file) if tok_file.exists()
                     else TextTokenizer.train([t for _, t in splits.train], vocab_size=vocab_size))
    train, train_chars = text_stream(tokenizer, [t for _, t in splits.train])
    valid, valid_chars = text_stream(tokenizer, [t for _, t in splits.valid])
    test, test_chars = text_stream(tokenizer, [t for _, t in splits.test])
    info = {"data": str(folder), "split": {
        s: {"documents": [n for n, _ in getattr(splits, s)], "chars": c, "tokens": len(x)}
        for s, c, x in (("train", train_chars, train), ("valid", valid_chars, valid), ("test", test_chars, test))}}
    return TokenData("text", tokenizer, lambda epoch: train, valid, valid_chars, test, test_chars, info)


# melody -----------------------------------------------------------------------------------------
def melody_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi") and p.is_file())


def read_melodies(files: list[Path], cache_dir: Path):
    """(name, Melody) for each of ``files`` that ``read_midi`` accepts (files it refuses are left out),
    cached as JSON under ``cache_dir`` by the files' paths and contents."""
    from genmodels.melody import Melody, MidiError, Note, read_midi

    cache = cache_dir / f"melodies-{files_hash(files)[:20]}.json"
    if cache.exists():
        rows = json.loads(cache.read_text())
    else:
        rows = []
        for f in files:
            try:
                m = read_midi(f)
            except MidiError:
                continue
            rows.append({"name": f.stem, "meter": list(m.meter), "key": list(m.key), "tempo": m.tempo,
                         "notes": [[n.pitch, n.start, n.duration] for n in m.notes]})
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, json.dumps(rows))
    return [(r["name"], Melody([Note(*n) for n in r["notes"]], tuple(r["meter"]), tuple(r["key"]), r["tempo"]))
            for r in rows]


def melody_data(folder: str | Path, augment: bool = True, seed: int = 0,
                cache_dir: str | Path = "data/cache") -> TokenData:
    """Melodies from ``folder`` (train/valid/test subfolders, or any .mid/.midi files split by name)."""
    from genmodels.melody import MelodyTokenizer, MidiError

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"MIDI folder not found: {folder}")
    if all((folder / s).is_dir() for s in ("train", "valid", "test")):
        files = {s: melody_files(folder / s) for s in ("train", "valid", "test")}
    else:
        files = {"train": [], "valid": [], "test": []}
        for f in melody_files(folder):
            files[hash_split(f.name)].append(f)
        if not files["valid"] or not files["test"]:  # small folders: take the last files by name
            allf = melody_files(folder)
            if len(allf) < 3:
                raise DataError(f"{folder} needs at least 3 readable .mid/.midi files to train on (found {len(allf)})")
            n = max(1, len(allf) // 10)
            files = {"train": allf[: -2 * n], "valid": allf[-2 * n : -n], "test": allf[-n:]}
    tunes = {s: read_melodies(fs, Path(cache_dir)) for s, fs in files.items()}
    if not tunes["train"] or not tunes["valid"]:
        raise DataError(f"No readable melodies in {folder} (train: {len(tunes['train'])}, valid: {len(tunes['valid'])})")
    if not tunes["test"]:
        tunes["test"] = tunes["valid"]
    tok = MelodyTokenizer()

    def encode_all(ms) -> tuple[torch.Tensor, int]:
        seqs = [tok.encode(m) for _, m in ms]
        return _stream(seqs), sum(tok.count_notes(s) for s in seqs)

    base_train, _ = encode_all(tunes["train"])

    def train_stream(epoch: int) -> torch.Tensor:
        if not augment:
            return base_train
        rng = random.Random(seed * 100_003 + epoch)
        seqs = []
        for _, m in tunes["train"]:
            k = rng.randint(-5, 6)
            try:
                t = m.transpose(k) if k else m
            except MidiError:  # a note would leave the pitch range: keep the tune as it is
                t = m
            seqs.append(tok.encode(t))
        order = list(range(len(seqs)))
        rng.shuffle(order)
        return _stream([seqs[i] for i in order])

    valid, valid_notes = encode_all(tunes["valid"])
    test, test_notes = encode_all(tunes["test"])
    info = {"data": str(folder), "split": {
        s: {"tunes": len(tunes[s]), "files": len(files[s])} for s in ("train", "valid", "test")},
        "augment": "random transposition -5..+6 semitones per tune per epoch" if augment else "none"}
    # The range the corpus uses (before augmentation): sampling never leaves it.
    pitches = [n.pitch for _, m in tunes["train"] for n in m.notes]
    info["pitch_range"] = [min(pitches), max(pitches)]
    info["split"]["valid"]["notes"] = valid_notes
    info["split"]["test"]["notes"] = test_notes
    return TokenData("melody", tok, train_stream, valid, valid_notes, test, test_notes, info)


def load_data(domain: str, folder: str | Path, **kw) -> TokenData:
    if domain == "text":
        return text_data(folder, **{k: v for k, v in kw.items() if k in ("vocab_size", "tokenizer")})
    if domain == "melody":
        return melody_data(folder, **{k: v for k, v in kw.items() if k in ("augment", "seed", "cache_dir")})
    raise DataError(f"domain must be 'text' or 'melody', not {domain!r}")
