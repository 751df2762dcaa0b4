"""Reworking a melody: regenerate some bars (several candidates, ranked by how well the bars after them follow)
and keep a rhythm with new pitches."""

from __future__ import annotations

import dataclasses

import torch

from genmodels.core.errors import SettingsError
from genmodels.infer.constraints import MelodySteering, rhythm_template
from genmodels.infer.decoding import (
    CONTEXT_BARS,
    MAX_BARS,
    MAX_CANDIDATES,
    Settings,
)
from genmodels.infer.melody_rows import NO_STEERING, MelodyResult
from genmodels.music import Melody
from genmodels.nn.cache import target_log_probs


class MelodyRework:
    """Regenerating bars and re-pitching a rhythm, for ``Sampler``."""

    def following_log_likelihood(self, bodies: list[list[int]], following: list[int]) -> list[float]:
        """log p(``following`` | body) in nats for each token sequence in ``bodies``."""
        if not following:
            return [0.0] * len(bodies)
        return self.log_likelihood([b + following for b in bodies], [len(b) for b in bodies])

    def log_likelihood(self, seqs: list[list[int]], starts: list[int]) -> list[float]:
        """log p(seq[start:] | seq[:start]) in nats for each sequence (teacher-forced, one batch: right padding
        does not reach earlier positions of a left-to-right model)."""
        width = max(len(q) for q in seqs)
        x = torch.full((len(seqs), width), self.tok.pad_id, dtype=torch.long)
        for i, q in enumerate(seqs):
            x[i, : len(q)] = torch.tensor(q)
        with torch.inference_mode():
            logits, _ = self.model(x)
            logp = torch.log_softmax(logits.float(), -1)
        out = []
        for i, (q, start) in enumerate(zip(seqs, starts, strict=True)):
            if self.cache:  # the model as it samples: the network with copies of the tune's own bars
                out.append(float(target_log_probs(logp[i], q, start, self.tok.bar_id, self.cache).sum()))
                continue
            rows = logp[i, start - 1 : len(q) - 1]
            out.append(float(rows.gather(1, torch.tensor(q[start:])[:, None]).sum()))
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
        following = (
            self.tok.encode(after, add_eos=False, from_start=False)[self.tok.header_length :] if after.notes else []
        )
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
