"""Token healing: a prompt that ends in the middle of a word continues that word.

Encoding "To be, or not to b" ends in the piece ``▁b``; a model fed that piece has rarely seen it end
a word's first piece (training text has ``▁be``), so it continues with something odd or starts a new
word. Healing backs off the trailing pieces that cover the word being typed (and the spaces before
it), prefills the rest, and constrains the next pieces to spell out the removed text again: at each
step only pieces whose bytes start with the text still to cover, or that are a prefix of it, are
allowed, until it is covered. The model then picks ``▁be`` itself.

Everything here works on bytes of the tokenizer's *escaped* text (genmodels.tokenizers.text escapes ``▁`` and
its escape character before sentencepiece sees them): every piece is a byte string (a byte-fallback
piece is its one byte, ``▁`` is a space, control pieces are empty and never allowed), and the pieces
of an encoding concatenate to the escaped prompt's UTF-8 bytes exactly. So a multi-byte character
that was split into byte pieces, or an escaped ``▁``, heals like any other text.

``heal`` is what the sampler calls: prompt text → the ids to prefill and the bytes still to produce;
``HealingConstraint`` masks a (B, V) batch of logits step by step until each row has produced them.
``healing_accuracy`` measures how often the greedy continuation of a prompt cut mid-word finishes
the true word, with and without healing.
"""

from __future__ import annotations

import bisect
import math
import random
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from genmodels.core.errors import SeedError, SettingsError
from genmodels.core.paths import repo_path
from genmodels.tokenizers.text import TextTokenizer, _escape, _unescape

MAX_HEAL_PIECES = 8  # a "word" longer than this many pieces (a pasted URL, a run of digits) heals partly
APOSTROPHES = "'\u2019"


def is_word_char(ch: str) -> bool:
    """Letters and digits of any script, combining marks, and apostrophes (o'er, 'tis, speak'st).
    Everything else (spaces, newlines, punctuation, hyphens and dashes, symbols, emoji) ends a word."""
    return ch.isalnum() or ch in APOSTROPHES or unicodedata.category(ch)[0] == "M"


WORD_BYTES = frozenset(b for b in range(256) if b >= 0x80 or is_word_char(chr(b)))
_WORD_BYTES_RUN = re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in sorted(WORD_BYTES)) + b"]*")


def is_word_byte(b: int) -> bool:
    """The byte-level view of ``is_word_char`` used while a word is still being spelled: an ASCII byte is
    classified exactly; a byte of a multi-byte character counts as a word byte until the word is decoded
    (``trim_word`` then cuts the word at its first non-word character)."""
    return b in WORD_BYTES


def lead_word_bytes(p: bytes) -> int:
    """How many bytes at the start of ``p`` are word bytes."""
    return _WORD_BYTES_RUN.match(p).end()


def trailing_word(text: str) -> str:
    """The word being typed at the end of ``text`` (its trailing run of word characters; may be empty)."""
    i = len(text)
    while i > 0 and is_word_char(text[i - 1]):
        i -= 1
    return text[i:]


def trim_word(word: str) -> str:
    """``word`` up to its first non-word character."""
    for i, ch in enumerate(word):
        if not is_word_char(ch):
            return word[:i]
    return word


MAX_CACHED_MASKS = 4096  # typing revisits a few prefixes; the bound keeps a long-running server's memory flat


