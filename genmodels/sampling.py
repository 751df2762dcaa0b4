"""Sampling from a loaded checkpoint: temperature (0 = greedy), top-k, top-p, a per-request random seed,
N candidates as one batch, streaming text deltas, next-token probabilities, and grammar-masked melodies.

The seed is run through the model in one fused call (``prefill``); each new token then costs one
``model.step``. Every request owns a ``torch.Generator``, so concurrent requests never share random
state: the same seed and inputs give the same output, whoever else is generating.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genmodels.checkpoint import Checkpoint, load_checkpoint
from genmodels.errors import SeedError, SettingsError
from genmodels.model import expand_state
from genmodels.melody import MAX_DURATION_TOKEN, PITCH_RANGE
from genmodels.text import StreamDecoder

MAX_TEMPERATURE = 5.0
MAX_CANDIDATES = 16
MAX_TEXT_TOKENS = 2000
MAX_BARS = 128
CONTEXT_TOKENS = 1024  # longer text seeds keep only their last CONTEXT_TOKENS tokens
CONTEXT_BARS = 64  # longer melody seeds keep only their last CONTEXT_BARS bars
MAX_SEED_CHARS = 100_000


@dataclass(frozen=True)
class Settings:
    temperature: float = 0.8
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off
    seed: int = 0
    n: int = 1

    def checked(self, vocab_size: int) -> "Settings":
        """Validated settings (top-k above the vocabulary is clamped to it); SettingsError otherwise."""
        t, k, p = self.temperature, self.top_k, self.top_p
        if not isinstance(t, (int, float)) or math.isnan(t) or not 0 <= t <= MAX_TEMPERATURE:
            raise SettingsError(f"Temperature must be a number from 0 (greedy) to {MAX_TEMPERATURE}; got {t}")
        if not isinstance(k, int) or k < 0:
            raise SettingsError(f"Top-k must be 0 (off) or a positive whole number; got {k}")
        if not isinstance(p, (int, float)) or math.isnan(p) or not 0 < p <= 1:
            raise SettingsError(f"Top-p must be above 0 and at most 1 (1 = off); got {p}")
        if not isinstance(self.n, int) or not 1 <= self.n <= MAX_CANDIDATES:
            raise SettingsError(f"Candidates must be from 1 to {MAX_CANDIDATES}; got {self.n}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise SettingsError(f"The random seed must be a whole number from 0 to 2^63-1; got {self.seed}")
        return Settings(float(t), min(k, vocab_size), float(p), self.seed, self.n)


def choose(logits: torch.Tensor, s: Settings, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row of (B, V) logits; return (tokens, their probability under the model at T=1).

    Temperature scales the logits, top-k keeps the k largest, top-p keeps the smallest set of tokens
    (most likely first) whose probability reaches p. Sampling draws one uniform number per row and
    inverts the cumulative distribution: the distribution of ``torch.multinomial`` at a fraction of
    its cost (it draws no number per vocabulary entry)."""
    B, V = logits.shape
    if s.temperature < 1e-4:
        tokens = logits.argmax(-1)
    else:
        z = logits / s.temperature if s.temperature != 1 else logits
        if 0 < s.top_k < V:
            kth = torch.topk(z, s.top_k, dim=-1).values[:, -1:]
            z = z.masked_fill(z < kth, -math.inf)
        u = torch.rand(B, 1, generator=gen, dtype=z.dtype)
        if s.top_p < 1.0:
            z, order = torch.sort(z, descending=True, dim=-1)
            p = torch.softmax(z, dim=-1)
            cdf = p.cumsum(-1)
            keep = (cdf - p < s.top_p).sum(-1, keepdim=True)  # at least one token
            pos = torch.searchsorted(cdf, u * cdf.gather(1, keep - 1), right=True)
            tokens = order.gather(1, torch.minimum(pos, keep - 1)).squeeze(1)
        else:
            cdf = torch.softmax(z, dim=-1).cumsum(-1)
            tokens = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(1).clamp_(max=V - 1)
    logp = logits.gather(1, tokens[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)
    return tokens, logp.exp()


@dataclass
class TextResult:
    seed: str
    continuation: str
    tokens: list[tuple[str, float]] = field(default_factory=list)  # (text piece, model probability)


@dataclass
class MelodyResult:
    seed: object  # Melody
    full: object  # Melody: seed + continuation
    continuation: object  # Melody: the generated bars alone


class TextStream:
    """Streaming text generation: iterate for deltas; ``results`` is filled when the stream ends."""

    def __init__(self, g: "Generator", seed: str, ids: list[int], length: int, s: Settings):
        self.g, self.seed, self.ids, self.length, self.s = g, seed, ids, length, s
        self.results: list[TextResult] = []

    def __iter__(self) -> Iterator[list[str]]:
        g, s = self.g, self.s
        gen = torch.Generator().manual_seed(s.seed)
        logits, state = g._prefill(self.ids, s.n)
        decoders = [StreamDecoder(g.tok, self.ids) for _ in range(s.n)]
        pieces: list[list[tuple[str, float]]] = [[] for _ in range(s.n)]
        pending: list[float | None] = [None] * s.n  # lowest probability of tokens not yet shown as text
        for _ in range(self.length):
            tokens, probs = choose(logits.masked_fill(g._banned, -math.inf), s, gen)
            deltas = [d.push(t) for d, t in zip(decoders, tokens.tolist())]
            for i, (delta, p) in enumerate(zip(deltas, probs.tolist())):
                p = p if pending[i] is None else min(p, pending[i])
                if delta:
                    pieces[i].append((delta, p))
                    pending[i] = None
                else:
                    pending[i] = p
            yield deltas
            logits, state = g.model.step(tokens, state)
        tails = [d.flush() for d in decoders]
        for i, t in enumerate(tails):
            if t:
                pieces[i].append((t, pending[i] or 0.0))
        if any(tails):
            yield tails
        seed_text = g.tok.decode(self.ids)
        self.results = [TextResult(self.seed, d.emitted[len(seed_text):], pieces[i]) for i, d in enumerate(decoders)]


def continuation_of(full, seed_end: int):
    """The notes generated after the seed, moved back by whole bars so the bar lines stay in place."""
    shift = seed_end // full.bar_ticks * full.bar_ticks
    notes = [type(n)(n.pitch, n.start - shift, n.duration) for n in full.notes if n.start >= seed_end]
    return dataclasses.replace(full, notes=notes)


class Generator:
    """Sampling over one loaded checkpoint (text or melody). Safe to share between threads."""

    def __init__(self, checkpoint: Checkpoint | str | Path):
        self.ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.model = self.ckpt.model.eval()
        self.tok = self.ckpt.tokenizer
        self.domain = self.ckpt.domain
        self.model.prepare_step()
        # Tokens never sampled: text control tokens; melody pitches outside the training data's range.
        self._banned = torch.zeros(self.vocab_size, dtype=torch.bool)
        if self.domain == "melody" and self.ckpt.config.get("pitch_range"):
            lo, hi = self.ckpt.config["pitch_range"]
            for p in range(PITCH_RANGE[0], PITCH_RANGE[1] + 1):
                if not lo <= p <= hi:
                    self._banned[self.tok.pitch_id(p)] = True
        if self.domain == "text":
            for i in (self.tok.bos_id, self.tok.eos_id, self.tok.pad_id, self.tok.sp.unk_id()):
                if 0 <= i < self.vocab_size:
                    self._banned[i] = True

    @property
    def vocab_size(self) -> int:
        return self.tok.vocab_size

    # core loop ----------------------------------------------------------------------------------
    def _prefill(self, ids: list[int], n: int):
        x = torch.tensor([ids], dtype=torch.long)
        logits, state = self.model.prefill(x)
        return logits.expand(n, -1).contiguous(), expand_state(state, n)

    def _text_ids(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise SeedError("The seed must be text")
        if len(text) > MAX_SEED_CHARS:
            raise SeedError(f"The seed is {len(text):,} characters; the limit is {MAX_SEED_CHARS:,}")
        ids = self.tok.encode(text)
        return [self.tok.bos_id] + ids[-CONTEXT_TOKENS:]

    def seed_was_cut(self, text: str) -> bool:
        """True when the seed is longer than the context window and only its end is used."""
        return len(self.tok.encode(text[-(MAX_SEED_CHARS):])) > CONTEXT_TOKENS

    def _require(self, domain: str) -> None:
        if self.domain != domain:
            raise SettingsError(f"{self.ckpt.name} is a {self.domain} model, not a {domain} model")

    # text ---------------------------------------------------------------------------------------
    def stream_text(self, seed: str, length: int = 200, settings: Settings = Settings()) -> "TextStream":
        """An iterator over per-step text deltas (one string per candidate); once it is exhausted,
        its ``results`` hold the full ``TextResult`` of each candidate (with token probabilities)."""
        self._require("text")
        s = settings.checked(self.vocab_size)
        if not isinstance(length, int) or not 0 <= length <= MAX_TEXT_TOKENS:
            raise SettingsError(f"Length must be from 0 to {MAX_TEXT_TOKENS} tokens; got {length}")
        ids = self._text_ids(seed)
        return TextStream(self, seed, ids, length, s)

    def complete(self, seed: str, length: int = 200, settings: Settings = Settings()) -> list[TextResult]:
        """``settings.n`` continuations of ``seed``, with each generated token's probability."""
        stream = self.stream_text(seed, length, settings)
        for _ in stream:
            pass
        return stream.results

    def next_token_probs(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens after ``text`` and their probabilities."""
        if self.domain == "text":
            ids = self._text_ids(text)
        else:
            ids = list(text)
        logits, _ = self._prefill(ids, 1)
        probs = torch.softmax(logits[0], -1)
        top = torch.topk(probs, min(k, probs.numel()))
        piece = self.tok.piece if self.domain == "text" else (lambda i: self.tok.vocab[i])
        return [(piece(int(i)), float(p)) for p, i in zip(top.values, top.indices)]

    # melody -------------------------------------------------------------------------------------
    def melody_prefix(self, seed) -> list[int]:
        """Tokens of a seed melody without its end: a bar left open is not padded with a rest.
        A seed with no notes is just the header (meter and key): the model starts the tune."""
        if not seed.notes:
            return self.tok.header(seed.meter, seed.key)
        ids = self.tok.encode(seed, add_eos=False)
        if seed.notes and seed.end % seed.bar_ticks:
            ids = ids[:-2]  # the rest that completed the last bar
        return ids

    def generate_melody(self, seed, bars: int = 8, settings: Settings = Settings()) -> list[MelodyResult]:
        """Continue a seed ``Melody`` by ``bars`` bars; every token is one the melody grammar allows."""
        self._require("melody")
        s = settings.checked(self.vocab_size)
        if not isinstance(bars, int) or not 0 <= bars <= MAX_BARS:
            raise SettingsError(f"Length must be from 0 to {MAX_BARS} bars; got {bars}")
        if seed.n_bars > CONTEXT_BARS:
            seed = seed.slice_bars(seed.n_bars - CONTEXT_BARS)
        prefix = self.melody_prefix(seed)
        states = [self.tok.grammar_state(prefix) for _ in range(s.n)]
        target = states[0].bars_completed + bars + (1 if states[0].remaining > 0 and states[0].expecting != "bar" else 0)
        seqs = [list(prefix) for _ in range(s.n)]
        done = [bars == 0] * s.n
        gen = torch.Generator().manual_seed(s.seed)
        logits, state = self._prefill(prefix, s.n)
        eos = self.tok.eos_id
        for _ in range((bars + 2) * (2 * MAX_DURATION_TOKEN + 1) + 1):  # enough for the shortest notes
            if all(done):
                break
            mask = torch.stack([self.tok.allowed(st) for st in states])
            for i, st in enumerate(states):
                if done[i]:
                    mask[i] = False
                    mask[i, eos] = True
                elif st.expecting == "bar_or_eos":
                    if st.bars_completed >= target:
                        mask[i] = False
                        mask[i, eos] = True
                    else:
                        mask[i, eos] = False
            logits = logits.masked_fill(~mask | self._banned, -math.inf)
            tokens, _ = choose(logits, s, gen)
            for i, t in enumerate(tokens.tolist()):
                if done[i]:
                    continue
                states[i] = self.tok.advance(states[i], t)
                seqs[i].append(t)
                if t == eos:
                    done[i] = True
            logits, state = self.model.step(tokens, state)
        results = []
        for seq in seqs:
            full = self.tok.decode(seq)
            full.tempo = seed.tempo
            results.append(MelodyResult(seed, full, continuation_of(full, seed.end)))
        return results
