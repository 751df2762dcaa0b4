"""Command line: ``python -m genmodels prepare|train|generate|harmonise|eval|mix|fit-cache|pack|bench``."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from genmodels.cli.fit_cache import fit_cache
from genmodels.cli.generate import _given, generate_command
from genmodels.cli.generate_melody import MelodyGenerateOptions
from genmodels.cli.harmonise import harmonise_command
from genmodels.cli.mix import mix_checkpoints
from genmodels.core.errors import GenmodelsError
from genmodels.core.options import add_options, leaf_fields
from genmodels.core.paths import SHIPPED_TEXT_MODELS
from genmodels.domains import DOMAINS, get_domain
from genmodels.eval import evaluate as ev
from genmodels.eval.bench import main as bench_main
from genmodels.eval.form_report import form_report
from genmodels.eval.keystrokes import keystroke_report
from genmodels.eval.ngram import baseline_report
from genmodels.harmony.adapt import CHORD_RATES
from genmodels.infer.decoding import Settings
from genmodels.infer.harmonise import HarmonySettings
from genmodels.infer.sampling import Sampler
from genmodels.infer.text_rows import TextSteering
from genmodels.io.checkpoint import load_checkpoint, pack_for_shipping
from genmodels.learn.config import TrainConfig, fine_tune_settings, resume_config
from genmodels.learn.trainer import train


def _prepare(a) -> None:
    stats = get_domain(a.what).prepare(Path(a.out) if a.out else None, workers=a.workers)
    print(json.dumps(stats, indent=1, default=str))


def _train(a) -> None:

    given = {f.name: getattr(a, f.name) for f in leaf_fields(TrainConfig) if getattr(a, f.name) is not None}
    if a.time_budget and a.steps is None and not a.resume:
        given["steps"] = 0  # the budget alone ends the run (and shapes the cosine schedule)
    cfg = resume_config(a.out, given) if a.resume else TrainConfig.from_dict(fine_tune_settings(given))
    cmd = "python -m genmodels " + " ".join(shlex.quote(x) for x in sys.argv[1:] if x != "--resume")
    try:
        r = train(cfg, resume=a.resume, command=cmd)
    except KeyboardInterrupt:
        sys.exit(130)
    if os.environ.get("RANK", "0") == "0":  # under torchrun: one result, not one per process
        best = r["best_valid"] if math.isfinite(r["best_valid"]) else None  # none finite: null, not Infinity
        print(json.dumps({"best_valid": best, "steps": r["step"], "out": cfg.out}, allow_nan=False))


def _harmonise(a) -> None:

    harmonise_command(load_checkpoint(a.checkpoint), a, _given(HarmonySettings, a))


def _eval(a) -> None:

    if a.keystrokes:
        _keystrokes(a)
        return
    if a.baseline:
        print(json.dumps(baseline_report(a.checkpoint or a.domain, order=a.order, data=a.data), indent=1))
        return
    if a.checkpoint is None:
        raise GenmodelsError("eval needs a checkpoint directory (or --baseline ngram)")
    if a.form:
        sampler = Sampler(a.checkpoint)
        print(json.dumps(form_report(sampler, a.data or sampler.domain.default_data), indent=1))
        return
    temperatures = _temperatures(a.temperatures) if a.temperatures else None
    report = ev.eval_checkpoint(
        a.checkpoint,
        folk=a.folk,
        source=a.text_file or a.midi_dir,
        data=a.data,
        music=a.music,
        samples=a.samples,
        update_card=a.update_card,
        temperatures=temperatures,
        regenerate=a.regenerate,
        dynamic=a.dynamic,
    )
    print(json.dumps(report, indent=1))
    if "music" in report and "steering_table" in report["music"]:
        print(report["music"]["steering_table"])


def _temperatures(text: str) -> tuple[float, ...]:
    return _numbers(text, "--temperatures", "0.8,1.0")


def _numbers(text: str, flag: str, example: str) -> tuple[float, ...]:
    """Numbers separated by commas, as a flag takes them; a GenmodelsError naming the flag otherwise."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise GenmodelsError(f"{flag} takes numbers separated by commas, e.g. {example}; got {text!r}") from None
    if not values:
        raise GenmodelsError(f"{flag} needs at least one number")
    return values


def _keystrokes(a) -> None:
    """``eval CK... --keystrokes``: keystroke savings of each text model and of the n-gram baseline."""

    checkpoints = a.extra_checkpoints if a.checkpoint is None else [a.checkpoint, *a.extra_checkpoints]
    checkpoints = checkpoints or list(SHIPPED_TEXT_MODELS)
    report = keystroke_report(checkpoints, data_dir=a.data or "data/text", ngram=not a.no_ngram)
    print("| predictor | keystroke savings | keystrokes | characters | suggestions accepted | seconds |")
    print("|---|---|---|---|---|---|")
    for name, r in report.items():
        print(
            f"| {name} | {100 * r['savings_rate']:.1f}% | {r['keystrokes']:,} | {r['chars']:,} | "
            f"{r['accepted']:,} | {r['seconds']:.0f} |"
        )