class PieceTable:
    """The bytes of every piece of a vocabulary and fast look-ups over them (shared by every request)."""

    def __init__(self, pieces: list[bytes]):
        self.pieces = [bytes(p) for p in pieces]
        self.size = len(self.pieces)
        self.banned = torch.tensor([len(p) == 0 for p in self.pieces], dtype=torch.bool)
        self._sorted = sorted((p, i) for i, p in enumerate(self.pieces) if p)
        self._keys = [p for p, _ in self._sorted]
        self._by_bytes: dict[bytes, list[int]] = {}
        for p, i in self._sorted:
            self._by_bytes.setdefault(p, []).append(i)
        # Shared by every request of every session in the process: a lookup both reads and reorders it.
        self._masks: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._masks_lock = threading.Lock()

    @classmethod
    def for_tokenizer(cls, tok: TextTokenizer) -> PieceTable:
        sp, pieces = tok.sp, []
        for i in range(tok.vocab_size):
            piece = sp.id_to_piece(i)
            if sp.is_byte(i):
                pieces.append(bytes([int(piece[3:5], 16)]))
            elif sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
                pieces.append(b"")
            else:
                pieces.append(piece.replace("\u2581", " ").encode("utf-8"))
        return cls(pieces)

    def compatible_ids(self, remaining: bytes) -> list[int]:
        """Ids of the pieces that start with ``remaining`` or are a non-empty prefix of it."""
        lo = bisect.bisect_left(self._keys, remaining)
        ids = []
        for p, i in self._sorted[lo:]:
            if not p.startswith(remaining):
                break
            ids.append(i)
        for n in range(1, len(remaining)):
            ids.extend(self._by_bytes.get(remaining[:n], ()))
        return ids

    def allowed(self, remaining: bytes) -> torch.Tensor:
        """(V,) bool mask of ``compatible_ids(remaining)`` (cached: typing revisits the same few)."""
        with self._masks_lock:
            mask = self._masks.get(remaining)
            if mask is not None:
                self._masks.move_to_end(remaining)
                return mask
        mask = torch.zeros(self.size, dtype=torch.bool)  # built outside the lock: only the table is shared
        ids = self.compatible_ids(remaining)
        if ids:
            mask[torch.tensor(ids)] = True
        with self._masks_lock:
            self._masks[remaining] = mask
            while len(self._masks) > MAX_CACHED_MASKS:
                self._masks.popitem(last=False)
        return mask

    def advance(self, remaining: bytes, token: int) -> bytes:
        """What is left to cover after ``token`` (empty once covered)."""
        p = self.pieces[int(token)]
        if p.startswith(remaining):
            return b""
        if remaining.startswith(p) and p:
            return remaining[len(p) :]
        raise SettingsError(f"piece {p!r} does not continue the healed text {remaining!r}")


@dataclass(frozen=True)
class Healed:
    """A prompt after healing: prefill ``ids`` (no BOS), then produce ``removed`` (escaped UTF-8 bytes)."""

    ids: list[int]
    removed: bytes

    @property
    def removed_text(self) -> str:
        """The characters the continuation will repeat first (drop them from what is shown)."""
        return _unescape(self.removed.decode("utf-8", errors="replace"))


def heal_ids(table: PieceTable, ids: list[int], escaped_tail_bytes: int, max_pieces: int = MAX_HEAL_PIECES) -> Healed:
    """Back off trailing pieces of ``ids`` until they cover the last ``escaped_tail_bytes`` bytes."""
    cut, covered = len(ids), 0
    while cut > 0 and covered < escaped_tail_bytes and len(ids) - cut < max_pieces:
        cut -= 1
        covered += len(table.pieces[ids[cut]])
    return Healed(list(ids[:cut]), b"".join(table.pieces[i] for i in ids[cut:]))


def heal_tail(text: str) -> str:
    """The part of ``text`` healing re-spells: the word being typed and the spaces before it (a piece
    such as ``▁be`` spans both). A prompt ending in punctuation or a newline has no tail."""
    word = trailing_word(text)
    i = len(text) - len(word)
    while i > 0 and text[i - 1] == " ":
        i -= 1
    return text[i:]


def heal(
    tokenizer: TextTokenizer, text: str, table: PieceTable | None = None, max_pieces: int = MAX_HEAL_PIECES
) -> Healed:
    """Prompt text → (ids to prefill, bytes the continuation must start with). ``encode`` of the prompt
    is ``ids`` followed by the pieces of ``removed``."""
    if not isinstance(text, str):
        raise SeedError("The prompt must be text")
    table = table or table_for(tokenizer)
    ids = tokenizer.encode(text)
    tail = _escape(heal_tail(text)).encode("utf-8")
    return heal_ids(table, ids, len(tail), max_pieces)


_TABLES: dict[bytes, PieceTable] = {}
_TABLES_LOCK = threading.Lock()


def table_for(tokenizer: TextTokenizer) -> PieceTable:
    """The (cached) piece table of a tokenizer: one per tokenizer in the process, whichever thread asks first."""
    key = tokenizer.model_proto
    with _TABLES_LOCK:
        if key not in _TABLES:
            _TABLES[key] = PieceTable.for_tokenizer(tokenizer)
        return _TABLES[key]


