"""Command line: ``python -m genmodels prepare|train|generate|eval|bench``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from genmodels.errors import GenmodelsError


def _prepare(a) -> None:
    if a.what == "text":
        from genmodels.corpus import prepare_text

        stats = prepare_text(a.out or "data/text")
    else:
        from genmodels.corpus import DATA_README, write_readme_section
        from genmodels.melody_corpus import prepare_melody, write_data_readme_section

        stats = prepare_melody(a.out or "data/melody", workers=a.workers)
        write_readme_section(DATA_README, "melody", write_data_readme_section(stats))
    print(json.dumps(stats, indent=1, default=str))


def _train(a) -> None:
    from genmodels.train import TrainConfig, resume_config, train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(a).items() if k in fields and v is not None}
    if a.data is None and not a.resume:
        given["data"] = "data/text" if a.domain == "text" else "data/melody"
    if a.time_budget and a.steps is None and not a.resume:
        given["steps"] = 0  # the budget alone ends the run (and shapes the cosine schedule)
    cfg = resume_config(a.out, given) if a.resume else TrainConfig(**given)
    cmd = "python -m genmodels " + " ".join(shlex.quote(x) for x in sys.argv[1:] if x != "--resume")
    try:
        r = train(cfg, resume=a.resume, command=cmd)
    except KeyboardInterrupt:
        sys.exit(130)
    print(json.dumps({"best_valid": r["best_valid"], "steps": r["step"], "out": cfg.out}))


def _generate(a) -> None:
    from genmodels.sampling import Generator, Settings

    g = Generator(a.checkpoint)
    s = Settings(temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, seed=a.seed, n=a.n)
    if g.domain == "text":
        if a.seed_text is None:
            raise GenmodelsError("A text model needs --seed-text")
        seed = a.seed_text.encode().decode("unicode_escape") if a.escapes else a.seed_text
        for i, r in enumerate(g.complete(seed, length=a.length, settings=s)):
            if s.n > 1:
                print(f"--- candidate {i + 1} ---")
            print(seed + r.continuation)
        return
    from genmodels.melody import format_note_seed, parse_note_seed, read_midi, write_midi

    if a.seed_midi:
        seed = read_midi(a.seed_midi)
    elif a.seed_notes:
        seed = parse_note_seed(a.seed_notes, meter=tuple(int(x) for x in a.meter.split("/")))
    else:
        raise GenmodelsError("A melody model needs --seed-notes or --seed-midi")
    out = Path(a.out or "generated.mid")
    for i, r in enumerate(g.generate_melody(seed, bars=a.length, settings=s)):
        path = out if s.n == 1 else out.with_name(f"{out.stem}-{i + 1}{out.suffix}")
        write_midi(r.full, path, program=a.program)
        print(f"{path}: {format_note_seed(r.full)}")


def _eval(a) -> None:
    from genmodels import evaluate as ev

    if a.baseline:
        from genmodels.baselines import baseline_report

        print(json.dumps(baseline_report(a.checkpoint or a.domain, order=a.order, data=a.data), indent=1))
        return
    if a.checkpoint is None:
        raise GenmodelsError("eval needs a checkpoint directory (or --baseline ngram)")
    report = ev.eval_checkpoint(a.checkpoint, text_file=a.text_file, midi_dir=a.midi_dir, data=a.data,
                                music=a.music, samples=a.samples, update_card=a.update_card)
    print(json.dumps(report, indent=1))


def _pack(a) -> None:
    from genmodels.checkpoint import pack_for_shipping

    for path in a.checkpoints:
        print(f"{path}: {pack_for_shipping(path) / 1e6:.1f} MB of half-precision weights; training state removed")


def _bench(a) -> None:
    from genmodels.bench import main as bench_main

    bench_main(quick=a.quick)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m genmodels", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    q = sub.add_parser("prepare", help="build a default corpus (deterministic)")
    q.add_argument("what", choices=["text", "melody"])
    q.add_argument("--out", default=None)
    q.add_argument("--workers", type=int, default=2)
    q.set_defaults(fn=_prepare)

    t = sub.add_parser("train", help="train an LSTM or GRU on text or melodies")
    t.add_argument("--domain", choices=["text", "melody"], required=True)
    t.add_argument("--cell", choices=["lstm", "gru"], default=None, help="default: lstm")
    t.add_argument("--data", default=None, help="corpus folder (default: data/text or data/melody)")
    t.add_argument("--out", required=True, help="checkpoint directory, e.g. checkpoints/my-model")
    t.add_argument("--resume", action="store_true", help="continue from the last save in --out")
    for name, typ in (("emb-dim", int), ("hidden", int), ("layers", int), ("dropout", float), ("vocab-size", int),
                      ("batch", int), ("bptt", int), ("lr", float), ("weight-decay", float), ("clip", float),
                      ("steps", int), ("warmup", int), ("min-lr-ratio", float), ("eval-every", int),
                      ("save-every", int), ("eval-tokens", int), ("seed", int), ("threads", int)):
        t.add_argument(f"--{name}", type=typ, default=None)
    t.add_argument("--tie-weights", action="store_true", default=None)
    t.add_argument("--init-from", default=None, help="fine-tune: start from this checkpoint's weights and tokenizer")
    t.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    t.add_argument("--optimizer", choices=["adamw", "sgd"], default=None,
                   help="adamw (default) or plain SGD as in pytorch/examples word_language_model")
    t.add_argument("--schedule", choices=["cosine", "plateau"], default=None,
                   help="cosine (default; spans --steps or --time-budget) or plateau: lr ÷ --plateau-factor (4) "
                        "whenever validation does not improve")
    t.add_argument("--plateau-factor", type=float, default=None)
    t.add_argument("--precision", choices=["auto", "bf16", "fp32"], default=None,
                   help="auto (default): bf16 autocast where the CPU has AVX-512 BF16/AMX (or the GPU bf16), else fp32")
    t.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="stop after this much process CPU time (all threads), then save and validate; "
                        "without --steps the run has no step limit")
    t.set_defaults(fn=_train)

    g = sub.add_parser("generate", help="continue a text or melody seed")
    g.add_argument("checkpoint")
    g.add_argument("--seed-text")
    g.add_argument("--escapes", action="store_true", help=r"interpret \n and \t in --seed-text")
    g.add_argument("--seed-notes")
    g.add_argument("--seed-midi")
    g.add_argument("--meter", default="4/4")
    g.add_argument("--length", type=int, default=None, help="tokens (text, default 200) or bars (melody, default 8)")
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0, help="random seed")
    g.add_argument("-n", type=int, default=1, help="candidates")
    g.add_argument("--program", type=int, default=0, help="General MIDI program for the written file")
    g.add_argument("--out", default=None, help="melody: .mid file to write (default generated.mid)")
    g.set_defaults(fn=_generate)

    e = sub.add_parser("eval", help="test metric of a checkpoint, or an n-gram baseline")
    e.add_argument("checkpoint", nargs="?")
    e.add_argument("--text-file")
    e.add_argument("--midi-dir")
    e.add_argument("--data", default=None, help="corpus folder whose test split to use")
    e.add_argument("--baseline", choices=["ngram"])
    e.add_argument("--domain", choices=["text", "melody"], default="text")
    e.add_argument("--order", type=int, default=None)
    e.add_argument("--music", action="store_true", help="melody: musical statistics of 200 generated vs held-out tunes")
    e.add_argument("--samples", action="store_true", help="add a sample to the report")
    e.add_argument("--update-card", action="store_true", help="write the results into the model card")
    e.set_defaults(fn=_eval)

    k = sub.add_parser("pack", help="half-precision weights, no training state: ready to commit")
    k.add_argument("checkpoints", nargs="+")
    k.set_defaults(fn=_pack)

    b = sub.add_parser("bench", help="speed and memory benchmark of the shipped models")
    b.add_argument("--quick", action="store_true")
    b.set_defaults(fn=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if getattr(a, "length", 0) is None:
        a.length = None
    try:
        if a.cmd == "generate" and a.length is None:
            from genmodels.checkpoint import load_checkpoint

            a.length = 200 if load_checkpoint(a.checkpoint).domain == "text" else 8
        a.fn(a)
    except GenmodelsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