def _mix(a) -> None:

    weights = _numbers(a.weights, "--weights", "0.6,0.4") if a.weights is not None else None
    words = ["mix", *a.checkpoints, "--out", a.out, *(["--weights", a.weights] if a.weights is not None else [])]
    words += ["--fit-weights"] if a.fit_weights else []
    command = "python -m genmodels " + shlex.join(words)
    card = mix_checkpoints(a.checkpoints, a.out, weights, command, fit=a.fit_weights)
    print(json.dumps({"out": a.out, "valid": card["valid"], "members": card["members"]}, indent=1))


def _fit_cache(a) -> None:

    print(json.dumps(fit_cache(a.checkpoint, a.data), indent=1))


def _pack(a) -> None:

    for path in a.checkpoints:
        print(f"{path}: {pack_for_shipping(path) / 1e6:.1f} MB of half-precision weights; training state removed")


def _bench(a) -> None:

    bench_main(quick=a.quick)


def _option(
    p: argparse.ArgumentParser, *flags: str, help: str, default: Any = None, shown: str | None = None, **kw: Any
) -> None:
    """An option whose help ends with its default (``shown`` where the value alone says little)."""
    if kw.get("action") == "store_true":
        shown = shown or "off"
    p.add_argument(*flags, default=default, help=f"{help} (default: {shown or default})", **kw)


def _alias(p: argparse.ArgumentParser, old: str, dest: str) -> None:
    """An old flag kept working, not listed: model cards written before the rename still run."""
    p.add_argument(old, dest=dest, default=None, help=argparse.SUPPRESS)


def _prepare_parser(sub) -> None:
    q = sub.add_parser("prepare", help="build a default corpus (deterministic)")
    q.add_argument("what", choices=list(DOMAINS), help="which corpus")
    _option(q, "--out", help="folder to write", shown="the domain's, data/text or data/melody")
    _option(q, "--workers", type=int, default=2, help="melody: processes parsing the sources")
    q.set_defaults(fn=_prepare)


def _train_parser(sub) -> None:

    t = sub.add_parser("train", help="train an LSTM or GRU on text or melodies")
    add_options(t, TrainConfig)
    _option(
        t,
        "--resume",
        action="store_true",
        help="continue from the last save in --out (its data and shape "
        "are kept; the options given here change the rest)",
    )
    t.set_defaults(fn=_train)


def _generate_parser(sub) -> None:

    g = sub.add_parser("generate", help="continue a text or melody prompt")
    g.add_argument("checkpoint", help="checkpoint directory, e.g. checkpoints/text-lstm")
    _option(g, "--prompt", help="text: the text to continue", shown="none; a text model needs it")
    _option(g, "--escapes", action="store_true", help=r"interpret \n and \t in --prompt")
    _option(
        g,
        "--prompt-notes",
        help='melody: note names to continue, e.g. "E4 G4 A4/2 B4/2"',
        shown="none; a melody model needs this or --prompt-midi",
    )
    _option(g, "--prompt-midi", help="melody: a MIDI file to continue (its melody track)", shown="none")
    _option(
        g,
        "--track",
        type=int,
        help="melody: which track of --prompt-midi is the melody (an index as "
        "genmodels.music.list_tracks numbers them)",
        shown="the track with the fewest simultaneous notes, then the most notes",
    )
    for old, dest in (("--seed-text", "prompt"), ("--seed-notes", "prompt_notes"), ("--seed-midi", "prompt_midi")):
        _alias(g, old, dest)
    _option(g, "--meter", default="4/4", help="melody: the meter of --prompt-notes, or of a tune written from nothing")
    _option(
        g,
        "--length",
        type=int,
        help="length of the continuation in tokens (text) or bars (melody)",
        shown=", ".join(f"{d.default_length} {d.length_unit} ({d.name})" for d in DOMAINS.values()),
    )
    add_options(g, Settings)
    add_options(g, TextSteering)
    _option(
        g,
        "--suggest",
        help="text: print the three most likely next words and the ghost text (the rest "
        'of the line) after this text, e.g. "To be, or not to b"',
        shown="none",
    )
    _option(g, "--program", type=int, default=0, help="melody: General MIDI program of the written file")
    _option(g, "--out", default="generated.mid", help="melody: the .mid file to write (candidates: NAME-1.mid, ...)")
    add_options(g, MelodyGenerateOptions)
    g.set_defaults(fn=generate_command)


