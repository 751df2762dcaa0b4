"""Sampling from a loaded checkpoint: temperature (0 = greedy), top-k, top-p, a per-request random seed,
N candidates as one batch, streaming text deltas, next-token probabilities, and grammar-masked melodies.

The prompt (the text or notes to continue) is run through the model in one fused call (``prefill``);
each new token then costs one ``model.step``. Every request owns its random generators (one per
candidate), so concurrent requests never share random state: the same random seed and inputs give the
same output, whoever else is generating. Candidate i depends only on (seed, i), not on how many
candidates were asked for.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genmodels.core.errors import SeedError, SettingsError
from genmodels.core.options import option
from genmodels.core.registry import Domain
from genmodels.infer.constraints import MelodySteering, rhythm_template, total_bias
from genmodels.infer.dynamic import adapted_copy
from genmodels.infer.form import FormGuide, form_script, script_written_bars
from genmodels.infer.healing import HealingConstraint, prepare_prompt
from genmodels.infer.repetition import MAX_NGRAM, MAX_PENALTY, no_repeat_ngram, repetition_penalty
from genmodels.infer.stopping import StopRules, stop_index
from genmodels.io.checkpoint import Checkpoint, load_checkpoint
from genmodels.music import MAX_DURATION_TOKEN, Melody
from genmodels.music.form import REPEAT_END, REPEAT_START
from genmodels.music.scales import scale_pitch_classes
from genmodels.nn.rnn import expand_state
from genmodels.tokenizers.text import StreamDecoder

MAX_TEMPERATURE = 5.0
MAX_CANDIDATES = 16
MAX_TEXT_TOKENS = 2000
MAX_BARS = 128
CONTEXT_TOKENS = 1024  # longer text prompts keep only their last CONTEXT_TOKENS tokens
CONTEXT_BARS = 64  # longer melody prompts keep only their last CONTEXT_BARS bars
MAX_PROMPT_CHARS = 100_000
TEXT_LENGTH = 200  # tokens of a continuation when none is asked for
MELODY_BARS = 8  # bars of a melody when none are asked for
NO_STEERING = MelodySteering()  # no constraints: the model's own melody


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


@dataclass(frozen=True)
class TextSteering:
    """Text-only steering of Generate: token healing, stop rules and repetition control (defaults: off,
    healing on)."""

    end_of_line: bool = option(False, "text: stop at the end of the line")
    end_of_speech: bool = option(False, "text: stop at the end of the speech (a blank line or a speaker's name)")
    sentences: int = option(0, "text: stop after this many sentences", shown="0: off")
    repetition_penalty: float = option(
        1.0, f"text: divide the logits of tokens already seen by this (1 to {MAX_PENALTY:g})", shown="1: off"
    )
    no_repeat_ngram: int = option(
        0, f"text: never repeat an n-gram of this many tokens (up to {MAX_NGRAM})", shown="0: off"
    )
    heal: bool = option(True, "text: token healing (a prompt ending mid-word continues that word)", flag="--no-heal")

    @property
    def stop_rules(self) -> StopRules:
        return StopRules(self.end_of_line, self.end_of_speech, self.sentences)

    def checked(self) -> TextSteering:
        """These settings when valid; SettingsError otherwise."""
        self.stop_rules.checked()
        p, n = self.repetition_penalty, self.no_repeat_ngram
        if isinstance(p, bool) or not isinstance(p, (int, float)) or math.isnan(p) or not 1 <= p <= MAX_PENALTY:
            raise SettingsError(f"The repetition penalty must be from 1 (off) to {MAX_PENALTY:g}; got {p}")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_NGRAM:
            raise SettingsError(
                f"The no-repeat n-gram size must be a whole number from 0 (off) to {MAX_NGRAM}; got {n!r}"
            )
        return dataclasses.replace(self, repetition_penalty=float(p))


class SteeredRows:
    """Per-candidate bookkeeping of ``TextSteering`` inside the sampling loop: masks the logits (healing,
    repetition), hides the prompt characters that healing spells again, and cuts each row where a stop
    rule fires (a stopped row shows nothing more; the loop ends once every row has stopped)."""

    def __init__(self, steering: TextSteering, prompt: str, ids: list[int], n: int, healing: HealingConstraint | None):
        self.steering, self.prompt, self.rules = steering, prompt, steering.stop_rules
        self.healing = healing
        self.history = [list(ids) for _ in range(n)]
        self.skip = [len(healing.removed_text) if healing is not None else 0] * n
        self.shown = [""] * n
        self.done = [False] * n

    @property
    def finished(self) -> bool:
        return all(self.done)

    def logits(self, logits: torch.Tensor) -> torch.Tensor:
        st = self.steering
        if self.healing is not None and self.healing.active:
            logits = self.healing.apply(logits)
        if st.repetition_penalty != 1:
            logits = repetition_penalty(logits, self.history, st.repetition_penalty)
        if st.no_repeat_ngram:
            logits = no_repeat_ngram(logits, self.history, st.no_repeat_ngram)
        return logits

    def advance(self, tokens: torch.Tensor) -> None:
        if self.healing is not None and self.healing.active:
            self.healing.advance(tokens)
        for h, t in zip(self.history, tokens.tolist(), strict=True):
            h.append(t)

    def visible(self, deltas: list[str]) -> list[str]:
        """The part of each row's decoded delta that is new text before any stop."""
        out = []
        for i, delta in enumerate(deltas):
            if self.done[i]:
                out.append("")
                continue
            if self.skip[i]:
                cut = min(self.skip[i], len(delta))
                self.skip[i] -= cut
                delta = delta[cut:]
            before = len(self.shown[i])
            self.shown[i] += delta
            if self.rules.active and delta:
                at = stop_index(self.shown[i], self.rules, self.prompt)
                if at is not None:
                    self.shown[i] = self.shown[i][: max(at, before)]
                    self.done[i] = True
            out.append(self.shown[i][before:])
        return out


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
    overruled: int = 0  # sampled tokens the constraints changed (vs. the model's own pick, same random draw)
    events: int = 0  # pitch and rest events sampled


