"""Keystroke savings: how many key presses three word suggestions save a person typing the test works.

**The protocol.** The sample is fixed (``typing_sample``): from each test work (sorted by file name),
7,000 characters starting at the first paragraph break after 40% of the work, extended to the end of
its line: about 21,000 characters, the same every run. Each passage is typed from an empty prompt,
character by character. Whenever the next character starts or continues a word (a run of word
characters, ``healing.is_word_char``) and at least two of its characters are still to type, the
predictor shows three suggestions for the text typed so far. If one of them is the word being typed
(the whole word, exactly), the person accepts it with one key press, which inserts the rest of the
word; the character after the word (space, punctuation, newline) is then typed as usual. Every other
character costs one key press. Keystroke savings rate = 1 − key presses ÷ characters.

**The predictors.** Each shipped recurrent model through ``suggest.Suggester.next_words`` (the function
the app calls, with its defaults), and a character Kneser-Ney 7-gram (``baselines.CharKneserNey``, the
project's bits-per-character floor) trained on the training split, whose words come from the same
beam search (``suggest.WordBeam``) run over characters instead of sentencepiece pieces.

The prompt only grows while one types, so the recurrent models' prefix cache re-runs only the pieces
since the last stored boundary at each key; the beam runs once per key press.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from genmodels.core.errors import DataError
from genmodels.core.paths import repo_path
from genmodels.eval.ngram import CharKneserNey, _read_split
from genmodels.infer.healing import PieceTable, is_word_char, load_test_works, trailing_word
from genmodels.infer.suggest import Suggester, Suggestion, WordBeam, _Masks
from genmodels.io.checkpoint import load_checkpoint

PASSAGE_CHARS = 7000
Predictor = Callable[[str], list[str]]


def typing_sample(data_dir: str | Path = "data/text", chars: int = PASSAGE_CHARS) -> list[str]:
    """The fixed passages of the test works that the simulation types."""
    passages = []
    for text in load_test_works(data_dir):
        start = text.find("\n\n", int(len(text) * 0.4))
        start = start + 2 if start >= 0 else 0
        end = text.find("\n", start + chars)
        passages.append(text[start : end + 1 if end >= 0 else len(text)])
    if not passages:
        raise DataError(f"No test works in {repo_path(data_dir) / 'test'}")
    return passages


def simulate(predict: Predictor, text: str, progress: Callable[[int], None] | None = None) -> dict:
    """Type ``text`` with ``predict`` (prompt → suggested words); count key presses under the protocol."""
    i, keys, accepted, queries = 0, 0, 0, 0
    while i < len(text):
        if not is_word_char(text[i]):
            keys, i = keys + 1, i + 1
            continue
        start = i - len(trailing_word(text[:i]))
        end = i
        while end < len(text) and is_word_char(text[end]):
            end += 1
        if end - i >= 2:
            queries += 1
            if text[start:end] in predict(text[:i]):
                keys, accepted, i = keys + 1, accepted + 1, end
                continue
        keys, i = keys + 1, i + 1
        if progress and queries % 500 == 0:
            progress(i)
    return {"chars": len(text), "keystrokes": keys, "accepted": accepted, "queries": queries}


def savings(predict: Predictor, passages: list[str], label: str = "", verbose: bool = False) -> dict:
    """The protocol over every passage: totals and the keystroke savings rate."""
    t0 = time.time()
    total = {"chars": 0, "keystrokes": 0, "accepted": 0, "queries": 0}
    for n, text in enumerate(passages):
        r = simulate(predict, text)
        for key in total:
            total[key] += r[key]
        if verbose:
            print(
                f"[keystrokes] {label} passage {n + 1}/{len(passages)}: {1 - r['keystrokes'] / r['chars']:.4f} "
                f"({time.time() - t0:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
    total["savings_rate"] = 1 - total["keystrokes"] / total["chars"]
    total["seconds"] = round(time.time() - t0, 1)
    return total


# -- predictors -------------------------------------------------------------------------------------
def model_predictor(checkpoint: str | Path, k: int = 3) -> Predictor:
    """The app's next-word suggestions from a text checkpoint."""

    ck = load_checkpoint(repo_path(checkpoint))
    s = Suggester(ck.model, ck.tokenizer)
    return lambda prompt: [x.word for x in s.next_words(prompt, k)]


