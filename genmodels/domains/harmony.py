"""Harmony: alto, tenor and bass written under a given soprano, trained on Bach's chorales.

Its models are not language models over one token stream: a bidirectional encoder reads the whole
melody and a decoder writes the lower voices (``genmodels.harmony``). The domain says so through the
optional hooks of :class:`Domain` (``build_model``, ``trainer_class``, ``eval_report``); the stream-only
methods refuse with a SettingsError that says what to do instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genmodels.core.errors import SettingsError
from genmodels.core.registry import Domain
from genmodels.eval.harmony_baselines import baseline_report
from genmodels.eval.harmony_report import eval_harmony
from genmodels.infer.harmonise import card_sample
from genmodels.learn.chorales import prepare_harmony
from genmodels.learn.harmony_trainer import HarmonyTrainer, harmony_data
from genmodels.nn.harmoniser import HarmonyModel
from genmodels.tokenizers.harmony import BOS, PAD, HarmonyTokenizer

BENCH_NOTES = "E4 G4 A4/2 B4/2 A4 G4 E4/2 D4/2 E4*2"  # the benchmark's and the card's melody


class HarmonyDomain(Domain):
    name = "harmony"
    metric = "nats_per_note"
    metric_unit = "lower-voice note"
    metric_note = (
        "Nats per lower-voice note: the NLL of every alto, tenor and bass grid token (pitch, hold or rest "
        "on the sixteenth grid) divided by the lower voices' note onsets; the floors to beat are a per-beat "
        "lookup and an HMM over chords on the same tokens (Baseline below)."
    )
    data_folder = "data/harmony"
    default_length = 0  # a harmony is as long as its melody
    length_unit = "steps"
    tokenizer_file = "tokenizer.json"
    sample_length = "4 candidates under a 10-note melody"
    language_model = False

    # model and training -------------------------------------------------------------------------
    def build_model(self, config: Any) -> torch.nn.Module:

        return HarmonyModel(config)

    def trainer_class(self) -> type:

        return HarmonyTrainer

    # files ----------------------------------------------------------------------------------------
    def load_tokenizer(self, folder: Path) -> Any:

        return HarmonyTokenizer.load(Path(folder) / self.tokenizer_file)

    def save_tokenizer(self, folder: Path, tokenizer: Any) -> None:
        tokenizer.save(Path(folder) / self.tokenizer_file)

    # data -----------------------------------------------------------------------------------------
    def load_data(
        self, folder: str | Path, *, tokenizer: Any = None, vocab_size: int = 2048, augment: bool = True, seed: int = 0
    ):

        return harmony_data(self, folder, tokenizer=tokenizer, augment=augment)

    def stream_from(self, source: str | Path, tokenizer: Any) -> tuple[torch.Tensor, int]:
        raise SettingsError(
            "A harmony model scores chorales, not a token stream: run eval on the checkpoint alone "
            "(the test split of data/harmony) or give --data a prepared harmony corpus folder"
        )

    def prepare(self, out: Path | None, workers: int) -> dict:

        return prepare_harmony(out or self.default_data, workers)

    def baseline(self, data: str | Path | None = None, order: int | None = None) -> dict:
        """The per-beat lookup and the HMM over chords on the same test split (the data module's report);
        ``test_nats_per_note`` is the better of the two."""
        return baseline_report(data or self.default_data)

    # sampling -------------------------------------------------------------------------------------
    def banned_tokens(self, tokenizer: Any, config: dict) -> torch.Tensor:

        banned = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        banned[[PAD, BOS]] = True
        return banned

    def token_label(self, tokenizer: Any, token_id: int) -> str:
        return tokenizer.label(token_id)

    def card_sample(self, sampler: Any, data: str | Path) -> str:

        return card_sample(sampler.ckpt)

    def end_to_end(self, sampler: Any) -> None:

        card_sample(sampler.ckpt)

    def eval_report(self, checkpoint: Any, options: dict) -> dict | None:

        return eval_harmony(checkpoint, **options)


HARMONY = HarmonyDomain()
