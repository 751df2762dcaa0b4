"""Domains: one description per kind of sequence, found by name; nothing else compares domain names.
Settings: one home per setting, the command line built from the config dataclasses."""

import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from genmodels.core.errors import SettingsError
from genmodels.core.options import flatten
from genmodels.domains import DOMAINS, HARMONY, MELODY, TEXT, get_domain
from genmodels.learn.config import TrainConfig, command_from_config

ROOT = Path(__file__).resolve().parents[1]
NAME_COMPARISON = re.compile(
    r"""== ?['"](text|melody|harmony)['"]|['"](text|melody|harmony)['"] ?(==|in)|domain ?== """
)


def test_registry_and_unknown_names():
    assert DOMAINS == {"text": TEXT, "melody": MELODY, "harmony": HARMONY} and get_domain("melody") is MELODY
    for bad in ("chorales", None, 3):
        with pytest.raises(SettingsError, match="domain must be one of 'text', 'melody', 'harmony'"):
            get_domain(bad)
    with pytest.raises(SettingsError):
        TrainConfig(domain="chords")


def test_metrics_convert_nats():
    assert TEXT.nats_to_metric(2 * math.log(2) * 10, 10) == pytest.approx(2.0)  # bits per char
    assert MELODY.nats_to_metric(30.0, 10) == pytest.approx(3.0)  # nats per note
    assert (TEXT.metric, MELODY.metric) == ("bits_per_char", "nats_per_note")
    assert TEXT.default_data == ROOT / "data/text" and MELODY.default_data == ROOT / "data/melody"


def test_no_domain_name_is_compared_outside_the_domain_modules():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    found = [
        f"{f}:{i}"
        for f in files
        if not f.startswith("genmodels/domains/")
        for i, line in enumerate((ROOT / f).read_text().splitlines(), 1)
        if NAME_COMPARISON.search(line)
    ]
    assert not found


def test_every_option_of_every_verb_shows_help_and_default():
    from genmodels.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {
        "prepare",
        "train",
        "generate",
        "harmonise",
        "eval",
        "mix",
        "fit-cache",
        "pack",
        "bench",
    }
    for verb, parser in sub.choices.items():
        for act in parser._actions:
            if isinstance(act, argparse._HelpAction) or act.help == argparse.SUPPRESS:
                continue
            assert act.help, (verb, act.dest)
            if act.option_strings:
                assert "(default: " in act.help or "(required)" in act.help, (verb, act.option_strings, act.help)


def test_old_flags_still_parse():
    from genmodels.cli.main import build_parser

    a = build_parser().parse_args(["generate", "ck", "--seed-text", "To be", "--seed", "3", "-n", "2"])
    assert (a.prompt, a.seed, a.n) == ("To be", 3, 2)
    a = build_parser().parse_args(["generate", "ck", "--seed-notes", "E4", "--seed-midi", "x.mid"])
    assert (a.prompt_notes, a.prompt_midi) == ("E4", "x.mid")
    flags = (
        "--emb-dim 8 --hidden 8 --layers 1 --dropout 0.1 --tie-weights --vocab-size 300 --batch 4 --bptt 8 "
        "--lr 0.01 --weight-decay 0 --clip 2 --steps 5 --warmup 1 --min-lr-ratio 0.1 --eval-every 5 "
        "--save-every 5 --eval-tokens 100 --seed 1 --threads 1 --init-from x --no-augment --resume"
    )
    a = build_parser().parse_args(["train", "--domain", "text", "--out", "o", *flags.split()])
    assert a.emb_dim == 8 and a.tie_weights and a.augment is False and a.resume and a.init_from == "x"


def test_a_shipped_card_with_the_flat_layout_still_reads():
    # Cards written before TrainConfig held a ModelConfig keep the model's fields beside the others.
    flat = flatten(json.loads((ROOT / "checkpoints/text-gru/card.json").read_text())["hyperparameters"])
    cfg = TrainConfig.from_dict(flat)
    assert cfg.model.hidden == flat["hidden"] and cfg.model.tie_weights == flat["tie_weights"]
    assert (cfg.lr, cfg.domain) == (flat["lr"], flat["domain"])
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # the nested layout reads back the same
    cmd = command_from_config(cfg)
    assert cmd.startswith("python -m genmodels train --domain text") and "--tie-weights" in cmd
    assert f"--hidden {flat['hidden']}" in cmd and "--no-augment" not in cmd


def test_cli_train_help_lists_every_setting():
    p = subprocess.run(
        [sys.executable, "-m", "genmodels", "train", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert p.returncode == 0 and "--emb-dim" in p.stdout and "(default: 256)" in p.stdout


@pytest.mark.parametrize(
    "module",
    [
        "scripts.keystrokes",
        "scripts.healing_accuracy",
        "scripts.suggestions",
        "scripts.harmony_baselines",
        "scripts.recipe_summary",
        "scripts.per_document",
        "scripts.dynamic_tune",
    ],
)
def test_measurement_commands_answer_help_without_running(module):
    """The README's measurement commands print their usage for --help (they used to start a minutes-long
    run, or read "--help" as the text to complete)."""
    p = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("usage:"), p.stdout[-500:] + p.stderr[-500:]
