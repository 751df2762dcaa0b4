"""Harmonising a soprano with a trained harmoniser: several candidates in one batch, the most likely
first; regenerating one lower voice while the others stay.

Each candidate has its own random stream, seeded by (seed, i) only (``sampling.CandidateRandom``), so
candidate i is the same whether 1 or 8 are asked for. A grammar mask keeps every sample well formed:
HOLD only where the voice has a note sounding, pitches only inside the voice's range (``grid.RANGES``),
never PAD or BOS. Candidates are ranked by the model's own log-likelihood of the whole sequence
(temperature 1, no mask), which is also the ``nll`` reported (nats per lower-voice note).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genmodels.core.errors import NotationError, SettingsError
from genmodels.core.options import option
from genmodels.harmony.adapt import soprano_from_melody
from genmodels.harmony.grid import HOLD, RANGES, VOICES, Chorale
from genmodels.infer.decoding import MAX_CANDIDATES, MAX_TEMPERATURE, CandidateRandom, Settings, choose_with_uniform
from genmodels.infer.threads import single_threaded
from genmodels.infer.voice_guard import VoiceLeadingGuard
from genmodels.io.checkpoint import load_checkpoint
from genmodels.music.notation import note_name, parse_note_prompt
from genmodels.nn.harmoniser import HarmonyModel
from genmodels.tokenizers.harmony import (
    BOS,
    HOLD_ID,
    LOWER,
    REST_ID,
    chorale_with_lower,
    held_pitches,
    lower_onsets,
    lower_tokens,
    soprano_features,
)

MAX_STEPS = 4096  # grid steps (sixteenths) one request may harmonise: 256 bars of 4/4


@dataclass(frozen=True)
class HarmonySettings:
    temperature: float = option(0.8, f"harmony: sampling temperature from 0 (greedy) to {MAX_TEMPERATURE:g}")
    top_k: int = option(0, "harmony: sample from the k most likely tokens only", shown="0: off")
    seed: int = option(0, "harmony: random seed (candidate i depends only on it and i)")
    candidates: int = option(4, f"harmony: harmonisations sampled, from 1 to {MAX_CANDIDATES}; the most likely is kept")
    voice_leading: bool = option(
        True,
        "harmony: mask parallel fifths and octaves, crossed voices and upper voices over an octave apart "
        "while sampling (as Bach avoids them)",
        flag="--no-voice-leading",
    )

    def __post_init__(self) -> None:
        t, k = self.temperature, self.top_k
        if isinstance(t, bool) or not isinstance(t, (int, float)) or math.isnan(t) or not 0 <= t <= MAX_TEMPERATURE:
            raise SettingsError(f"Temperature must be a number from 0 (greedy) to {MAX_TEMPERATURE:g}; got {t!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise SettingsError(f"Top-k must be 0 (off) or a positive whole number; got {k!r}")
        n = self.candidates
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CANDIDATES:
            raise SettingsError(f"Candidates must be a whole number from 1 to {MAX_CANDIDATES}; got {n!r}")
        if not isinstance(self.voice_leading, bool):
            raise SettingsError(f"voice_leading must be True or False; got {self.voice_leading!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise SettingsError(f"The random seed must be a whole number from 0 to 2^63-1; got {self.seed!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature < 1e-4

    def sampling(self) -> Settings:
        """The shared sampler's settings for ``choose_with_uniform``."""
        return Settings(float(self.temperature), self.top_k, 1.0, self.seed, 1)


@dataclass
class HarmonyResult:
    """``chorale``: the most likely candidate; ``candidates`` best first, with ``nlls`` (nats per lower-voice
    note under the model) in the same order; ``nll``: the chosen one's."""

    chorale: Chorale
    candidates: list[Chorale]
    nlls: list[float]
    nll: float
    messages: list[str] = field(default_factory=list)


def _model_of(checkpoint) -> tuple[HarmonyModel, object]:
    if isinstance(checkpoint, (str, Path)):
        checkpoint = load_checkpoint(checkpoint)
    model = getattr(checkpoint, "model", None)
    if not isinstance(model, HarmonyModel):
        name = getattr(checkpoint, "name", checkpoint)
        raise SettingsError(
            f"{name} is not a harmony model; choose a harmony checkpoint (e.g. checkpoints/harmony-lstm)"
        )
    return model.eval(), checkpoint.tokenizer


