"""``python -m genmodels generate CHECKPOINT``: text, a melody or a harmony, by the checkpoint's domain; and
``--suggest TEXT``: the typing view's suggestions on the command line."""

from __future__ import annotations

import argparse
from typing import Any

from genmodels.cli.generate_melody import run_melody_generate
from genmodels.cli.harmonise import harmonise_command
from genmodels.core.errors import GenmodelsError, SettingsError
from genmodels.core.options import from_flat, leaf_fields
from genmodels.infer.decoding import Settings
from genmodels.infer.harmonise import HarmonySettings
from genmodels.infer.sampling import Sampler
from genmodels.infer.suggest import suggest
from genmodels.infer.text_rows import TextSteering


def _given(cls: type, a) -> Any:
    """``cls`` built from the options of ``a`` given on the command line (the rest: the defaults)."""
    return from_flat(cls, {f.name: getattr(a, f.name) for f in leaf_fields(cls) if getattr(a, f.name) is not None})


def generate_text(sampler: Sampler, args: argparse.Namespace, length: int, settings: Settings) -> None:
    if args.prompt is None:
        raise GenmodelsError("A text model needs --prompt")
    prompt = args.prompt.encode().decode("unicode_escape") if args.escapes else args.prompt
    steering = getattr(args, "steering", None) or TextSteering()
    for i, r in enumerate(sampler.complete(prompt, length=length, settings=settings, steering=steering)):
        if settings.n > 1:
            print(f"--- candidate {i + 1} ---")
        print(prompt + r.continuation)


def generate_harmony(sampler: Sampler, args: argparse.Namespace, length: int, settings: Settings) -> None:
    if settings.top_p < 1:
        raise SettingsError("--top-p: harmony models sample with --temperature and --top-k only")
    n = settings.n if settings.n > 1 else HarmonySettings.candidates  # the best of n is kept
    harmonise_command(sampler.ckpt, args, HarmonySettings(settings.temperature, settings.top_k, settings.seed, n))


GENERATORS = {"text": generate_text, "melody": run_melody_generate, "harmony": generate_harmony}


def generate_command(a) -> None:
    sampler = Sampler(a.checkpoint)
    if a.suggest is not None:
        _suggest(sampler, a.suggest.encode().decode("unicode_escape") if a.escapes else a.suggest)
        return
    settings = _given(Settings, a)
    a.steering = _given(TextSteering, a)  # read by generate_text
    length = sampler.domain.default_length if a.length is None else a.length
    GENERATORS[sampler.domain.name](sampler, a, length, settings)


def _suggest(sampler, text: str) -> None:
    """``generate CK --suggest TEXT``: the three next words (with probabilities) and the ghost text."""
    sampler._require("text")
    words, ghost = suggest(sampler.model, sampler.tok, text)
    for i, w in enumerate(words, 1):
        print(f"{i}. {w.word}  ({w.prob:.3f})  inserts {w.insert!r}")
    if not words:
        print("(no word suggestions here)")
    print(f"ghost text: {ghost!r}")
