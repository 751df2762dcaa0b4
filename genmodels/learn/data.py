"""Token streams for training and evaluation, for any domain: the container, the batching, and the
cached reader of MIDI folders. How a corpus folder becomes streams is each domain's own
(``genmodels.domains``).

A split becomes one 1-D stream of token ids (documents or tunes one after another, each starting with
``<bos>``), plus the number of units the metric divides by: characters for text (bits per character)
and notes for melodies (nats per note).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genmodels.core.errors import SettingsError
from genmodels.core.paths import REPO_ROOT, atomic_write, files_hash, repo_path
from genmodels.music import Melody, MidiError, Note, read_midi
from genmodels.music.types import Repeat

CACHE_DIR = "data/cache"  # relative to the repository


@dataclass
class TokenData:
    domain: Any  # genmodels.domains.Domain
    tokenizer: Any
    train_stream: Callable[[int], torch.Tensor]  # epoch → stream
    valid: torch.Tensor
    valid_units: int
    test: torch.Tensor
    test_units: int
    info: dict = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return self.domain.metric


def token_stream(seqs: list[list[int]]) -> torch.Tensor:
    """Sequences of ids, one after another, as one 1-D stream."""
    flat = [t for s in seqs for t in s]
    return torch.tensor(flat, dtype=torch.long)


def recorded_path(folder: str | Path) -> str:
    """How a corpus folder is written in a model card: relative to the repository when inside it (so
    the card reads the same on every machine), else absolute."""
    p = Path(os.path.abspath(folder))
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def batchify(stream: torch.Tensor, rows: int) -> torch.Tensor:
    """(N,) → (rows, N // rows): each row a contiguous slice of the stream."""
    n = stream.numel() // rows
    if n < 2:
        raise SettingsError(f"Not enough tokens ({stream.numel()}) for {rows} rows; use a smaller --batch")
    return stream[: n * rows].view(rows, n)


def window(data: torch.Tensor, pos: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets of the (rows, ≤ bptt) window of ``data`` starting at ``pos``."""
    y = data[:, pos + 1 : pos + 1 + bptt]
    return data[:, pos : pos + y.size(1)], y


def melody_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi") and p.is_file())


def read_melodies(files: list[Path], cache_dir: str | Path = CACHE_DIR):
    """(name, Melody) for each of ``files`` that ``read_midi`` accepts (files it refuses are left out),
    cached as JSON under ``cache_dir`` (relative: to the repository) by the files' paths and contents."""

    cache_dir = repo_path(cache_dir)
    # "form" in the name: rows cached before repeats were read lack them
    cache = cache_dir / f"melodies-form-{files_hash(files)[:20]}.json"
    if cache.exists():
        rows = json.loads(cache.read_text())
    else:
        rows = []
        for f in files:
            try:
                m = read_midi(f)
            except MidiError:
                continue
            rows.append(
                {
                    "name": f.stem,
                    "meter": list(m.meter),
                    "key": list(m.key),
                    "tempo": m.tempo,
                    "notes": [[n.pitch, n.start, n.duration] for n in m.notes],
                    "form": [[r.start, r.body, r.ending1, r.ending2] for r in m.form],
                }
            )
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, json.dumps(rows))
    return [
        (
            r["name"],
            Melody(
                [Note(*n) for n in r["notes"]],
                tuple(r["meter"]),
                tuple(r["key"]),
                r["tempo"],
                form=tuple(Repeat(*f) for f in r.get("form", ())),
            ),
        )
        for r in rows
    ]