def _harmonise_parser(sub) -> None:

    h = sub.add_parser("harmonise", help="write alto, tenor and bass under a melody (a harmony checkpoint)")
    h.add_argument("checkpoint", help="harmony checkpoint directory, e.g. checkpoints/harmony-lstm")
    _option(h, "--prompt-midi", help="the melody: a MIDI file (its melody track; chords: the top line)", shown="none")
    _option(h, "--track", type=int, help="which track of --prompt-midi is the melody", shown="as generate picks it")
    _option(h, "--prompt-notes", help='the melody as note names, e.g. "E4 G4 A4/2 B4/2"', shown="none")
    _option(h, "--meter", default="4/4", help="the meter of --prompt-notes")
    _option(
        h, "--corpus-tune", help="the melody: a test tune of the melody corpus whose name contains this", shown="none"
    )
    _option(
        h,
        "--chord-rate",
        choices=list(CHORD_RATES),
        default="beat",
        help="where chords are taken to change when the melody is simplified for the harmoniser (shorter notes "
        "between those points are read as passing notes) and how often chord symbols are named; half-bar suits "
        "fast tunes",
    )
    add_options(h, HarmonySettings)
    _option(h, "--out", default="harmonised.mid", help="the four-track MIDI file to write")
    _option(h, "--musicxml", help="also write the four parts (with chord symbols) as MusicXML here", shown="none")
    h.set_defaults(fn=_harmonise)


def _eval_parser(sub) -> None:
    e = sub.add_parser("eval", help="test metric of a checkpoint, or an n-gram baseline")
    e.add_argument("checkpoint", nargs="?", help="checkpoint directory (optional with --baseline)")
    _option(e, "--text-file", help="text: score this file instead of the test split", shown="the test split")
    _option(
        e,
        "--midi-dir",
        help="melody: score this folder of MIDI files instead of the test split",
        shown="the test split",
    )
    _option(e, "--data", help="corpus folder whose test split to use", shown="the one in the checkpoint's card")
    _option(
        e,
        "--baseline",
        choices=["ngram"],
        help="score the Kneser-Ney n-gram floor instead of a checkpoint",
        shown="none",
    )
    _option(e, "--domain", choices=list(DOMAINS), default="text", help="--baseline without a checkpoint: which one")
    _option(
        e, "--order", type=int, help="--baseline: the n-gram order", shown="text 7; melody the best of 2-8 on valid"
    )
    _measure_options(e)
    e.set_defaults(fn=_eval)


def _measure_options(e) -> None:
    """eval's options for what to measure beside the test metric."""
    _option(e, "--music", action="store_true", help="melody: musical statistics of 200 generated vs held-out tunes")
    _option(
        e,
        "--form",
        action="store_true",
        help="melody: repeated bars, part echo and cadences at part ends of held-out dance tunes and of the "
        "model's continuations of their first two bars, played out",
    )
    _option(
        e,
        "--dynamic",
        action="store_true",
        help="also the test metric with dynamic evaluation (the model adapts to the text as it reads it)",
    )
    _option(
        e,
        "--temperatures",
        help="melody --music: the temperatures of the stay-in-key / end-on-tonic table, separated by commas",
        shown="1.0",
    )
    _option(
        e,
        "--regenerate",
        action="store_true",
        help="melody: regenerate two inner bars of 200 held-out tunes "
        "and compare the chosen passage with a plain continuation",
    )
    _option(e, "--samples", action="store_true", help="add a sample to the report")
    _option(
        e,
        "--folk",
        type=int,
        default=0,
        help="harmony: also the voice-leading faults of the model's harmonies of this many held-out folk tunes",
    )
    _option(e, "--update-card", action="store_true", help="write the results into the model card")
    _option(
        e,
        "--keystrokes",
        action="store_true",
        help="text: keystroke savings of predictive typing with three "
        "suggestions on a fixed test sample, beside a character Kneser-Ney 7-gram",
    )
    _option(e, "--no-ngram", action="store_true", help="--keystrokes: leave out the n-gram baseline")
    e.add_argument("extra_checkpoints", nargs="*", help="--keystrokes: more text checkpoints to compare")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m genmodels", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    _prepare_parser(sub)
    _train_parser(sub)
    _generate_parser(sub)
    _harmonise_parser(sub)
    _eval_parser(sub)
    m = sub.add_parser("mix", help="join trained models into one that averages their predictions")
    m.add_argument("checkpoints", nargs="+", help="two or more checkpoints with the same tokenizer, cell and width")
    m.add_argument("--out", required=True, help="new checkpoint folder to write (required)")
    _option(m, "--weights", help="each model's share, e.g. 0.6,0.4", shown="equal shares")
    _option(m, "--fit-weights", action="store_true", help="the shares that best predict the validation split")
    m.set_defaults(fn=_mix)
    f = sub.add_parser(
        "fit-cache",
        help="melody: fit how much the model copies earlier bars of the tune (on the validation split) and save it",
    )
    f.add_argument("checkpoint", help="melody checkpoint directory (its config.json is updated)")
    _option(f, "--data", help="corpus folder whose validation split to use", shown="the one in the checkpoint's card")
    f.set_defaults(fn=_fit_cache)
    k = sub.add_parser("pack", help="half-precision weights, no training state: ready to commit")
    k.add_argument("checkpoints", nargs="+", help="checkpoint directories to rewrite in place")
    k.set_defaults(fn=_pack)
    b = sub.add_parser("bench", help="speed and memory benchmark of the shipped models")
    _option(b, "--quick", action="store_true", help="fewer repetitions (noisier figures)")
    b.set_defaults(fn=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        a.fn(a)
    except GenmodelsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