class CharNgramStepper:
    """A character KN n-gram behind the ``suggest.WordBeam`` interface: pieces are its characters."""

    def __init__(self, model: CharKneserNey):
        self.kn = model
        self.chars = list(model.symbols)
        self.table = PieceTable([c.encode("utf-8") for c in self.chars] + [b""])  # last: unseen, never shown
        self.masks = _Masks(self.table)
        self._cand = np.array([ord(c) for c in self.chars], dtype=np.int64)

    def logprobs(self, contexts: list[str]) -> torch.Tensor:
        """(B, V) log p(next character | last order-1 characters of each context)."""
        out = torch.full((len(contexts), len(self.chars) + 1), -math.inf)
        for b, ctx in enumerate(contexts):
            out[b, :-1] = torch.from_numpy(np.log(self._next_probs(ctx))).float()
        return torch.log_softmax(out, -1)

    def _next_probs(self, context: str) -> np.ndarray:
        """p(c | context) for every training character c: ``KneserNey._position_probs`` specialised to one
        context and every candidate at once (the same recursion, the same tables)."""
        kn = self.kn
        hist = kn._ids(context[-(kn.order - 1) :]) if kn.order > 1 else np.zeros(0, np.int64)
        cand = kn._sym_code[np.arange(len(self.chars))]
        p = np.full(len(self.chars), 1.0 / kn.vocab_size)
        with np.errstate(over="ignore"):
            for n in range(1, kn.order + 1):
                if len(hist) < n - 1:
                    break
                cctx = np.uint64(0)
                for m, i in enumerate(hist[len(hist) - (n - 1) :] if n > 1 else ()):
                    cctx = kn._sym_code[i] if m == 0 else cctx * kn._base + kn._sym_code[i]
                ck = kn._ctx_keys[n]
                j = min(int(np.searchsorted(ck, cctx)), len(ck) - 1)
                if len(ck) == 0 or ck[j] != cctx:
                    continue
                tot, mass = float(kn._ctx_tot[n][j]), float(kn._ctx_mass[n][j])
                g = cctx * kn._base + cand if n > 1 else cand
                keys = kn._keys[n]
                k = np.minimum(np.searchsorted(keys, g), len(keys) - 1)
                c = np.where(keys[k] == g, kn._counts[n][k], 0)
                d = kn.discounts3[n][np.minimum(c, 3)]
                p = np.maximum(c - d, 0.0) / tot + mass / tot * p
        return p

    def step(self, tokens: list[int], state: list[str], rows: list[int]) -> tuple[torch.Tensor, list[str]]:
        contexts = [state[r] + self.chars[t] for t, r in zip(tokens, rows, strict=False)]
        return self.logprobs(contexts), contexts

    def next_words(self, text: str, k: int = 3, beam: int = 8, max_pieces: int = 24) -> list[Suggestion]:
        partial = trailing_word(text)
        ctx = text[-(self.kn.order - 1) :] if self.kn.order > 1 else ""
        wb = WordBeam(self, self.masks, b"", partial.encode("utf-8"), beam)
        wb.run(self.logprobs([ctx]), [ctx], max_pieces, k)
        return wb.suggestions(k)


def ngram_predictor(data_dir: str | Path = "data/text", order: int = 7, k: int = 3) -> Predictor:
    """Top-``k`` words of a character KN ``order``-gram fitted on the training split."""
    kn = CharKneserNey(order=order).fit(_read_split(repo_path(data_dir), "train"))
    stepper = CharNgramStepper(kn)
    return lambda prompt: [x.word for x in stepper.next_words(prompt, k)]


def keystroke_report(
    checkpoints: list[str], data_dir: str | Path = "data/text", ngram: bool = True, verbose: bool = True
) -> dict[str, dict]:
    """Keystroke savings of each checkpoint (and of the character KN 7-gram) on the fixed sample."""
    passages = typing_sample(data_dir)
    out = {}
    if ngram:
        out["KN char 7-gram"] = savings(ngram_predictor(data_dir), passages, "KN 7-gram", verbose)
    for ck in checkpoints:
        out[Path(ck).name] = savings(model_predictor(ck), passages, Path(ck).name, verbose)
    return out
