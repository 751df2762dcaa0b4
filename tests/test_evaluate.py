"""eval: the test metric of a checkpoint, on its corpus or any text file / MIDI folder; the card."""

import json
import shutil
import subprocess
import sys

from genmodels.eval.evaluate import eval_checkpoint


def _eval(*args):
    p = subprocess.run(
        [sys.executable, "-m", "genmodels", "eval", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_eval_text_on_its_test_split_and_on_any_file(tiny_text_ckpt, small_text_dir, tmp_path):
    r = _eval(tiny_text_ckpt, "--data", small_text_dir)
    assert r["test"]["metric"] == "bits_per_char" and 1.0 < r["test"]["value"] < 12
    f = tmp_path / "mine.txt"
    f.write_text("To be, or not to be, that is the question.\n" * 20)
    r2 = _eval(tiny_text_ckpt, "--text-file", f)
    assert r2["test"]["units"] == len(f.read_text()) and r2["test"]["value"] > 0


def test_update_card_reprints_the_same_metric(tiny_text_ckpt, small_text_dir, tmp_path):
    ck = tmp_path / "ck"
    shutil.copytree(tiny_text_ckpt, ck)
    r = eval_checkpoint(str(ck), data=str(small_text_dir), samples=True, update_card=True)
    card = json.loads((ck / "card.json").read_text())
    assert card["test"]["value"] == r["test"]["value"] and card["samples"][0].startswith("ROMEO:\n")
    md = (ck / "card.md").read_text()
    assert "bits_per_char" in md and "- Command: `" in md and "## Sample" in md
    assert _eval(ck, "--data", small_text_dir)["test"]["value"] == card["test"]["value"]


def test_eval_melody_on_a_midi_folder(small_melody_dir, tmp_path):
    from genmodels.learn.trainer import train
    from tests.conftest import TINY, train_config

    out = tmp_path / "mel"
    train(
        train_config(
            domain="melody", data=str(small_melody_dir), out=str(out), steps=30, eval_every=30, **{**TINY, "batch": 4}
        ),
        progress=False,
    )
    r = _eval(out, "--midi-dir", small_melody_dir)
    assert r["test"]["metric"] == "nats_per_note" and r["test"]["units"] > 100 and r["test"]["value"] > 0
