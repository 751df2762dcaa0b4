"""Decoding primitives shared by text, melodies and harmonies: the sampling settings (temperature, top-k,
top-p, random seed, candidates), one random stream per candidate, and choosing a token from logits; the limits
every request is checked against."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

from genmodels.core.errors import SettingsError
from genmodels.core.options import option

MAX_TEMPERATURE = 5.0


MAX_CANDIDATES = 16


MAX_TEXT_TOKENS = 2000


MAX_BARS = 128


CONTEXT_TOKENS = 1024  # longer text prompts keep only their last CONTEXT_TOKENS tokens


CONTEXT_BARS = 64  # longer melody prompts keep only their last CONTEXT_BARS bars


MAX_PROMPT_CHARS = 100_000


TEXT_LENGTH = 200  # tokens of a continuation when none is asked for


MELODY_BARS = 8  # bars of a melody when none are asked for


@dataclass(frozen=True)
class Settings:
    temperature: float = option(0.8, f"sampling temperature from 0 (greedy) to {MAX_TEMPERATURE:g}")
    top_k: int = option(0, "sample from the k most likely tokens only", shown="0: off")
    top_p: float = option(1.0, "sample from the most likely tokens whose probability reaches p", shown="1: off")
    seed: int = option(0, "random seed: the same seed, prompt and settings give the same output")
    n: int = option(1, f"candidates, from 1 to {MAX_CANDIDATES} (candidate i depends only on --seed and i)", flag="-n")

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


def candidate_seed(seed: int, i: int) -> int:
    """The random seed of candidate ``i`` of a request with random seed ``seed``: ``seed`` itself for the
    first (so one candidate is what it always was), a hash of (seed, i) for the others."""
    if i == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "little")


class CandidateRandom:
    """One random stream per candidate row, each a ``torch.Generator`` seeded by ``candidate_seed(seed, i)``
    that gives one uniform number per step: row i's numbers depend only on (seed, i). Numbers are drawn
    in blocks (the same numbers as one at a time), so a step costs a slice, not one call per row."""

    BLOCK = 256

    def __init__(self, seed: int, n: int):
        self.gens = [torch.Generator().manual_seed(candidate_seed(seed, i)) for i in range(n)]
        self._block = torch.empty(n, 0)
        self._pos = 0

    def uniforms(self) -> torch.Tensor:
        """The next uniform number of every row, (n, 1)."""
        if self._pos >= self._block.size(1):
            self._block = torch.stack([torch.rand(self.BLOCK, generator=g) for g in self.gens])
            self._pos = 0
        self._pos += 1
        return self._block[:, self._pos - 1 : self._pos]


def keep_top_k(z: torch.Tensor, k: int) -> torch.Tensor:
    """``z`` with all but the k largest of each row set to -inf: exactly k, ties at the boundary kept
    in index order."""
    kth = torch.topk(z, k, dim=-1).values[:, -1:]
    above, tied = z > kth, z == kth
    keep = above | (tied & (tied.cumsum(-1) <= k - above.sum(-1, keepdim=True)))
    return z.masked_fill(~keep, -math.inf)


def choose(
    logits: torch.Tensor, s: Settings, rng: CandidateRandom | torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row of (B, V) logits; return (tokens, their probability under the model at T=1).
    One uniform number per row comes from ``rng`` (one stream per row, or one generator for all rows)."""
    B = logits.size(0)
    u = rng.uniforms() if isinstance(rng, CandidateRandom) else torch.rand(B, 1, generator=rng)
    tokens = choose_with_uniform(logits, s, u)
    logp = logits.gather(1, tokens[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)
    return tokens, logp.exp()


def choose_with_uniform(logits: torch.Tensor, s: Settings, u: torch.Tensor) -> torch.Tensor:
    """The token of each row of (B, V) logits for the uniform numbers ``u`` (B, 1).

    Temperature scales the logits, top-k keeps the k largest, top-p keeps the smallest set of tokens
    (most likely first) whose probability reaches p. Sampling inverts the cumulative distribution at
    ``u``: the distribution of ``torch.multinomial`` at a fraction of its cost (no number is drawn per
    vocabulary entry). Two calls with the same ``u`` on different logits (with and without melody
    constraints) make the same draw, so their picks differ only where the distribution changed."""
    V = logits.size(1)
    if s.temperature < 1e-4:
        return logits.argmax(-1)
    z = logits / s.temperature if s.temperature != 1 else logits
    if 0 < s.top_k < V:
        z = keep_top_k(z, s.top_k)
    u = u.to(z.dtype)
    if s.top_p < 1.0:
        z, order = torch.sort(z, descending=True, dim=-1)
        p = torch.softmax(z, dim=-1)
        cdf = p.cumsum(-1)
        keep = (cdf - p < s.top_p).sum(-1, keepdim=True)  # at least one token
        pos = torch.searchsorted(cdf, u * cdf.gather(1, keep - 1), right=True)
        return order.gather(1, torch.minimum(pos, keep - 1)).squeeze(1)
    cdf = torch.softmax(z, dim=-1).cumsum(-1)
    return torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(1).clamp_(max=V - 1)
