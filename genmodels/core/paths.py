"""Small utilities every step of the data flow shares: repository paths, stable hashing and splits,
atomic file writes. One copy of each; nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from genmodels.core.errors import CheckpointError

REPO_ROOT = Path(__file__).resolve().parents[2]
# The shipped text models, the default subjects of the text measurements (keystrokes, healing, latency).
SHIPPED_TEXT_MODELS = ("checkpoints/text-lstm", "checkpoints/text-gru")


def repo_path(path: str | os.PathLike) -> Path:
    """``path`` as given when absolute, else rooted at the repository (so defaults such as
    ``data/text`` work from any working directory)."""
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


def stable_bucket(key: str, buckets: int, hex_digits: int = 40) -> int:
    """A bucket in ``[0, buckets)`` from the sha1 of ``key``: the same on every machine and run.
    ``hex_digits`` keeps the leading digits only (the melody corpus's split was defined that way)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:hex_digits], 16) % buckets


def hash_split(key: str) -> str:
    """train / valid / test for a file of a user's folder: 1 in 20 valid, 1 in 20 test, by name."""
    b = stable_bucket(key, 20)
    return "valid" if b == 0 else "test" if b == 1 else "train"


def tree_hash(folder: str | os.PathLike) -> str:
    """SHA-256 over every file's relative path and bytes: equal hashes mean identical corpora."""
    h = hashlib.sha256()
    root = Path(folder)
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def files_hash(files: list[Path]) -> str:
    """SHA-256 over the resolved paths and bytes of ``files`` (in the order given): a cache key."""
    h = hashlib.sha256()
    for f in files:
        h.update(str(Path(f).resolve()).encode())
        h.update(hashlib.sha256(Path(f).read_bytes()).digest())
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: the directory entry lives in the directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, rename, fsync the folder.

    On any failure (disk full, permission, kill) the old file stays as it was and the temp file is
    removed; an OSError is re-raised as a CheckpointError naming the file.
    """
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError):
            raise CheckpointError(f"Could not write {path}: {e.strerror or e}; the previous file is kept") from e
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
