"""Sampling from a loaded checkpoint: temperature (0 = greedy), top-k, top-p, a per-request random seed,
N candidates as one batch, streaming text deltas, next-token probabilities, and grammar-masked melodies.

The prompt (the text or notes to continue) is run through the model in one fused call (``prefill``);
each new token then costs one ``model.step``. Every request owns its random generators (one per
candidate), so concurrent requests never share random state: the same random seed and inputs give the
same output, whoever else is generating. Candidate i depends only on (seed, i), not on how many
candidates were asked for.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from genmodels.core.errors import MidiError, SettingsError
from genmodels.core.registry import Domain
from genmodels.infer.constraints import MelodySteering
from genmodels.infer.decoding import (
    CONTEXT_BARS,
    MAX_BARS,
    MELODY_BARS,
    CandidateRandom,
    Settings,
    choose_with_uniform,
)
from genmodels.infer.form import form_script
from genmodels.infer.melody_rework import MelodyRework
from genmodels.infer.melody_rows import NO_STEERING, MelodyResult, _behind, _MelodyRows, continuation_of
from genmodels.infer.text_sampling import TextSampling
from genmodels.infer.threads import single_threaded
from genmodels.io.checkpoint import Checkpoint, load_checkpoint
from genmodels.music import MAX_DURATION_TOKEN, Melody
from genmodels.music.form import REPEAT_START, check_form
from genmodels.nn.cache import CacheWeights, History, mixed_log_probs
from genmodels.nn.rnn import expand_state


class Sampler(MelodyRework, TextSampling):
    """Sampling over one loaded checkpoint (text or melody). Safe to share between threads."""

    def __init__(self, checkpoint: Checkpoint | str | Path, cache: bool = True):
        """``cache``: melodies mix the network with copies of the tune's own earlier bars where the checkpoint
        has fitted cache weights (``genmodels.nn.cache``); False samples from the network alone."""
        self.ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.cache = CacheWeights.from_config(self.ckpt.config.get("cache")) if cache else None
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

    def _require(self, domain: str) -> None:
        if self.domain.name != domain:
            raise SettingsError(f"{self.ckpt.name} is a {self.domain.name} model, not a {domain} model")

    # melody -------------------------------------------------------------------------------------
    def melody_prefix(self, prompt, from_start: bool = True) -> list[int]:
        """Tokens of a prompt melody without its end: a bar left open is not padded with a rest, and
        rests written after the last note (``prompt.length``) are kept. A prompt with no notes is just
        the header (meter and key): the model starts the tune."""
        if not prompt.notes:
            return self.tok.header(prompt.meter, prompt.key)
        ids = self.tok.encode(prompt, add_eos=False, from_start=from_start)
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
        with single_threaded():
            return self._sample_rows(rows, gen, prefixes, bars, s)

    def _sample_rows(self, rows, gen, prefixes: list[list[int]], bars: list[int], s: Settings):
        logits, state = self.model.prefill(torch.tensor(prefixes, dtype=torch.long))
        histories = [History(self.tok.bar_id, p) for p in prefixes] if self.cache else []
        for _ in range((max(bars) + 2) * (2 * MAX_DURATION_TOKEN + 1) + 1):  # enough for the shortest notes
            if all(rows.done):
                break
            if self.cache:
                logits = mixed_log_probs(logits, histories, self.cache)
            logits = logits.masked_fill(~rows.grammar_mask() | self._banned, -math.inf)
            biased = rows.biased(logits)
            u = gen.uniforms()
            tokens = choose_with_uniform(biased, s, u)
            own = tokens if biased is logits else choose_with_uniform(logits, s, u)
            rows.advance(tokens.tolist(), own.tolist())
            for h, t in zip(histories, tokens.tolist(), strict=False):
                h.add(t)
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
        prefix = self.melody_prefix(context, from_start=not cut)
        # A fixed form writes its own signs; as the model writes, a prompt without signs may open a repeat.
        prefix = self._written_prompt(prefix, steering.style, s.seed, steering.form.free and not context.form, bars)
        if not steering.form.free:
            prefix = self._form_prefix(context, prefix, steering)
        seqs, overruled, events = self._sample_bars(prefix, bars, s, steering, prompt.key)
        results = []
        for seq, o, e in zip(seqs, overruled, events, strict=True):
            full = self.tok.decode(seq)
            full.tempo = prompt.tempo
            if not steering.form.free and not full.form:
                full = written_in_form(full, steering.form)
            continuation = continuation_of(full, context.end)
            if cut:
                full = _behind(prompt, full, cut)
            results.append(MelodyResult(prompt, full, continuation, o, e, self.tok.style_of(prefix)))
        return results

    def _written_prompt(
        self, prefix: list[int], style: str | None, seed: int, open_repeat: bool, bars: int = 0
    ) -> list[int]:
        """The prompt as the tune would be written: its style token in place of <bos>, and, with
        ``open_repeat``, the repeat sign it may open with where ``bars`` more bars leave room for it.

        The style is ``style``, or where none is asked for, drawn given the prompt. A prompt carries no repeat
        signs, but the tune it starts may repeat a part from its first bar, or from its second after a pickup,
        opening with "|:" there (a tokenizer without styles opens a repeat from the first bar implicitly: only
        the second counts). Style and opening are drawn together from the model's posterior: the likelihood of
        the prompt's meter, key and notes written each way, every style equally likely before. (Drawn apart, a
        fiddle tune's opening without its "|:" would sound like a folk song, which never has one.) A model
        without styles, or last trained on tunes of none (a user's own), keeps <bos>."""
        styles = getattr(self.tok, "styles", ())
        if style is not None:
            if style not in styles:
                known = f"its styles: {', '.join(styles)}" if styles else "it was trained without styles"
                raise SettingsError(f"This model knows no style {style!r}; {known}")
            firsts = [self.tok.start_id(style)]
        else:  # the styles its last training data had; none: written as that data was
            trained = [st for st in self.ckpt.config.get("styles", styles) if st in styles]
            firsts = [self.tok.start_id(st) for st in trained] or [prefix[0]]
        openings = self._openings(prefix, bars) if open_repeat else [prefix]
        options = [[first, *q[1:]] for first in firsts for q in openings]
        if len(options) == 1:
            return options[0]
        scores = torch.tensor(self.log_likelihood(options, [1] * len(options)))
        g = torch.Generator().manual_seed(int(seed) ^ 0x5EED)
        return options[int(torch.multinomial(torch.softmax(scores, 0), 1, generator=g))]

    def _openings(self, prefix: list[int], bars: int) -> list[list[int]]:
        """The prefix as it is, and with "|:" before its first bar (not where a repeat from the first bar opens
        implicitly) or its second, where the grammar allows one and ``bars`` more bars leave room for a repeat
        that holds a new bar: otherwise the repeat would close at once, its second pass the prompt again (and
        its last note, which end on the tonic cannot move, the tune's)."""
        start = getattr(self.tok, "sign_ids", {}).get(REPEAT_START)
        if start is None:
            return [prefix]
        lines = [i for i, t in enumerate(prefix) if t == self.tok.bar_id and i >= self.tok.header_length]
        out = [prefix]
        for line in lines[1 if self.tok.implicit_start else 0 : 2]:
            if bars < sum(t == self.tok.bar_id for t in prefix[line:]) + 2:  # body of k + 1 bars, played twice
                continue
            opened = prefix[:line] + [start] + prefix[line:]
            try:
                self.tok.grammar_state(opened)  # a note held over the bar line cannot follow a sign
            except MidiError:
                continue
            out.append(opened)
        return out

    def _form_prefix(self, prompt, prefix: list[int], steering: MelodySteering) -> list[int]:
        """The prompt as the first bars of a fixed form's first part: after its |: where the part
        repeats with signs. A prompt that has a form of its own is continued as played."""
        if prompt.form:
            prefix = Melody(prompt.notes, prompt.meter, prompt.key, prompt.tempo, prompt.length)
            prefix = self.melody_prefix(prefix)
        full_bars = self.tok.grammar_state(prefix).bars_completed
        script = form_script(steering.form, bool(self.tok.form), full_bars, self.tok.implicit_start)
        if script and script[0].kind == "sign":
            h = self.tok.header_length
            prefix = prefix[:h] + [self.tok.sign_ids[script[0].sign]] + prefix[h:]
        return prefix


def written_in_form(melody, form):
    """A tune generated in ``form`` by a model without repeat signs (its repeats were written out note for note):
    the same notes with the form's repeats, so the score and the exports write them with signs. Left as it is
    where the notes do not match the form (a part cut short by the length limit)."""
    written = dataclasses.replace(melody, form=form.repeats())
    try:
        check_form(written)
    except MidiError:
        return melody
    return written
