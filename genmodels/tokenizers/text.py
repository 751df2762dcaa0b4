"""The text tokenizer: a sentencepiece model with byte fallback whose encode→decode is the identity.

sentencepiece folds whitespace and normalises Unicode by default; here normalisation is off, runs of
spaces and newlines are kept, and any character outside the vocabulary falls back to its UTF-8 bytes.
One character sentencepiece cannot carry is its own meta-symbol ``▁`` (U+2581), which it decodes as a
space: the tokenizer escapes it (and the escape character itself) with a private-use character.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import sentencepiece as spm

from genmodels.core.errors import DataError

_META = "\u2581"  # sentencepiece's whitespace meta-symbol
_ESC = "\ue000"  # private-use escape character
_ESCAPES = ((_ESC, _ESC + "0"), (_META, _ESC + "1"))


def _escape(text: str) -> str:
    if _ESC in text or _META in text:
        for raw, esc in _ESCAPES:
            text = text.replace(raw, esc)
    return text


def _unescape(text: str) -> str:
    if _ESC not in text:
        return text
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == _ESC and i + 1 < len(text) and text[i + 1] in "01":
            out.append(_ESC if text[i + 1] == "0" else _META)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _chunks(texts: Iterable[str], max_chars: int = 2000) -> Iterator[str]:
    """Training sentences for sentencepiece: paragraphs with their newlines kept, cut to a size it accepts."""
    for text in texts:
        text = _escape(text)
        for para in text.split("\n\n"):
            para = para + "\n\n"
            for i in range(0, len(para), max_chars):
                yield para[i : i + max_chars]


class TextTokenizer:
    """A lossless sentencepiece tokenizer (``encode`` then ``decode`` returns the input exactly)."""

    def __init__(self, model_proto: bytes):
        self.model_proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        self.vocab_size = self.sp.get_piece_size()
        self.bos_id = self.sp.bos_id()
        self.eos_id = self.sp.eos_id()
        self.pad_id = self.sp.pad_id()
        self.start_ids = (self.bos_id,)  # document starts: never a training target
        self._byte_ids = {i for i in range(self.vocab_size) if self.sp.is_byte(i)}

    # construction -------------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 2048, model_type: str = "bpe") -> TextTokenizer:
        """Train on documents. Deterministic for the same input. The vocabulary is raised if needed to
        hold the 256 byte pieces, the control pieces and every distinct character of the input."""
        texts = [t for t in texts if t]
        if not texts:
            raise DataError("No text to train a tokenizer on")
        needed = 256 + 5 + len(set("".join(texts)))
        vocab_size = max(vocab_size, needed + 8)
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=_chunks(texts),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                byte_fallback=True,
                normalization_rule_name="identity",
                remove_extra_whitespaces=False,
                add_dummy_prefix=False,
                allow_whitespace_only_pieces=True,
                split_digits=True,
                user_defined_symbols=["\n"],
                max_sentence_length=16384,
                num_threads=1,
                pad_id=3,
                minloglevel=2,
                input_sentence_size=0,
                shuffle_input_sentence=False,
                hard_vocab_limit=False,
            )
        except RuntimeError as e:
            raise DataError(f"Could not train the tokenizer: {e}") from e
        return cls(model.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextTokenizer:
        return cls(Path(path).read_bytes())

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_bytes(self.model_proto)

    # coding -------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.sp.encode(_escape(text)) if text else []

    def decode(self, ids: Iterable[int]) -> str:
        return _unescape(self.decode_escaped(ids))

    def decode_escaped(self, ids: Iterable[int]) -> str:
        """The decoded text before its escapes are undone (``decode`` is ``_unescape`` of this)."""
        ids = [int(i) for i in ids if int(i) not in (self.bos_id, self.eos_id, self.pad_id)]
        return self.sp.decode(ids) if ids else ""

    def piece(self, token_id: int) -> str:
        """A readable form of one token (for charts): bytes as <0x..>, the meta-space as a space."""
        return _unescape(self.sp.id_to_piece(int(token_id)).replace(_META, " "))

    def is_byte(self, token_id: int) -> bool:
        return int(token_id) in self._byte_ids

    def to_config(self) -> dict:
        return {"kind": "sentencepiece", "vocab_size": self.vocab_size}


class StreamDecoder:
    """Turns a growing list of token ids into text deltas.

    Decoding piece by piece loses spaces and splits multi-byte characters, so each step decodes the
    whole list and emits only the new suffix, holding back what a later piece may still change: a
    trailing incomplete UTF-8 byte sequence, and a trailing escape character (``\ue000`` followed by
    ``1`` is ``▁``, by ``0`` the escape character itself). Emitted text is never retracted.
    """

    def __init__(self, tokenizer: TextTokenizer, prefix_ids: Iterable[int] = ()):
        self.tok = tokenizer
        self.ids = list(prefix_ids)
        self.emitted = tokenizer.decode(self.ids)

    def push(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        raw = self.tok.decode_escaped(self.ids)
        if raw.endswith("\ufffd") and self.tok.is_byte(self.ids[-1]):
            return ""  # wait for the rest of the character's bytes
        if raw.endswith(_ESC):
            return ""  # an escape: the next piece decides which character it stands for
        text = _unescape(raw)
        if not text.startswith(self.emitted):  # cannot happen with a lossless tokenizer; stay safe
            common = os.path.commonprefix([text, self.emitted])
            self.emitted = common
        delta = text[len(self.emitted) :]
        self.emitted = text
        return delta

    def flush(self) -> str:
        text = self.tok.decode(self.ids)
        delta = text[len(self.emitted) :] if text.startswith(self.emitted) else ""
        self.emitted = text
        return delta
