"""Melody: header and bar-event tokens with a grammar, tunes from MIDI files, nats per note.

Training streams are re-drawn each epoch with every tune transposed by a random interval (seeded by
the epoch, so resuming reproduces them exactly).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genmodels.core.errors import CheckpointError, DataError
from genmodels.core.paths import atomic_write_json
from genmodels.domains.base import LanguageModelDomain
from genmodels.eval.melody_report import generate_like, music_report, regenerate_report
from genmodels.eval.ngram import melody_baseline
from genmodels.infer.decoding import MELODY_BARS, Settings
from genmodels.infer.sampling import Sampler
from genmodels.learn.cache_fit import fit_checkpoint_cache
from genmodels.learn.data import TokenData, melody_files, read_melodies
from genmodels.learn.melody_corpus import prepare_melody, write_data_readme_section
from genmodels.learn.melody_data import encode_tunes, held_out_tunes, melody_data
from genmodels.learn.text_corpus import DATA_README, write_readme_section
from genmodels.music import PITCH_RANGE, format_notes, melody_to_midi, midi_bytes, parse_note_prompt
from genmodels.music.audio import wav_bytes
from genmodels.music.tunebook import SHIPPED
from genmodels.tokenizers.melody import MelodyTokenizer

BENCH_PROMPT = "E4 G4 A4/2 B4/2 A4 G4"  # the benchmark's request continues this
END_TO_END_BARS = 64


class MelodyDomain(LanguageModelDomain):
    name = "melody"
    metric = "nats_per_note"
    metric_unit = "note"
    metric_note = "Nats per note on held-out tunes; an n-gram model on the same tokens is the floor to beat."
    data_folder = "data/melody"
    default_length = MELODY_BARS
    length_unit = "bars"
    tokenizer_file = "tokenizer.json"
    sample_length = f"{END_TO_END_BARS} bars + MIDI + audio"

    def load_tokenizer(self, folder: Path):

        f = Path(folder) / self.tokenizer_file
        try:
            return MelodyTokenizer.from_config(json.loads(f.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{f}: not a readable melody tokenizer ({e})") from e

    def fine_tune_tokenizer(self, parent: Any) -> Any:

        newest = MelodyTokenizer()
        return newest if newest.vocab[: parent.vocab_size] == parent.vocab else parent

    def grown_like(self, tokenizer: Any) -> dict[int, int]:
        # A style stands where <bos> stood: starting as <bos> keeps the parent's first steps (from the mean, the
        # GRU's validation loss went from 2.33 to 3.51 nats per note before fine-tuning began).
        return {i: tokenizer.bos_id for i in getattr(tokenizer, "style_ids", {}).values()}

    def save_tokenizer(self, folder: Path, tokenizer: Any) -> None:
        atomic_write_json(Path(folder) / self.tokenizer_file, tokenizer.to_config())

    def load_data(
        self, folder: str | Path, *, tokenizer: Any = None, vocab_size: int = 2048, augment: bool = True, seed: int = 0
    ) -> TokenData:
        return melody_data(folder, augment=augment, seed=seed, tokenizer=tokenizer)  # the vocabulary is fixed

    def stream_from(self, source: str | Path, tokenizer: Any) -> tuple[torch.Tensor, int]:
        files = melody_files(Path(source))
        tunes = read_melodies(files) if files else []
        if not tunes:
            raise DataError(f"No readable .mid/.midi files in {source}")
        return encode_tunes(tokenizer, tunes)

    def prepare(self, out: Path | None, workers: int) -> dict:

        # The default build also refreshes the tune book that ships (the Melody page's corpus tunes).
        book = out / "tunebook.zip" if out else SHIPPED
        stats = prepare_melody(out or self.default_data, workers=workers, tunebook=book)
        write_readme_section(DATA_README, self.name, write_data_readme_section(stats))
        return stats

    def baseline(self, data: str | Path | None = None, order: int | None = None) -> dict:

        return melody_baseline(data or self.default_data, orders=range(2, 9) if order is None else [int(order)])

    def after_training(self, path: Path, data: Any) -> dict | None:
        # How much a tune copies its own earlier bars, fitted on the validation tunes (genmodels.nn.cache).
        return fit_checkpoint_cache(path, data)

    def banned_tokens(self, tokenizer: Any, config: dict) -> torch.Tensor:
        # Pitches outside the training data's range: the model has no evidence for them.

        banned = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        if config.get("pitch_range"):
            lo, hi = config["pitch_range"]
            for p in range(PITCH_RANGE[0], PITCH_RANGE[1] + 1):
                if not lo <= p <= hi:
                    banned[tokenizer.pitch_id(p)] = True
        return banned

    def token_label(self, tokenizer: Any, token_id: int) -> str:
        return tokenizer.vocab[token_id]

    def card_sample(self, sampler: Any, data: str | Path) -> str:

        return format_notes(generate_like(sampler, held_out_tunes(data), 1)[0])

    def end_to_end(self, sampler: Any) -> None:

        prompt = parse_note_prompt(BENCH_PROMPT, meter=(4, 4))
        r = sampler.generate_melody(prompt, bars=END_TO_END_BARS, settings=Settings(temperature=1.0, seed=1))[0]
        midi_bytes(r.full)
        wav_bytes(melody_to_midi(r.full))

    def sample_statistics(self, checkpoint: Any, data: str | Path, temperatures: tuple = (1.0,)) -> dict:

        return music_report(Sampler(checkpoint), data, temperatures=tuple(temperatures))

    def passage_report(self, sampler: Any, data: str | Path) -> dict:
        return regenerate_report(sampler, held_out_tunes(data))


MELODY = MelodyDomain()