def _check_soprano(chorale: Chorale) -> None:
    if not isinstance(chorale, Chorale):
        raise NotationError("harmonise needs a Chorale whose soprano is the melody")
    if not any(x >= 0 for x in chorale.voices[0]):
        raise NotationError("The melody has no notes: there is nothing to harmonise")
    if chorale.steps > MAX_STEPS:
        raise NotationError(
            f"The melody is {chorale.steps:,} sixteenths long; the harmoniser takes at most {MAX_STEPS:,} "
            f"({MAX_STEPS // 16} bars of 4/4): harmonise it in parts"
        )


def model_view(chorale: Chorale) -> Chorale:
    """The chorale as the model reads it: with the simplified soprano row that ``adapt.soprano_from_melody``
    leaves in ``meta["simplified"]`` (passing notes merged), where there is one; the result keeps the
    melody's own soprano."""
    row = chorale.meta.get("simplified")
    if isinstance(row, (list, tuple)) and len(row) == chorale.steps and row and row[0] != HOLD:
        return chorale.with_voice(0, tuple(int(x) for x in row))
    return chorale


def _features(chorale: Chorale, tok) -> dict[str, torch.Tensor]:
    return {k: v.unsqueeze(0) for k, v in soprano_features(model_view(chorale), tok).items()}


def voice_masks(tok, vocab: int) -> torch.Tensor:
    """(3, V) bool: the tokens each lower voice may take (its range's pitches, HOLD, REST)."""
    allowed = torch.zeros(3, vocab, dtype=torch.bool)
    for k, v in enumerate(LOWER):
        allowed[k, tok.pitch_ids(*RANGES[VOICES[v]])] = True
        allowed[k, [HOLD_ID, REST_ID]] = True
    return allowed


def sounding_rows(chorale: Chorale) -> torch.Tensor:
    """(T, 4) the pitch each voice sounds at each step (nan in rests)."""
    rows = [[math.nan if p is None else float(p) for p in chorale.sounding(v)] for v in range(4)]
    return torch.tensor(rows).t()


Progress = Callable[[float], None] | None  # told the share done (0..1) now and then; for a progress bar


@torch.no_grad()
def sample_tokens(
    model: HarmonyModel, tok, soprano: Chorale, s: HarmonySettings, n: int, forced=None, voice=None, progress=None
):
    """(n, 3T) lower-voice tokens sampled under the grammar mask (and, with ``s.voice_leading``, the
    ``VoiceLeadingGuard``). ``forced`` (3T,): teacher-force every voice but ``voice`` (0 alto, 1 tenor,
    2 bass), whose tokens alone are sampled. ``progress(share)`` is called about 50 times."""
    with single_threaded():
        return _sample(model, tok, soprano, s, n, forced, voice, progress)