class TextStream:
    """Streaming text generation: iterate for deltas; ``results`` is filled when the stream ends."""

    def __init__(
        self,
        g: Sampler,
        prompt: str,
        ids: list[int],
        length: int,
        s: Settings,
        steering: TextSteering | None = None,
        healing: HealingConstraint | None = None,
    ):
        self.g, self.prompt, self.ids, self.length, self.s = g, prompt, ids, length, s
        self.steering, self.healing = steering or TextSteering(heal=False), healing
        self.results: list[TextResult] = []

    def __iter__(self) -> Iterator[list[str]]:
        g, s = self.g, self.s
        gen = CandidateRandom(s.seed, s.n)
        logits, state = g._prefill(self.ids, s.n)
        steer = self.steer = SteeredRows(self.steering, self.prompt, self.ids, s.n, self.healing)
        decoders = [StreamDecoder(g.tok, self.ids) for _ in range(s.n)]
        pieces: list[list[tuple[str, float]]] = [[] for _ in range(s.n)]
        pending: list[float | None] = [None] * s.n  # lowest probability of tokens not yet shown as text
        for _ in range(self.length):
            if steer.finished:
                break
            tokens, probs = choose(steer.logits(logits).masked_fill(g._banned, -math.inf), s, gen)
            steer.advance(tokens)
            deltas = steer.visible([d.push(t) for d, t in zip(decoders, tokens.tolist(), strict=True)])
            for i, (delta, p) in enumerate(zip(deltas, probs.tolist(), strict=False)):
                p = p if pending[i] is None else min(p, pending[i])
                if delta:
                    pieces[i].append((delta, p))
                    pending[i] = None
                else:
                    pending[i] = p
            yield deltas
            logits, state = g.model.step(tokens, state)
        tails = steer.visible([d.flush() for d in decoders])
        for i, t in enumerate(tails):
            if t:
                pieces[i].append((t, pending[i] or 0.0))
        if any(tails):
            yield tails
        self.results = [TextResult(self.prompt, steer.shown[i], pieces[i]) for i in range(s.n)]