class HealingConstraint:
    """Masks a (B, V) batch of logits until every row has spelled out the removed text again.

    The sampler's loop: ``logits = c.apply(logits)``, choose tokens, ``c.advance(tokens)``; once
    ``c.active`` is False the constraint costs nothing."""

    def __init__(self, table: PieceTable, removed: bytes, batch: int = 1):
        self.table = table
        self.removed = bytes(removed)
        self.remaining = [self.removed] * batch

    @property
    def removed_text(self) -> str:
        """The prompt's characters that the first pieces spell again (not new text: skip them when shown)."""
        return Healed([], self.removed).removed_text

    @property
    def active(self) -> bool:
        return any(self.remaining)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return logits
        rows = [self.table.allowed(r) if r else torch.ones(self.table.size, dtype=torch.bool) for r in self.remaining]
        return logits.masked_fill(~torch.stack(rows), -math.inf)

    def advance(self, tokens) -> None:
        tokens = tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)
        self.remaining = [self.table.advance(r, t) if r else r for r, t in zip(self.remaining, tokens, strict=False)]


def prepare_prompt(tokenizer: TextTokenizer, text: str, batch: int = 1) -> tuple[list[int], HealingConstraint]:
    """For the sampler: the ids to prefill (no BOS) and the constraint for the first pieces. The text it
    then decodes starts with ``Healed.removed_text`` again, which is part of the prompt, not new text."""
    table = table_for(tokenizer)
    h = heal(tokenizer, text, table)
    return h.ids, HealingConstraint(table, h.removed, batch)


# measurement ----------------------------------------------------------------------------------
def mid_word_cuts(texts: list[str], n: int, seed: int = 0, min_context: int = 200) -> list[tuple[int, int]]:
    """``n`` random (text index, position) pairs, each strictly inside a word (a word character on both
    sides), at least ``min_context`` characters into the text; the same for the same seed."""
    rng = random.Random(seed)
    weights = [max(len(t) - min_context, 0) for t in texts]
    cuts: list[tuple[int, int]] = []
    while len(cuts) < n:
        ti = rng.choices(range(len(texts)), weights)[0]
        pos = rng.randrange(min_context, len(texts[ti]))
        if is_word_char(texts[ti][pos - 1]) and is_word_char(texts[ti][pos]):
            cuts.append((ti, pos))
    return cuts


def word_at(text: str, pos: int) -> str:
    """The whole word that contains the character boundary ``pos``."""
    a, b = pos, pos
    while a > 0 and is_word_char(text[a - 1]):
        a -= 1
    while b < len(text) and is_word_char(text[b]):
        b += 1
    return text[a:b]


@torch.no_grad()
def greedy_word(model, tokenizer: TextTokenizer, prompt: str, healing: bool, max_pieces: int = 12) -> str:
    """The word the greedy continuation of ``prompt`` gives to the word that ``prompt`` ends inside."""
    table = table_for(tokenizer)
    h = heal(tokenizer, prompt, table) if healing else Healed(tokenizer.encode(prompt), b"")
    logits, state = model.prefill(torch.tensor([[tokenizer.bos_id] + h.ids]))
    c = HealingConstraint(table, h.removed, 1)
    out = b""
    for _ in range(max_pieces):
        tok = c.apply(logits.masked_fill(table.banned, -math.inf)).argmax(-1)
        c.advance(tok)
        out += table.pieces[int(tok)]
        new = out[len(h.removed) :].decode("utf-8", errors="ignore") if len(out) >= len(h.removed) else ""
        if new and not is_word_char(new[-1]):
            break
        logits, state = model.step(tok, state)
    new = out[len(h.removed) :].decode("utf-8", errors="ignore") if len(out) >= len(h.removed) else ""
    return trailing_word(prompt) + trim_word(_unescape(new))


def healing_accuracy(
    model, tokenizer: TextTokenizer, texts: list[str], n: int = 2000, seed: int = 0, context_chars: int = 400
) -> dict:
    """Share of ``n`` mid-word cut points where the greedy continuation's first word is the true word,
    with and without healing (prompt: up to ``context_chars`` characters before the cut)."""
    cuts = mid_word_cuts(texts, n, seed)
    hits = {"healed": 0, "plain": 0}
    for ti, pos in cuts:
        text = texts[ti]
        prompt, truth = text[max(0, pos - context_chars) : pos], word_at(text, pos)
        hits["healed"] += greedy_word(model, tokenizer, prompt, True) == truth
        hits["plain"] += greedy_word(model, tokenizer, prompt, False) == truth
    return {"cuts": n, "seed": seed, "with_healing": hits["healed"] / n, "without_healing": hits["plain"] / n}


def load_test_works(data_dir: str | Path = "data/text") -> list[str]:
    """The test works (hamlet, tempest, sonnets in the default corpus), sorted by file name."""

    files = sorted((repo_path(data_dir) / "test").glob("*.txt"))
    return [f.read_text(encoding="utf-8") for f in files]
