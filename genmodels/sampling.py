"""Sampling from a loaded checkpoint: temperature (0 = greedy), top-k, top-p, a per-request random seed,
N candidates as one batch, streaming text deltas, next-token probabilities, and grammar-masked melodies.

The prompt (the text or notes to continue) is run through the model in one fused call (``prefill``);
each new token then costs one ``model.step``. Every request owns a ``torch.Generator``, so concurrent
requests never share random state: the same random seed and inputs give the same output, whoever else
is generating.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genmodels.checkpoint import Checkpoint, load_checkpoint
from genmodels.domains import MELODY, TEXT, Domain
from genmodels.errors import SeedError, SettingsError
from genmodels.melody import MAX_DURATION_TOKEN
from genmodels.model import expand_state
from genmodels.options import option
from genmodels.text import StreamDecoder

MAX_TEMPERATURE = 5.0
MAX_CANDIDATES = 16
MAX_TEXT_TOKENS = 2000
MAX_BARS = 128
CONTEXT_TOKENS = 1024  # longer text prompts keep only their last CONTEXT_TOKENS tokens
CONTEXT_BARS = 64  # longer melody prompts keep only their last CONTEXT_BARS bars
MAX_PROMPT_CHARS = 100_000


@dataclass(frozen=True)
class Settings:
    temperature: float = option(0.8, f"sampling temperature from 0 (greedy) to {MAX_TEMPERATURE:g}")
    top_k: int = option(0, "sample from the k most likely tokens only", shown="0: off")
    top_p: float = option(1.0, "sample from the most likely tokens whose probability reaches p", shown="1: off")
    seed: int = option(0, "random seed: the same seed, prompt and settings give the same output")
    n: int = option(1, f"candidates, from 1 to {MAX_CANDIDATES}", flag="-n")

    def checked(self, vocab_size: int) -> Settings:
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
    prompt: str
    continuation: str
    tokens: list[tuple[str, float]] = field(default_factory=list)  # (text piece, model probability)


@dataclass
class MelodyResult:
    prompt: object  # Melody
    full: object  # Melody: prompt + continuation
    continuation: object  # Melody: the generated bars alone


class TextStream:
    """Streaming text generation: iterate for deltas; ``results`` is filled when the stream ends."""

    def __init__(self, g: Sampler, prompt: str, ids: list[int], length: int, s: Settings):
        self.g, self.prompt, self.ids, self.length, self.s = g, prompt, ids, length, s
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
        read = g.tok.decode(self.ids)  # the prompt as the model read it (its last CONTEXT_TOKENS tokens)
        self.results = [TextResult(self.prompt, d.emitted[len(read):], pieces[i]) for i, d in enumerate(decoders)]


def continuation_of(full, prompt_end: int):
    """The notes generated after the prompt, moved back by whole bars so the bar lines stay in place."""
    shift = prompt_end // full.bar_ticks * full.bar_ticks
    notes = [type(n)(n.pitch, n.start - shift, n.duration) for n in full.notes if n.start >= prompt_end]
    return dataclasses.replace(full, notes=notes, length=max(0, getattr(full, "length", 0) - shift))


class Sampler:
    """Sampling over one loaded checkpoint (text or melody). Safe to share between threads."""

    def __init__(self, checkpoint: Checkpoint | str | Path):
        self.ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.model = self.ckpt.model.eval()
        self.tok = self.ckpt.tokenizer
        self.domain: Domain = self.ckpt.domain
        self.model.prepare_step()
        self._banned = self.domain.banned_tokens(self.tok, self.ckpt.config)  # tokens never sampled

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
            raise SeedError("The prompt must be text")
        if len(text) > MAX_PROMPT_CHARS:
            raise SeedError(f"The prompt is {len(text):,} characters; the limit is {MAX_PROMPT_CHARS:,}")
        ids = self.tok.encode(text)
        return [self.tok.bos_id] + ids[-CONTEXT_TOKENS:]

    def prompt_was_cut(self, text: str) -> bool:
        """True when the prompt is longer than the context window and only its end is used."""
        return len(self.tok.encode(text[-(MAX_PROMPT_CHARS):])) > CONTEXT_TOKENS

    def _require(self, domain: Domain) -> None:
        if self.domain is not domain:
            raise SettingsError(f"{self.ckpt.name} is a {self.domain.name} model, not a {domain.name} model")

    # text ---------------------------------------------------------------------------------------
    def stream_text(self, prompt: str, length: int = TEXT.default_length,
                    settings: Settings = Settings()) -> TextStream:
        """An iterator over per-step text deltas (one string per candidate); once it is exhausted,
        its ``results`` hold the full ``TextResult`` of each candidate (with token probabilities)."""
        self._require(TEXT)
        s = settings.checked(self.vocab_size)
        if not isinstance(length, int) or not 0 <= length <= MAX_TEXT_TOKENS:
            raise SettingsError(f"Length must be from 0 to {MAX_TEXT_TOKENS} tokens; got {length}")
        ids = self._text_ids(prompt)
        return TextStream(self, prompt, ids, length, s)

    def complete(self, prompt: str, length: int = TEXT.default_length,
                 settings: Settings = Settings()) -> list[TextResult]:
        """``settings.n`` continuations of ``prompt``, with each generated token's probability."""
        stream = self.stream_text(prompt, length, settings)
        for _ in stream:
            pass
        return stream.results

    def next_token_probs(self, prompt: str | list[int], k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens after ``prompt`` (text, or token ids) and their probabilities."""
        ids = self._text_ids(prompt) if isinstance(prompt, str) else list(prompt)
        logits, _ = self._prefill(ids, 1)
        probs = torch.softmax(logits[0], -1)
        top = torch.topk(probs, min(k, probs.numel()))
        return [(self.domain.token_label(self.tok, int(i)), float(p)) for p, i in zip(top.values, top.indices)]

    # melody -------------------------------------------------------------------------------------
    def melody_prefix(self, prompt) -> list[int]:
        """Tokens of a prompt melody without its end: a bar left open is not padded with a rest, and
        rests written after the last note (``prompt.length``) are kept. A prompt with no notes is just
        the header (meter and key): the model starts the tune."""
        if not prompt.notes:
            return self.tok.header(prompt.meter, prompt.key)
        ids = self.tok.encode(prompt, add_eos=False)
        if prompt.notes and prompt.end % prompt.bar_ticks:
            ids = ids[:-2]  # the rest that completed the last bar
        return ids

    def generate_melody(self, prompt, bars: int = MELODY.default_length,
                        settings: Settings = Settings()) -> list[MelodyResult]:
        """Continue a prompt ``Melody`` by ``bars`` bars; every token is one the melody grammar allows."""
        self._require(MELODY)
        s = settings.checked(self.vocab_size)
        if not isinstance(bars, int) or not 0 <= bars <= MAX_BARS:
            raise SettingsError(f"Length must be from 0 to {MAX_BARS} bars; got {bars}")
        if prompt.n_bars > CONTEXT_BARS:
            prompt = prompt.slice_bars(prompt.n_bars - CONTEXT_BARS)
        prefix = self.melody_prefix(prompt)
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
            full.tempo = prompt.tempo
            results.append(MelodyResult(prompt, full, continuation_of(full, prompt.end)))
        return results