def continuation_of(full, prompt_end: int):
    """The notes generated after the prompt, moved back by whole bars so the bar lines stay in place.

    When the model holds the prompt's last note across the bar line, ``decode`` merges the hold into
    that note; the continuation then starts with the note's remaining part (it sounds there)."""
    shift = prompt_end // full.bar_ticks * full.bar_ticks
    notes = [
        type(n)(n.pitch, max(n.start, prompt_end) - shift, n.end - max(n.start, prompt_end))
        for n in full.notes
        if n.end > prompt_end
    ]
    bars = shift // full.bar_ticks
    form = tuple(dataclasses.replace(r, start=r.start - bars) for r in full.form if r.start >= bars)
    return dataclasses.replace(full, notes=notes, length=max(0, full.length - shift), form=form)


def _behind(prompt, tail, cut: int):
    """``prompt`` followed by ``tail``, a melody that starts at bar ``cut`` of the prompt (the cut
    context with its continuation). A prompt note held over that bar line was split by the cut; it is
    one note again, lengthened when the model held it on."""
    offset = cut * prompt.bar_ticks
    notes = [n for n in prompt.notes if n.start < offset]
    moved = [type(n)(n.pitch, n.start + offset, n.duration) for n in tail.notes]
    if notes and moved and notes[-1].end > offset and moved[0].start == offset and moved[0].pitch == notes[-1].pitch:
        held = moved.pop(0)
        notes[-1] = type(held)(held.pitch, notes[-1].start, max(notes[-1].end, held.end) - notes[-1].start)
    length = tail.length + offset if tail.length else 0
    form = tuple(dataclasses.replace(r, start=r.start + cut) for r in tail.form)  # its bars count from the cut
    return dataclasses.replace(tail, notes=notes + moved, length=length, tempo=prompt.tempo, form=form)