def _sample(model, tok, soprano: Chorale, s: HarmonySettings, n: int, forced, voice, progress: Progress):
    feats = _features(soprano, tok)
    enc = model.encode(feats).expand(n, -1, -1)
    tonic = feats["key"][:, 0].expand(n)
    allowed = voice_masks(tok, model.config.vocab_size)
    guard = VoiceLeadingGuard(soprano, tok, n, model.config.vocab_size) if s.voice_leading else None
    kept = None if forced is None else sounding_rows(soprano)
    rng, settings = CandidateRandom(s.seed, n), s.sampling()
    out = torch.empty(n, 3 * soprano.steps, dtype=torch.long)
    prev = torch.full((n,), BOS, dtype=torch.long)
    held = torch.full((n, 3), REST_ID, dtype=torch.long)  # the pitch each voice holds (REST_ID: none)
    state = None
    total = 3 * soprano.steps
    every = max(1, total // 50)
    for i in range(total):
        if progress is not None and i % every == 0:
            progress(i / total)
        k = i % 3
        if guard is not None and k == 0:
            guard.start_step(i // 3)
        logits, state = model.step(prev, k, held, enc[:, i // 3], tonic, state)
        if forced is not None and k != voice:
            token = forced[i].expand(n)
        else:
            z = logits.masked_fill(~allowed[k], -math.inf)
            z[:, HOLD_ID] = torch.where(held[:, k] != REST_ID, z[:, HOLD_ID], -math.inf)
            if guard is not None:
                z = guard.mask(k + 1, z, None if forced is None else kept[i // 3])
            token = choose_with_uniform(z, settings, rng.uniforms())
        if guard is not None:
            guard.written(k + 1, token)
            if k == 2:
                guard.end_step()
        held = held.clone()
        held[:, k] = torch.where(token == HOLD_ID, held[:, k], token)
        out[:, i] = token
        prev = token
    return out


@torch.no_grad()
def sequence_nats(model: HarmonyModel, tok, soprano: Chorale, tokens: torch.Tensor) -> torch.Tensor:
    """The model's NLL (nats, temperature 1, no mask) of each row of ``tokens`` (n, 3T) under ``soprano``."""
    n = tokens.size(0)
    feats = {k: v.expand(n, *v.shape[1:]) for k, v in _features(soprano, tok).items()}
    prev = torch.cat([torch.full((n, 1), BOS, dtype=torch.long), tokens[:, :-1]], dim=1)
    held = torch.tensor([held_pitches(row.tolist()) for row in tokens], dtype=torch.long)
    with single_threaded():
        logp = torch.log_softmax(model(feats, prev, held).float(), dim=-1)
    return -logp.gather(2, tokens.unsqueeze(2)).squeeze(2).sum(1)


def _ranked(model, tok, soprano: Chorale, tokens: torch.Tensor) -> HarmonyResult:
    nats = sequence_nats(model, tok, soprano, tokens)
    chorales = [chorale_with_lower(soprano, row.tolist(), tok) for row in tokens]
    per_note = [float(x) / max(lower_onsets(c), 1) for x, c in zip(nats, chorales, strict=True)]
    order = sorted(range(len(chorales)), key=lambda i: (nats[i].item(), i))
    cands, nlls = [chorales[i] for i in order], [per_note[i] for i in order]
    return HarmonyResult(cands[0], cands, nlls, nlls[0])


def harmonise(
    checkpoint, soprano: Chorale, settings: HarmonySettings = HarmonySettings(), progress: Progress = None
) -> HarmonyResult:
    """Alto, tenor and bass under the soprano of ``soprano`` (its lower voices are ignored): candidates
    sampled in one batch, the most likely first. Temperature 0: the one greedy harmonisation.
    ``progress(share)``: told the share of the sampling done, now and then."""
    model, tok = _model_of(checkpoint)
    _check_soprano(soprano)
    n = 1 if settings.greedy else settings.candidates
    return _ranked(model, tok, soprano, sample_tokens(model, tok, soprano, settings, n, progress=progress))


def regenerate_voice(
    checkpoint, chorale: Chorale, voice: int, settings: HarmonySettings = HarmonySettings(), progress: Progress = None
):
    """Rewrite one lower voice (1 alto, 2 tenor, 3 bass) of ``chorale``, keeping the soprano and the other
    two: their tokens are given to the model, only this voice's are sampled, and the candidates are
    ranked by the likelihood of the whole sequence. ``progress`` as for ``harmonise``."""
    model, tok = _model_of(checkpoint)
    if isinstance(voice, bool) or voice not in LOWER:
        raise SettingsError(
            f"voice {voice!r}: regenerate 1 (alto), 2 (tenor) or 3 (bass); the soprano (0) is the melody and stays"
        )
    _check_soprano(chorale)
    n = 1 if settings.greedy else settings.candidates
    forced = lower_tokens(chorale, tok)
    tokens = sample_tokens(model, tok, chorale, settings, n, forced, voice - 1, progress)
    return _ranked(model, tok, chorale, tokens)


CARD_NOTES = "E4 G4 A4/2 B4/2 A4 G4 E4/2 D4/2 E4*2"  # the card's and the benchmark's melody


def card_sample(checkpoint: Any) -> str:
    """The card's sample: the four voices the model writes under a fixed melody (seed 1), as note names."""
    soprano = soprano_from_melody(parse_note_prompt(CARD_NOTES, meter=(4, 4), key=(4, "minor"))).chorale
    result = harmonise(checkpoint, soprano, HarmonySettings(temperature=0.8, seed=1, candidates=4))
    rows = []
    for v, name in enumerate(VOICES):
        notes = " ".join(f"{note_name(n.pitch)}/{n.steps}" for n in result.chorale.notes(v))
        rows.append(f"{name:8s} {notes}")
    return f"(under {CARD_NOTES}; durations in sixteenths)\n" + "\n".join(rows)
