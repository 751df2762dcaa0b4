"""The files and names of training jobs: the job folder layout, model names a user may choose, whether a
process is still the one a job started, and a finished model as a zip."""

from __future__ import annotations

import ctypes
import io
import os
import re
import signal
import zipfile
from pathlib import Path

from genmodels.core.errors import GenmodelsError
from genmodels.io.checkpoint import PROGRESS, TRAIN_STATE

JOB_FILE = "job.json"


LOG_FILE = "train.log"


MODEL_DIR = "model"


WORKER_LOCK = ".worker.lock"


QUEUE_LOCK = ".queue.lock"


STATUSES = ("queued", "running", "done", "failed", "stopped")


MAX_RESTARTS = 2  # a job that loses its worker more often than this (a crash that recurs) is failed


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,47}")


RESERVED = ("con", "prn", "aux", "nul")  # folder names some systems refuse


class JobError(GenmodelsError):
    """A job cannot be created or changed as asked (the message says why)."""


def check_model_name(name: str, models_root: Path) -> str:
    """``name`` if it can be a new model's folder: letters, digits, dot, dash, underscore (48 at most, a
    letter or digit first) and no model of that name yet; JobError otherwise."""
    if not NAME_RE.fullmatch(name or "") or name.lower().split(".")[0] in RESERVED:
        raise JobError(
            f"{name!r} cannot name a model: use 1-48 letters, digits, '.', '-' or '_', starting with a letter or digit"
        )
    if (models_root / name).exists():
        raise JobError(f"A model named {name!r} exists already; choose another name")
    return name


def _alive(pid: int | None, marker: str = "") -> bool:
    """Whether process ``pid`` runs (and its command line holds ``marker``: a reused pid is not ours)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return not marker  # no /proc: trust the pid alone


def _die_with_parent() -> None:
    """In the train process before it starts: SIGINT (save, then stop) when the worker dies, and a low
    priority."""
    os.nice(10)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass  # elsewhere a job whose worker died is found by the next worker and resumed


def _import_path() -> str:
    """PYTHONPATH for a child process: this package's folder first, so the child runs the same code."""
    here = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH", "")
    return here + (os.pathsep + rest if rest else "")


def model_zip(path: str | os.PathLike) -> bytes:
    """A checkpoint folder as a zip holding the folder (what ``python -m genmodels generate FOLDER`` loads),
    without its training state."""
    path = Path(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(path.iterdir()):
            if f.is_file() and f.name not in (TRAIN_STATE, PROGRESS) and not f.name.startswith("."):
                z.write(f, f"{path.name}/{f.name}")
    return buf.getvalue()