class _MelodyRows:
    """The per-row bookkeeping of a batch of melodies being sampled: grammar states, bar targets,
    constraints, the sequences so far, and the overruled / event counts."""

    def __init__(
        self, tok, prefixes: list[list[int]], bars: list[int], steering: MelodySteering, keys: list[tuple[int, str]]
    ):

        self.tok, self.steering = tok, steering
        self.states = [tok.grammar_state(p) for p in prefixes]
        self.fixed_form = not steering.form.free
        self.targets = [
            st.played_bars + b + (1 if st.remaining > 0 and st.expecting not in ("bar", "bar_or_eos") else 0)
            for st, b in zip(self.states, bars, strict=True)
        ]
        self.constraints = [
            steering.build(tok, scale_pitch_classes(*k), k[0], t - 1) for k, t in zip(keys, self.targets, strict=True)
        ]
        if self.fixed_form:  # the script decides every bar, sign and the end; targets count written bars
            for i, (p, st, k) in enumerate(zip(prefixes, self.states, keys, strict=True)):
                script = form_script(steering.form, bool(tok.form), st.bars_completed)
                self.targets[i] = st.bars_completed + script_written_bars(script, st.bars_completed)
                meter = tok.id_meter[p[1]]
                self.constraints[i].append(FormGuide(tok, script, k[0], meter, p[tok.header_length :], st))
        self.seqs = [list(p) for p in prefixes]
        self.done = [b == 0 for b in bars]
        self.overruled, self.events = [0] * len(prefixes), [0] * len(prefixes)

    def grammar_mask(self) -> torch.Tensor:
        """The tokens the grammar allows in each row; <eos> exactly when a row has all its bars."""
        tok, eos = self.tok, self.tok.eos_id
        mask = torch.stack([tok.allowed(st) for st in self.states])
        for i, st in enumerate(self.states):
            count = st.bars_completed if self.fixed_form else st.played_bars
            closed = st.phase == "" or (st.phase == "ending2" and st.phase_bars > 0)
            if self.done[i] or (st.expecting == "bar_or_eos" and count >= self.targets[i] and closed):
                mask[i] = False
                mask[i, eos] = True
            elif st.expecting == "bar_or_eos":
                mask[i, eos] = False
            if tok.form and not self.fixed_form and not self.done[i] and st.expecting in ("bar", "bar_or_eos"):
                self._close_repeats_in_time(mask[i], st, self.targets[i])
        return mask

    def _close_repeats_in_time(self, mask: torch.Tensor, st, target: int) -> None:
        """As the model writes its form: no repeat opened without room for two passes, and an open
        repeat closed when its second pass would reach the length asked for."""
        signs = self.tok.sign_ids
        left = target - st.played_bars
        if left < 2:
            mask[signs[REPEAT_START]] = False
        close = (st.phase == "body" and st.phase_bars and st.phase_bars >= left) or (
            st.phase == "ending1" and st.phase_bars and st.body_bars + 1 >= left
        )
        if close:
            mask[:] = False
            mask[signs[REPEAT_END]] = True

    def biased(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` plus each row's constraint biases (the same tensor when no constraint spoke)."""
        biased = logits
        for i, st in enumerate(self.states):
            b = None if self.done[i] else total_bias(self.constraints[i], st)
            if b is None:
                continue
            if biased is logits:
                biased = logits.clone()
            biased[i] += b
            if not torch.isfinite(biased[i]).any():
                raise SettingsError(
                    f"The melody constraints leave no legal token in bar {st.bars_completed + 1} "
                    f"(stay in key: {self.steering.stay_in_key}, end on the tonic: {self.steering.end_on_tonic}, "
                    f"keep rhythm: {self.steering.rhythm is not None}); loosen one of them"
                )
        return biased

    def advance(self, tokens: list[int], own: list[int]) -> None:
        """Append each row's token; count events and picks the constraints changed."""
        tok = self.tok
        for i, t in enumerate(tokens):
            if self.done[i]:
                continue
            if self.states[i].expecting == "event" and t != tok.hold_id:
                self.events[i] += 1
            self.overruled[i] += own[i] != t
            self.states[i] = tok.advance(self.states[i], t)
            for c in self.constraints[i]:
                c.advance(t)
            self.seqs[i].append(t)
            self.done[i] = t == tok.eos_id


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

    def adapted_to(self, text: str) -> Sampler:
        """A sampler over a private copy of the model adapted to ``text`` by dynamic evaluation (its last
        MAX_ADAPT_TOKENS tokens); this sampler and its model are unchanged, so nothing one user's text
        teaches the model reaches anyone else."""

        twin = copy.copy(self)
        twin.model = adapted_copy(self.model, self._text_ids(text), self.tok.bos_id)
        twin.model.prepare_step()
        return twin

    def prompt_was_cut(self, text: str) -> bool:
        """True when the prompt is longer than the context window and only its end is used."""
        return len(self.tok.encode(text[-(MAX_PROMPT_CHARS):])) > CONTEXT_TOKENS

    def _require(self, domain: str) -> None:
        if self.domain.name != domain:
            raise SettingsError(f"{self.ckpt.name} is a {self.domain.name} model, not a {domain} model")

    # text ---------------------------------------------------------------------------------------
    def stream_text(
        self,
        prompt: str,
        length: int = TEXT_LENGTH,
        settings: Settings = Settings(),
        steering: TextSteering = TextSteering(),
    ) -> TextStream:
        """An iterator over per-step text deltas (one string per candidate); once it is exhausted,
        its ``results`` hold the full ``TextResult`` of each candidate (with token probabilities).
        ``steering``: token healing, stop rules and repetition control."""
        self._require("text")
        s = settings.checked(self.vocab_size)
        if not isinstance(length, int) or not 0 <= length <= MAX_TEXT_TOKENS:
            raise SettingsError(f"Length must be from 0 to {MAX_TEXT_TOKENS} tokens; got {length}")
        steering = steering.checked()
        if steering.heal:
            ids, healing = self._healed_text_ids(prompt, s.n)
            return TextStream(self, prompt, ids, length, s, steering, healing)
        return TextStream(self, prompt, self._text_ids(prompt), length, s, steering)

    def _healed_text_ids(self, prompt: str, n: int) -> tuple[list[int], HealingConstraint]:
        """BOS + the healed prompt's last CONTEXT_TOKENS tokens, and the constraint that re-spells the rest."""
        self._text_ids(prompt)  # the same checks (type, length) as without healing
        ids, healing = prepare_prompt(self.tok, prompt, batch=n)
        return [self.tok.bos_id] + ids[-CONTEXT_TOKENS:], healing

    def complete(
        self,
        prompt: str,
        length: int = TEXT_LENGTH,
        settings: Settings = Settings(),
        steering: TextSteering = TextSteering(),
    ) -> list[TextResult]:
        """``settings.n`` continuations of ``prompt``, with each generated token's probability."""
        stream = self.stream_text(prompt, length, settings, steering)
        for _ in stream:
            pass
        return stream.results

    def next_token_probs(self, prompt: str | list[int], k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens after ``prompt`` (text, or token ids) and their probabilities."""
        ids = self._text_ids(prompt) if isinstance(prompt, str) else list(prompt)
        logits, _ = self._prefill(ids, 1)
        probs = torch.softmax(logits[0], -1)
        top = torch.topk(probs, min(k, probs.numel()))
        return [
            (self.domain.token_label(self.tok, int(i)), float(p)) for p, i in zip(top.values, top.indices, strict=False)
        ]

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

    def _melody_ids(self, melody, n_bars: int) -> list[int]:
        """Tokens of the first ``n_bars`` bars of ``melody`` as complete bars (silent ones as a whole-bar
        rest), without <eos>: the prompt before a regenerated passage keeps its bar count."""
        part = melody.slice_bars(0, n_bars)
        ids = self.tok.encode(part, add_eos=False) if part.notes else self.tok.header(melody.meter, melody.key)
        rest_bar = [self.tok.bar_id, self.tok.rest_id, self.tok.dur_id(melody.bar_ticks)]
        return ids + rest_bar * (n_bars - (part.n_bars if part.notes else 0))

    @staticmethod
    def _steering(steering) -> MelodySteering:
        if not isinstance(steering, MelodySteering):
            raise SettingsError(f"Melody steering must be a MelodySteering; got {type(steering).__name__}")
        return steering.checked()

    def _sample_bars(
        self, prefix: list[int], bars: int, s: Settings, steering: MelodySteering, key: tuple[int, str]
    ) -> tuple[list[list[int]], list[int], list[int]]:
        """``s.n`` token sequences continuing ``prefix`` by ``bars`` complete bars, then <eos>.
        Returns (sequences, overruled, pitch/rest events) per candidate."""
        return self.sample_batch([prefix] * s.n, [bars] * s.n, s, steering, [key] * s.n)

    def sample_batch(
        self,
        prefixes: list[list[int]],
        bars: list[int],
        s: Settings,
        steering: MelodySteering,
        keys: list[tuple[int, str]],
    ) -> tuple[list[list[int]], list[int], list[int]]:
        """One row per prefix (all of one length, e.g. headers of different tunes): row i continues
        ``prefixes[i]`` by ``bars[i]`` complete bars in key ``keys[i]``, then <eos>.

        Each step composes the grammar mask, the banned pitches and the constraints' biases, and
        samples; where a constraint spoke, the model's own pick under the grammar alone is drawn with
        the same uniform number, and a difference counts as overruled. Returns (sequences, overruled,
        pitch/rest events) per row."""
        rows = _MelodyRows(self.tok, prefixes, bars, steering, keys)
        gen = CandidateRandom(s.seed, len(prefixes))
        logits, state = self.model.prefill(torch.tensor(prefixes, dtype=torch.long))
        for _ in range((max(bars) + 2) * (2 * MAX_DURATION_TOKEN + 1) + 1):  # enough for the shortest notes
            if all(rows.done):
                break
            logits = logits.masked_fill(~rows.grammar_mask() | self._banned, -math.inf)
            biased = rows.biased(logits)
            u = gen.uniforms()
            tokens = choose_with_uniform(biased, s, u)
            own = tokens if biased is logits else choose_with_uniform(logits, s, u)
            rows.advance(tokens.tolist(), own.tolist())
            logits, state = self.model.step(tokens, state)
        return rows.seqs, rows.overruled, rows.events

    def generate_melody(
        self,
        prompt,
        bars: int = MELODY_BARS,
        settings: Settings = Settings(),
        steering: MelodySteering = NO_STEERING,
    ) -> list[MelodyResult]:
        """Continue a prompt ``Melody`` by ``bars`` bars; every token is one the melody grammar allows,
        and the ``steering`` constraints (stay in the prompt's key, end on its tonic) hold."""
        self._require("melody")
        s = settings.checked(self.vocab_size)
        steering = self._steering(steering)
        if not isinstance(bars, int) or not 0 <= bars <= MAX_BARS:
            raise SettingsError(f"Length must be from 0 to {MAX_BARS} bars; got {bars}")
        cut = max(0, prompt.n_bars - CONTEXT_BARS)  # only the model's context is cut, never the user's music
        context = prompt.slice_bars(cut) if cut else prompt
        prefix = self.melody_prefix(context)
        if not steering.form.free:
            prefix = self._form_prefix(context, prefix, steering)
        seqs, overruled, events = self._sample_bars(prefix, bars, s, steering, prompt.key)
        results = []
        for seq, o, e in zip(seqs, overruled, events, strict=True):
            full = self.tok.decode(seq)
            full.tempo = prompt.tempo
            continuation = continuation_of(full, context.end)
            if cut:
                full = _behind(prompt, full, cut)
            results.append(MelodyResult(prompt, full, continuation, o, e))
        return results

    def _form_prefix(self, prompt, prefix: list[int], steering: MelodySteering) -> list[int]:
        """The prompt as the first bars of a fixed form's first part: after its |: where the part
        repeats with signs. A prompt that has a form of its own is continued as played."""
        if prompt.form:
            prefix = Melody(prompt.notes, prompt.meter, prompt.key, prompt.tempo, prompt.length)
            prefix = self.melody_prefix(prefix)
        full_bars = self.tok.grammar_state(prefix).bars_completed
        script = form_script(steering.form, bool(self.tok.form), full_bars)
        if script and script[0].kind == "sign":
            h = self.tok.header_length
            prefix = prefix[:h] + [self.tok.sign_ids[script[0].sign]] + prefix[h:]
        return prefix

    def following_log_likelihood(self, bodies: list[list[int]], following: list[int]) -> list[float]:
        """log p(``following`` | body) in nats for each token sequence in ``bodies`` (teacher-forced, one
        batch: right padding does not reach earlier positions of a left-to-right model)."""
        if not following:
            return [0.0] * len(bodies)
        seqs = [b + following for b in bodies]
        width = max(len(q) for q in seqs)
        x = torch.full((len(seqs), width), self.tok.pad_id, dtype=torch.long)
        for i, q in enumerate(seqs):
            x[i, : len(q)] = torch.tensor(q)
        with torch.inference_mode():
            logits, _ = self.model(x)
            logp = torch.log_softmax(logits.float(), -1)
        target = torch.tensor(following)
        out = []
        for i, b in enumerate(bodies):
            rows = logp[i, len(b) - 1 : len(b) - 1 + len(following)]
            out.append(float(rows.gather(1, target[:, None]).sum()))
        return out

    def _check_bar_range(self, melody, first_bar: int, last_bar: int) -> None:
        if not melody.notes:
            raise SettingsError("The melody has no notes: there are no bars to regenerate")
        for v in (first_bar, last_bar):
            if isinstance(v, bool) or not isinstance(v, int):
                raise SettingsError(f"Bar numbers must be whole numbers; got {v!r}")
        n = melody.n_bars
        if first_bar > last_bar:
            raise SettingsError(
                f"Bars {first_bar}-{last_bar} are reversed: write the first bar first ({last_bar}-{first_bar})"
            )
        if first_bar < 1 or last_bar > n:
            raise SettingsError(f"Bars {first_bar}-{last_bar} are outside the melody, which has bars 1-{n}")

    def regenerate_scored(
        self,
        melody,
        first_bar: int,
        last_bar: int,
        settings: Settings = Settings(),
        steering: MelodySteering = NO_STEERING,
        candidates: int = 8,
    ) -> tuple[MelodyResult, list[float], int]:
        """``regenerate_bars`` with its evidence: (result, log-likelihood of the following bars after
        each candidate, index of the chosen one). Candidate 0 is a plain continuation."""
        self._require("melody")
        self._check_bar_range(melody, first_bar, last_bar)
        if isinstance(candidates, bool) or not isinstance(candidates, int) or not 1 <= candidates <= MAX_CANDIDATES:
            raise SettingsError(f"Candidates must be from 1 to {MAX_CANDIDATES}; got {candidates}")
        s = dataclasses.replace(settings, n=candidates).checked(self.vocab_size)
        steering = self._steering(steering)
        if not steering.form.free:
            raise SettingsError("A form shapes a whole new tune: regenerate bars without one")
        if last_bar < melody.n_bars:  # the tune goes on after the passage: its own ending stays
            steering = dataclasses.replace(steering, end_on_tonic=False)
        bt = melody.bar_ticks
        lo = max(0, first_bar - 1 - CONTEXT_BARS)
        prefix = self._melody_ids(melody.slice_bars(lo), first_bar - 1 - lo)
        seqs, overruled, events = self._sample_bars(prefix, last_bar - first_bar + 1, s, steering, melody.key)
        bodies = [q[:-1] if q[-1] == self.tok.eos_id else q for q in seqs]
        after = melody.slice_bars(last_bar, last_bar + CONTEXT_BARS)
        following = self.tok.encode(after, add_eos=False)[self.tok.header_length :] if after.notes else []
        scores = self.following_log_likelihood(bodies, following)
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        passage = self.tok.decode(bodies[best]).slice_bars(first_bar - 1 - lo, last_bar - lo)
        before, rest = melody.slice_bars(0, first_bar - 1), melody.slice_bars(last_bar)

        def moved(m, bars: int) -> list:
            return [type(n)(n.pitch, n.start + bars * bt, n.duration) for n in m.notes]

        notes = before.notes + moved(passage, first_bar - 1) + moved(rest, last_bar)
        full = dataclasses.replace(melody, notes=notes, form=())  # new bars: its repeats may no longer repeat
        passage = dataclasses.replace(melody, notes=passage.notes, length=(last_bar - first_bar + 1) * bt, form=())
        return MelodyResult(melody, full, passage, overruled[best], events[best]), scores, best

    def regenerate_bars(
        self,
        melody,
        first_bar: int,
        last_bar: int,
        settings: Settings = Settings(),
        steering: MelodySteering = NO_STEERING,
        candidates: int = 8,
    ) -> MelodyResult:
        """Bars ``first_bar``..``last_bar`` (1-based, inclusive) of ``melody`` sampled again; every bar
        before and after stays. ``candidates`` passages are sampled after the bars before, and the one
        after which the model finds the following bars most likely is kept (``settings.n`` is not
        used). ``.full`` is the new melody, ``.continuation`` the new passage alone."""
        return self.regenerate_scored(melody, first_bar, last_bar, settings, steering, candidates)[0]

    def repitch(
        self, rhythm, settings: Settings = Settings(), steering: MelodySteering = NO_STEERING
    ) -> list[MelodyResult]:
        """New pitches on the rhythm of ``rhythm``: its durations, rests and bar lines stay exactly, only
        the pitches are sampled (in its key; with stay in key and end on the tonic when asked)."""

        self._require("melody")
        s = settings.checked(self.vocab_size)
        steering = self._steering(steering)
        if not rhythm.notes:
            raise SettingsError("The rhythm source has no notes to give new pitches to")
        if rhythm.n_bars > MAX_BARS:
            raise SettingsError(f"The rhythm source has {rhythm.n_bars} bars; the limit is {MAX_BARS}")
        plain = dataclasses.replace(rhythm, notes=[type(n)(60, n.start, n.duration) for n in rhythm.notes])
        steering = dataclasses.replace(steering, rhythm=tuple(rhythm_template(self.tok, self.tok.encode(plain))))
        header = self.tok.header(rhythm.meter, rhythm.key)
        seqs, overruled, events = self._sample_bars(header, rhythm.n_bars, s, steering, rhythm.key)
        prompt = Melody([], rhythm.meter, rhythm.key, rhythm.tempo)
        results = []
        for seq, o, e in zip(seqs, overruled, events, strict=True):
            full = self.tok.decode(seq)
            full.tempo = rhythm.tempo
            results.append(MelodyResult(prompt, full, full, o, e))
        return results
