"""Predictive typing: the most likely next words and the rest of the line, fast enough for every keystroke.

**What a word is.** A run of word characters (``healing.is_word_char``: letters and digits of any
script, combining marks, apostrophes). A space, newline, punctuation mark, hyphen or dash, symbol or
emoji ends it. The word being typed is the prompt's trailing run of word characters (empty after a
space or punctuation); a suggestion is a whole word that starts with it. When the prompt ends between
words, the suggestion is the next word on the same line: only spaces may come before it.

**Beam over pieces.** Token healing backs off the pieces under the word being typed (``healing``),
then a beam search extends the prompt piece by piece; each hypothesis is the byte string generated
so far. A hypothesis whose word is complete so far ends there with the probability that the next piece
starts with a non-word byte (summed over the vocabulary in one masked ``logsumexp``); a piece that
holds the end of a word and then a boundary (``ing,``) ends it inside the piece. Finished hypotheses
that spell the same word are merged by summing their probabilities (``▁be`` and ``▁b`` + ``e``).
Probabilities are joint: P(word, then a boundary | prompt).

**Latency.** The beam runs as one batch through ``model.step``. The prompt keeps its last
``CONTEXT_TOKENS`` tokens, the window's start moving in steps of ``WINDOW_STEP`` tokens so that the
prefix stays the same while one types. Prefilled states are kept in an LRU keyed on the token-id
prefix at every ``CHUNK`` tokens and at the end of each prompt: typing one more character re-runs only
the pieces since the last stored boundary.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import torch

from genmodels.core.errors import SeedError, SettingsError
from genmodels.core.paths import SHIPPED_TEXT_MODELS, repo_path
from genmodels.infer.healing import (
    Healed,
    PieceTable,
    heal_ids,
    heal_tail,
    is_word_byte,
    lead_word_bytes,
    mid_word_cuts,
    table_for,
    trailing_word,
    trim_word,
    word_at,
)
from genmodels.infer.threads import single_threaded
from genmodels.io.checkpoint import load_checkpoint
from genmodels.nn.mixture import MixtureLanguageModel
from genmodels.nn.rnn import RNNLanguageModel
from genmodels.tokenizers.text import TextTokenizer, _escape, _unescape

CONTEXT_TOKENS = 512
WINDOW_STEP = 128
CHUNK = 32
MAX_PROMPT_CHARS = 8 * CONTEXT_TOKENS  # longer prompts are cut (at a stable place) before encoding
MAX_K, MAX_BEAM, MAX_PIECES = 20, 64, 32
GHOST_CHARS = 80
LIVE_MASS_STOP = math.log(0.05)


@dataclass(frozen=True)
class Suggestion:
    word: str  # the whole word, including what was already typed of it
    prob: float  # P(this word, then a word boundary | prompt)
    insert: str  # what to append to the prompt to complete it (may start with spaces)


class Stepper(Protocol):
    """What the beam needs from a predictor: log-probabilities after a prefix and after one more piece."""

    table: PieceTable

    def step(self, tokens: list[int], state, rows: list[int]) -> tuple[torch.Tensor, object]: ...


# -- the beam -------------------------------------------------------------------------------------
class _Masks:
    """Static masks over a piece table for a hypothesis inside a word or before the next one."""

    def __init__(self, table: PieceTable):
        ok = ~table.banned
        self.lead = lead = [lead_word_bytes(p) for p in table.pieces]
        n = [len(p) for p in table.pieces]
        self.extend = torch.tensor([0 < a == b for a, b in zip(lead, n, strict=False)]) & ok
        self.end = torch.tensor([a == 0 and b > 0 for a, b in zip(lead, n, strict=False)]) & ok
        self.mixed = torch.tensor([0 < a < b for a, b in zip(lead, n, strict=False)]) & ok
        self.before_word = torch.tensor([_starts_word_after_spaces(p) for p in table.pieces]) & ok


def _starts_word_after_spaces(p: bytes) -> bool:
    q = p.lstrip(b" ")
    return bool(p) and (not q or is_word_byte(q[0]))


@dataclass
class _Hyp:
    logp: float
    gen: bytes  # bytes generated after the healed prefix
    row: int


class WordBeam:
    """One beam search to the next word boundary. ``removed``: the healed bytes the continuation must
    spell first; ``partial``: the (escaped UTF-8) word being typed, already part of the prompt."""

    def __init__(self, stepper: Stepper, masks: _Masks, removed: bytes, partial: bytes, beam: int):
        self.s, self.m, self.table = stepper, masks, stepper.table
        self.removed, self.partial, self.beam = removed, partial, beam
        self.finished: dict[bytes, tuple[float, bytes]] = {}  # word → (log prob, gen of its best hypothesis)

    def _word(self, gen: bytes) -> tuple[str, bytes]:
        """('heal' | 'pre' | 'in' | 'done' | 'dead', word bytes so far) for a hypothesis."""
        if len(gen) < len(self.removed):
            return "heal", b""
        after = gen[len(self.removed) :]
        if not self.partial:
            stripped = after.lstrip(b" ")
            if not stripped:
                return "pre", b""
            after = stripped
        text = self.partial + after
        n = lead_word_bytes(text)
        if n == len(text):
            return "in", text
        return ("done", text[:n]) if n else ("dead", b"")

    def _finish(self, word: bytes, logp: float, gen: bytes) -> None:
        old = self.finished.get(word)
        if old is None:
            self.finished[word] = (logp, gen)
        else:
            hi, lo = max(old[0], logp), min(old[0], logp)
            self.finished[word] = (hi + math.log1p(math.exp(lo - hi)), gen if logp > old[0] else old[1])

    def _candidates(self, hyps: list[_Hyp], lp: torch.Tensor) -> list[tuple[float, bytes, int, int]]:
        """Live (logp, gen, token, parent row) extensions; finished words are recorded on the way."""
        kinds = [self._word(h.gen) for h in hyps]
        inside = [i for i, (k, _) in enumerate(kinds) if k == "in"]
        out: list[tuple[float, bytes, int, int]] = []
        if inside:
            self._inside([hyps[i] for i in inside], [kinds[i][1] for i in inside], lp[inside], out)
        for i, (kind, _) in enumerate(kinds):
            if kind in ("heal", "pre"):
                h = hyps[i]
                mask = self.table.allowed(self.removed[len(h.gen) :]) if kind == "heal" else self.m.before_word
                allowed = lp[i].masked_fill(~mask | self.table.banned, -math.inf)
                top = torch.topk(allowed, min(self.beam, self.table.size))
                for v, t in zip(top.values.tolist(), top.indices.tolist(), strict=False):
                    self._extend(h, v, t, out)
        return out

    def _inside(self, hyps: list[_Hyp], words: list[bytes], lp: torch.Tensor, out: list) -> None:
        """Hypotheses inside a word: it ends here (any boundary piece, summed), ends inside the next piece
        (``ing,``), or goes on (the best ``beam`` extensions over all of these hypotheses together)."""
        base = torch.tensor([h.logp for h in hyps])[:, None]
        end = (torch.logsumexp(lp.masked_fill(~self.m.end, -math.inf), -1) + base[:, 0]).tolist()
        mix = torch.topk(lp.masked_fill(~self.m.mixed, -math.inf) + base, min(4, self.beam, self.table.size), -1)
        pieces, lead = self.table.pieces, self.m.lead
        for j, h in enumerate(hyps):
            self._finish(words[j], end[j], h.gen)
            for v, t in zip(mix.values[j].tolist(), mix.indices[j].tolist(), strict=False):
                if v > -math.inf:
                    self._finish(words[j] + pieces[t][: lead[t]], v, h.gen + pieces[t])
        ext = (lp.masked_fill(~self.m.extend, -math.inf) + base).flatten()
        top = torch.topk(ext, min(self.beam, ext.numel()))
        V = lp.size(1)
        for v, f in zip(top.values.tolist(), top.indices.tolist(), strict=False):
            if v > -math.inf:
                h = hyps[f // V]
                out.append((v, h.gen + pieces[f % V], f % V, h.row))

    def _extend(self, h: _Hyp, v: float, t: int, out: list) -> None:
        if v == -math.inf:
            return
        gen = h.gen + self.table.pieces[t]
        kind, word = self._word(gen)
        if kind == "done":
            self._finish(word, h.logp + v, gen)
        elif kind != "dead":
            out.append((h.logp + v, gen, t, h.row))

    def run(self, logprobs: torch.Tensor, state, max_pieces: int, k: int) -> None:
        hyps = [_Hyp(0.0, b"", 0)]
        for step in range(max_pieces + 1):
            cands = self._candidates(hyps, logprobs)
            if step == max_pieces or not cands:
                return
            cands.sort(key=lambda c: -c[0])
            cands = cands[: self.beam]
            best = sorted((lp for lp, _ in self.finished.values()), reverse=True)
            live = torch.logsumexp(torch.tensor([c[0] for c in cands]), 0).item()
            if len(best) >= k and live < best[k - 1] + LIVE_MASS_STOP:
                return  # all live hypotheses together could change the k-th word's probability by < 5%
            hyps = [_Hyp(lp, gen, r) for r, (lp, gen, _, _) in enumerate(cands)]
            logprobs, state = self.s.step([c[2] for c in cands], state, [c[3] for c in cands])

    def suggestions(self, k: int) -> list[Suggestion]:
        out: dict[str, Suggestion] = {}
        for word, (lp, gen) in sorted(self.finished.items(), key=lambda kv: -kv[1][0]):
            try:
                text = _unescape(word.decode("utf-8"))
                insert = _unescape(gen[len(self.removed) :].decode("utf-8", errors="ignore"))
            except UnicodeDecodeError:
                continue  # a word cut inside a multi-byte character
            text = trim_word(text)
            if not text or text in out:
                continue
            if self.partial:
                insert = text[len(_unescape(self.partial.decode("utf-8", errors="ignore"))) :]
            else:
                insert = insert[: len(insert) - len(insert.lstrip(" "))] + text
            out[text] = Suggestion(text, math.exp(lp), insert)
            if len(out) == k:
                break
        return list(out.values())


# -- the recurrent models ---------------------------------------------------------------------------
def _ceil_to(n: int, step: int) -> int:
    return -(-n // step) * step


class Suggester:
    """Suggestions from one text model: its piece table, masks and prefix cache. Safe to share between
    threads (the cache is locked; the model's step path only reads its weights)."""

    def __init__(self, model: RNNLanguageModel, tokenizer: TextTokenizer, cache_size: int = 1024):
        if not isinstance(tokenizer, TextTokenizer):
            raise SettingsError("Suggestions need a text model (a sentencepiece tokenizer)")
        if (
            not isinstance(model, RNNLanguageModel | MixtureLanguageModel)
            or model.config.vocab_size != tokenizer.vocab_size
        ):
            raise SettingsError("Suggestions need the recurrent text model that belongs to this tokenizer")
        self.model, self.tok = model.eval(), tokenizer
        self.table = table_for(tokenizer)
        self.masks = _Masks(self.table)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[int, ...], tuple[torch.Tensor, object]] = OrderedDict()
        self._lock = threading.Lock()
        model.prepare_step()

    # prompt → healed window ----------------------------------------------------------------------
    def context(self, text: str) -> tuple[Healed, bytes]:
        """(the healed prompt, its ids cut to the window; the word being typed as escaped UTF-8)."""
        h = heal_ids(self.table, self._encode(text), len(_escape(heal_tail(text)).encode("utf-8")))
        return Healed(self._window(h.ids), h.removed), _escape(trailing_word(text)).encode("utf-8")

    def _encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise SeedError("The prompt must be text")
        if len(text) > MAX_PROMPT_CHARS:  # cut where it stays put while one types on
            text = text[_ceil_to(len(text) - MAX_PROMPT_CHARS, 1024) :]
        return self.tok.encode(text)

    @staticmethod
    def _window(ids: list[int]) -> list[int]:
        """The last CONTEXT_TOKENS or fewer ids, starting at a multiple of WINDOW_STEP (stable while typing)."""
        return ids[_ceil_to(len(ids) - CONTEXT_TOKENS, WINDOW_STEP) :] if len(ids) > CONTEXT_TOKENS else ids

    # model access ---------------------------------------------------------------------------------
    def _logprobs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits.masked_fill(self.table.banned, -math.inf), -1)

    def _lookup(self, ids: list[int]) -> tuple[int, tuple | None]:
        n = len(ids)
        with self._lock:
            for k in [*range(n, max(n - 8, 0), -1), *range((n - 1) // CHUNK * CHUNK, 0, -CHUNK)]:
                hit = self._cache.get(tuple(ids[:k]))
                if hit is not None:
                    self._cache.move_to_end(tuple(ids[:k]))
                    return k, hit
        return 0, None

    def _store(self, key: tuple[int, ...], value: tuple) -> None:
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    @torch.no_grad()
    def prefill(self, ids: list[int]) -> tuple[torch.Tensor, object]:
        """(1, V) log-probabilities and the state after ``ids``, resuming from the longest cached prefix."""
        k, hit = self._lookup(ids)
        lp, state = hit if hit is not None else (None, None)
        for b in [*range(_ceil_to(k + 1, CHUNK), len(ids), CHUNK), len(ids)]:
            if b <= k:
                continue
            logits, state = self.model.prefill(torch.tensor([ids[k:b]]), state)
            lp = self._logprobs(logits)
            self._store(tuple(ids[:b]), (lp, state))
            k = b
        return lp, state

    @torch.no_grad()
    def step(self, tokens: list[int], state, rows: list[int]) -> tuple[torch.Tensor, object]:
        idx = torch.tensor(rows)
        state = tuple(s.index_select(1, idx) for s in state) if isinstance(state, tuple) else state.index_select(1, idx)
        logits, state = self.model.step(torch.tensor(tokens), state)
        return self._logprobs(logits), state

    # the two suggestions ----------------------------------------------------------------------------
    def next_words(self, text: str, k: int = 3, beam: int = 8, max_pieces: int = 8) -> list[Suggestion]:
        """The ``k`` most likely whole words at the cursor (completing the word being typed, if any)."""
        _check_ints(k=(k, MAX_K), beam=(beam, MAX_BEAM), max_pieces=(max_pieces, MAX_PIECES))
        h, partial = self.context(text)
        if len(partial) > MAX_WORD_BYTES:
            return []
        lp, state = self.prefill([self.tok.bos_id] + h.ids)
        wb = WordBeam(self, self.masks, h.removed, partial, max(beam, k))
        wb.run(lp, state, max_pieces, k)
        return wb.suggestions(k)

    def suggest(self, text: str, k: int = 3, max_chars: int = GHOST_CHARS) -> tuple[list[Suggestion], str]:
        """What the typing view shows after a keystroke: the ``k`` next words and the ghost text.

        When the word before the cursor is most likely complete as typed, the words are the ones after it
        (their ``insert`` starts with a space): offering the typed word again, or unlikely extensions of it,
        is of no use to someone who has finished it. The ghost text stays the most likely rest of the line
        (it may start with punctuation)."""
        with single_threaded():  # a keystroke's few small steps: threads would wait on each other (threads.py)
            words = self.next_words(text, k)
            ghost = self._ghost_after(text, words[0].insert if words else None, max_chars)
            if words and not words[0].insert:
                words = [Suggestion(w.word, w.prob, " " + w.insert) for w in self.next_words(text + " ", k)]
        return words, ghost

    def ghost_text(self, text: str, max_chars: int = GHOST_CHARS) -> str:
        """The most likely rest of the line: the beam's best word, then greedy pieces to the end of the line
        (without a word: greedy healed pieces). Text to show after the cursor."""
        _check_ints(max_chars=(max_chars, 1000))
        words = self.next_words(text, 1)
        return self._ghost_after(text, words[0].insert if words else None, max_chars)

    def _ghost_after(self, text: str, insert: str | None, max_chars: int) -> str:
        _check_ints(max_chars=(max_chars, 1000))
        if insert is None:
            h, _ = self.context(text)
            return self._greedy_line(h.ids, h.removed, max_chars)
        window = self._window(self._encode(text + insert))
        return (insert + self._greedy_line(window, b"", max_chars - len(insert)))[:max_chars]

    @torch.no_grad()
    def _greedy_line(self, ids: list[int], removed: bytes, max_chars: int) -> str:
        """Greedy pieces after ``ids`` (spelling ``removed`` first) up to a newline or ``max_chars``."""
        if max_chars <= 0:
            return ""
        lp, state = self.prefill([self.tok.bos_id] + ids)
        remaining, gen, n = removed, b"", len(removed)
        for _ in range(max_chars + MAX_HEAL_STEPS):
            if remaining:
                lp = lp.masked_fill(~self.table.allowed(remaining), -math.inf)
            tok = int(lp.argmax(-1))
            remaining = self.table.advance(remaining, tok) if remaining else b""
            gen += self.table.pieces[tok]
            new = gen[n:].decode("utf-8", errors="ignore") if len(gen) >= n else ""
            if "\n" in new or len(new) >= max_chars:
                break
            lp, state = self.step([tok], state, [0])
        new = gen[n:].decode("utf-8", errors="ignore") if len(gen) >= n else ""
        return _unescape(new.split("\n", 1)[0])[:max_chars]


MAX_WORD_BYTES = 256  # a "word" longer than this is not one a person types: no suggestions
MAX_HEAL_STEPS = 8


def _check_ints(**limits: tuple[int, int]) -> None:
    for name, (v, hi) in limits.items():
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= hi:
            raise SettingsError(f"{name} must be a whole number from 1 to {hi}; got {v!r}")


_SUGGESTERS: weakref.WeakKeyDictionary[RNNLanguageModel, Suggester] = weakref.WeakKeyDictionary()
_SUGGESTERS_LOCK = threading.Lock()


def suggester_for(model: RNNLanguageModel, tokenizer: TextTokenizer) -> Suggester:
    """The shared ``Suggester`` of a model (one prefix cache per model, kept while the model lives)."""
    with _SUGGESTERS_LOCK:
        s = _SUGGESTERS.get(model)
        if s is None or s.tok is not tokenizer:
            s = _SUGGESTERS[model] = Suggester(model, tokenizer)
        return s


def next_words(
    model: RNNLanguageModel, tokenizer: TextTokenizer, prompt_text: str, k: int = 3, beam: int = 8, max_pieces: int = 8
) -> list[Suggestion]:
    """The ``k`` most likely whole next words (or completions of the word being typed), most likely first."""
    return suggester_for(model, tokenizer).next_words(prompt_text, k, beam, max_pieces)


def word_distribution(
    model: RNNLanguageModel, tokenizer: TextTokenizer, prompt_text: str, k: int = 12, beam: int = 12
) -> list[tuple[str, float]]:
    """The ``k`` likeliest next whole words and their probabilities, most likely first. When the text ends
    inside a word that is most likely unfinished, the words complete it, with probabilities given the letters
    typed (shares of the words found, which hold nearly all of that mass); when the last word is most likely
    complete as typed (as `Suggester.suggest` decides), the words are the ones after it."""
    found = next_words(model, tokenizer, prompt_text, k, beam)
    inside = bool(prompt_text) and (prompt_text[-1].isalnum() or prompt_text[-1] in "'\u2019")
    if inside and found and not found[0].insert:  # the word is finished: what comes after it
        found, inside = next_words(model, tokenizer, prompt_text + " ", k, beam), False
    total = sum(s.prob for s in found) if inside else 1.0
    return [(s.word, s.prob / total if total > 0 else 0.0) for s in found]


def suggest(
    model: RNNLanguageModel, tokenizer: TextTokenizer, prompt_text: str, k: int = 3, max_chars: int = GHOST_CHARS
) -> tuple[list[Suggestion], str]:
    """One keystroke's suggestions: the ``k`` next words and the ghost text (the rest of the line)."""
    return suggester_for(model, tokenizer).suggest(prompt_text, k, max_chars)


def ghost_text(
    model: RNNLanguageModel, tokenizer: TextTokenizer, prompt_text: str, max_chars: int = GHOST_CHARS
) -> str:
    """The most likely rest of the line after ``prompt_text`` (at most ``max_chars`` characters)."""
    return suggester_for(model, tokenizer).ghost_text(prompt_text, max_chars)


# -- latency benchmark ------------------------------------------------------------------------------
TYPING_SCRIPT = "data/typing/hamlet-to-be.txt"  # ships with the repository: latency needs no prepared corpus
TYPING_CONTEXT_CHARS = 2000  # the script file holds this much text before the typed speech, then 400 typed


def typing_script(context_chars: int = TYPING_CONTEXT_CHARS, typed_chars: int = 400) -> tuple[str, str]:
    """A fixed typing simulation: (text already there, text typed key by key): Hamlet's "To be, or not
    to be" speech typed after the ``context_chars`` characters before it (at most 2,000 and 400)."""

    script = (repo_path(TYPING_SCRIPT)).read_text(encoding="utf-8")
    at = TYPING_CONTEXT_CHARS
    return script[max(0, at - context_chars) : at], script[at : at + typed_chars]


def suggest_latency(
    checkpoints: tuple[str, ...] = SHIPPED_TEXT_MODELS,
    typed_chars: int = 400,
) -> dict[str, dict]:
    """Server-side time from a keystroke to both suggestions (three next words + the ghost text), over the
    fixed typing script, with a fresh prefix cache: {checkpoint name: median_ms, p95_ms, keystrokes}."""

    before, typed = typing_script(typed_chars=typed_chars)
    out = {}
    for path in checkpoints:
        ck = load_checkpoint(path)
        s = Suggester(ck.model, ck.tokenizer)
        wall, cpu = [], []
        for i in range(1, len(typed) + 1):
            t0, c0 = time.perf_counter(), time.thread_time()
            s.suggest(before + typed[:i])
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
        out[ck.name] = {
            "median_ms": _pct(wall, 50),
            "p95_ms": _pct(wall, 95),
            "max_ms": _pct(wall, 100),
            "cpu_median_ms": _pct(cpu, 50),
            "cpu_p95_ms": _pct(cpu, 95),
            "keystrokes": len(wall),
        }
    return out


def beam_accuracy(
    model: RNNLanguageModel,
    tokenizer: TextTokenizer,
    texts: list[str],
    n: int = 2000,
    seed: int = 0,
    context_chars: int = 400,
) -> float:
    """``healing.healing_accuracy``'s cut points, scored with the top suggestion instead of greedy pieces."""

    s = Suggester(model, tokenizer)
    cuts = mid_word_cuts(texts, n, seed)
    hits = 0
    for ti, pos in cuts:
        top = s.next_words(texts[ti][max(0, pos - context_chars) : pos], 1)
        hits += bool(top) and top[0].word == word_at(texts[ti], pos)
    return hits / n


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q / 100 * len(xs)))], 1)
