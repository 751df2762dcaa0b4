"""Text: sentencepiece pieces, documents from .txt files, bits per character."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genmodels.core.errors import CheckpointError, DataError
from genmodels.core.paths import atomic_write
from genmodels.domains.base import LanguageModelDomain
from genmodels.eval.ngram import text_baseline
from genmodels.infer.decoding import TEXT_LENGTH, Settings
from genmodels.learn.data import TokenData, recorded_path, token_stream
from genmodels.learn.text_corpus import load_text_folder, prepare_text
from genmodels.tokenizers.text import TextTokenizer

CARD_PROMPT = "ROMEO:\n"  # the model card's sample continues this
END_TO_END_TOKENS = 400


def text_stream(tokenizer: TextTokenizer, texts: list[str]) -> tuple[torch.Tensor, int]:
    """Documents as one stream (each after a ``<bos>``) and their number of characters."""
    return token_stream([[tokenizer.bos_id] + tokenizer.encode(t) for t in texts]), sum(len(t) for t in texts)


def text_data(folder: str | Path, vocab_size: int = 2048, tokenizer: TextTokenizer | None = None) -> TokenData:
    """Text from ``folder`` (train/valid/test subfolders or any .txt files); its tokenizer.model is used
    when present, otherwise a tokenizer is trained on the train split."""
    folder = Path(folder)
    splits = load_text_folder(folder)
    if tokenizer is None:
        tok_file = folder / TEXT.tokenizer_file
        tokenizer = (
            TextTokenizer.load(tok_file)
            if tok_file.exists()
            else TextTokenizer.train([t for _, t in splits.train], vocab_size=vocab_size)
        )
    train, train_chars = text_stream(tokenizer, [t for _, t in splits.train])
    valid, valid_chars = text_stream(tokenizer, [t for _, t in splits.valid])
    test, test_chars = text_stream(tokenizer, [t for _, t in splits.test])
    info = {
        "data": recorded_path(folder),
        "split": {
            s: {"documents": [n for n, _ in getattr(splits, s)], "chars": c, "tokens": len(x)}
            for s, c, x in (("train", train_chars, train), ("valid", valid_chars, valid), ("test", test_chars, test))
        },
    }
    return TokenData(TEXT, tokenizer, lambda epoch: train, valid, valid_chars, test, test_chars, info)


def _read_text_file(path: str | Path) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"Cannot read {path}: {e}") from e
    if not text:
        raise DataError(f"{path} is empty")
    return text


class TextDomain(LanguageModelDomain):
    name = "text"
    metric = "bits_per_char"
    metric_unit = "char"
    metric_bits = True
    suggests_words = True
    metric_note = (
        "Bits per character are comparable across tokenizers; the floor to beat is a Kneser-Ney "
        "character 7-gram (Baseline below)."
    )
    data_folder = "data/text"
    default_length = TEXT_LENGTH
    length_unit = "tokens"
    tokenizer_file = "tokenizer.model"
    sample_length = f"{END_TO_END_TOKENS} tokens"

    def load_tokenizer(self, folder: Path) -> TextTokenizer:
        f = Path(folder) / self.tokenizer_file
        try:
            return TextTokenizer.load(f)
        except (OSError, RuntimeError) as e:
            raise CheckpointError(f"{f}: not a readable sentencepiece model ({e})") from e

    def save_tokenizer(self, folder: Path, tokenizer: TextTokenizer) -> None:
        atomic_write(Path(folder) / self.tokenizer_file, tokenizer.model_proto)

    def load_data(
        self, folder: str | Path, *, tokenizer: Any = None, vocab_size: int = 2048, augment: bool = True, seed: int = 0
    ) -> TokenData:
        return text_data(folder, vocab_size=vocab_size, tokenizer=tokenizer)  # text has no augmentation

    def stream_from(self, source: str | Path, tokenizer: TextTokenizer) -> tuple[torch.Tensor, int]:
        return text_stream(tokenizer, [_read_text_file(source)])

    def prepare(self, out: Path | None, workers: int) -> dict:

        return prepare_text(out or self.default_data)

    def baseline(self, data: str | Path | None = None, order: int | None = None) -> dict:

        return text_baseline(data or self.default_data, order=7 if order is None else int(order))

    def banned_tokens(self, tokenizer: TextTokenizer, config: dict) -> torch.Tensor:
        # Control tokens are never text: sampling one would end or garble the continuation.
        banned = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        for i in (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, tokenizer.sp.unk_id()):
            if 0 <= i < tokenizer.vocab_size:
                banned[i] = True
        return banned

    def token_label(self, tokenizer: TextTokenizer, token_id: int) -> str:
        return tokenizer.piece(token_id)

    def card_sample(self, sampler: Any, data: str | Path) -> str:

        r = sampler.complete(CARD_PROMPT, length=200, settings=Settings(temperature=0.8, seed=1))[0]
        return CARD_PROMPT + r.continuation

    def end_to_end(self, sampler: Any) -> None:

        sampler.complete(CARD_PROMPT, END_TO_END_TOKENS, Settings(temperature=0.8, seed=1))


TEXT = TextDomain()
