"""Training jobs for a server: the library's ``train`` command in a process of its own, one at a time, with its
state on disk so that any page, tab or restarted server sees it.

A jobs folder holds one folder per job (``job.json``: its status, command, process, output; ``train.log``;
``model/``, the run's checkpoint folder) and a lock file. A worker process (``python -m genmodels.learn.jobs
work JOBS MODELS``) holds the lock while it lives and runs the queued jobs one after another, oldest first; a
second worker finds the lock taken and leaves, and a worker that dies releases it (the kernel drops the lock
with the process), which is how a restarted server knows that a job marked running lost its worker. The
train process gets SIGINT when its worker dies (the trainer then saves, as on Ctrl-C), so such a job resumes
from its last save.

A finished model is copied into the models folder under a name starting with a dot and renamed to its own
name when whole: a model list (``find_checkpoints``) never shows a half-written model.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genmodels.core.paths import atomic_write_json
from genmodels.io.checkpoint import CONFIG, PROGRESS, TRAIN_STATE, WEIGHTS
from genmodels.learn.job_files import (
    JOB_FILE,
    LOG_FILE,
    MODEL_DIR,
    QUEUE_LOCK,
    JobError,
    _alive,
    check_model_name,
)
from genmodels.learn.job_worker import JobWorker


class JobQueue(JobWorker):
    """The jobs of one server: ``root`` holds them; a finished model goes into ``models_root``."""

    def __init__(self, root: str | os.PathLike, models_root: str | os.PathLike):
        self.root, self.models_root = Path(root), Path(models_root)

    # reading ----------------------------------------------------------------------------------------
    def job(self, job_id: str) -> dict:
        f = self.root / job_id / JOB_FILE
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise JobError(f"No job {job_id!r} ({e})") from e

    def jobs(self) -> list[dict]:
        """Every job, oldest first."""
        if not self.root.is_dir():
            return []
        out = []
        for d in sorted(self.root.iterdir()):
            if (d / JOB_FILE).is_file():
                try:
                    out.append(self.job(d.name))
                except JobError:
                    continue  # a job folder being created or deleted
        return sorted(out, key=lambda j: (j["created"], j["id"]))

    def queue(self) -> list[dict]:
        """The running job, then the queued ones in the order they will run."""
        jobs = self.jobs()
        return [j for j in jobs if j["status"] == "running"] + [j for j in jobs if j["status"] == "queued"]

    def place(self, job_id: str) -> int | None:
        """0: running; n: n jobs before it; None: not waiting."""
        ids = [j["id"] for j in self.queue()]
        return ids.index(job_id) if job_id in ids else None

    def progress(self, job: dict) -> dict:
        """The trainer's ``progress.json`` of the job ({} before its first report)."""
        try:
            return json.loads((Path(job["out"]) / PROGRESS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def log_tail(self, job: dict, chars: int = 2000) -> str:
        try:
            with open(self.root / job["id"] / LOG_FILE, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - chars))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return text.replace("\r", "\n")

    def has_weights(self, job: dict) -> bool:
        return (Path(job["out"]) / WEIGHTS).is_file() and (Path(job["out"]) / CONFIG).is_file()

    # changing ---------------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The queue's short lock: a check and the change it allows happen together (two Train clicks at once
        make one job; a stop and the worker's start of a job do not cross)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / QUEUE_LOCK, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _save(self, job: dict) -> dict:
        job["updated"] = time.time()
        atomic_write_json(self.root / job["id"] / JOB_FILE, job)
        return job

    def _update(self, job_id: str, **changes) -> dict:
        return self._save({**self.job(job_id), **changes})

    def submit(
        self,
        name: str,
        domain: str,
        data: str | os.PathLike,
        args: list[str],
        meta: dict | None = None,
        move_data: bool = False,
    ) -> dict:
        """Queue a job training model ``name`` of ``domain`` on the corpus folder ``data`` (moved into the job's
        folder if ``move_data``); ``args``: the other ``train`` flags (the recipe). The job starts when the
        jobs before it have ended."""
        with self._locked():
            check_model_name(name, self.models_root)
            waiting = [j for j in self.jobs() if j["name"] == name and j["status"] != "failed"]
            if waiting:
                raise JobError(f"A job for a model named {name!r} is {waiting[0]['status']} already")
            job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
            folder = self.root / job_id
            folder.mkdir(parents=True)
            if move_data:  # the job owns its corpus: deleting the job deletes it
                data = Path(shutil.move(str(data), str(folder / "data")))
            out = folder / MODEL_DIR
            command = ["train", "--domain", domain, "--data", str(data), "--out", str(out), "--threads", "1", *args]
            job = {
                "id": job_id,
                "name": name,
                "domain": domain,
                "status": "queued",
                "command": command,
                "out": str(out),
                "resume": False,
                "restarts": 0,
                "pid": None,
                "message": "",
                "created": time.time(),
                "meta": meta or {},
            }
            self._save(job)
        self.start_worker()
        return job

    def stop(self, job_id: str) -> dict:
        """Stop a job: a queued one leaves the queue; a running one saves its state and best weights and ends
        (SIGINT, as Ctrl-C). Resume continues it."""
        with self._locked():
            job = self.job(job_id)
            if job["status"] == "queued":
                return self._save({**job, "status": "stopped", "message": "taken out of the queue"})
            if job["status"] != "running":
                raise JobError(f"The job is {job['status']}, not running")
            job = self._save({**job, "stop_requested": True})
        if _alive(job.get("pid"), job["out"]):
            os.kill(job["pid"], signal.SIGINT)
        return job

    def resume(self, job_id: str) -> dict:
        """Queue a stopped or failed job again; it continues from its last save (or starts again if it had
        none)."""
        with self._locked():
            job = self.job(job_id)
            if job["status"] not in ("stopped", "failed"):
                raise JobError(f"The job is {job['status']}; only a stopped or failed job can be resumed")
            check_model_name(job["name"], self.models_root)
            saved = (Path(job["out"]) / TRAIN_STATE).is_file()
            job = self._save(
                {**job, "status": "queued", "resume": saved, "stop_requested": False, "message": "", "restarts": 0}
            )
        self.start_worker()
        return job

    def finish(self, job_id: str) -> Path:
        """Publish a stopped job's best weights as they are (the job is then done)."""
        with self._locked():
            job = self.job(job_id)
            if job["status"] != "stopped" or not self.has_weights(job):
                raise JobError("Only a stopped job with saved weights can be kept as it is")
            path = self._publish(job)
            self._save({**job, "status": "done", "model": str(path), "message": "kept as stopped"})
        return path

    def delete_model(self, job_id: str) -> None:
        """Delete the model a job published (only such models: the shipped ones are not the app's to delete),
        and the job with it."""
        with self._locked():
            job = self.job(job_id)
            model = Path(job.get("model") or "")
            if job["status"] != "done" or model.parent != self.models_root or model.name != job["name"]:
                raise JobError("Only a model trained here can be deleted here")
            hidden = self.models_root / f".{job['name']}.{secrets.token_hex(3)}.deleted"
            if model.is_dir():
                os.rename(model, hidden)  # out of every model list at once, then removed
                shutil.rmtree(hidden, ignore_errors=True)
            shutil.rmtree(self.root / job_id, ignore_errors=True)

    def delete(self, job_id: str) -> None:
        """Remove a job that is not running, with its data and unpublished weights."""
        with self._locked():
            job = self.job(job_id)
            if job["status"] == "running":
                raise JobError("Stop the job before deleting it")
            shutil.rmtree(self.root / job_id, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "work":
        print("usage: python -m genmodels.learn.jobs work JOBS_FOLDER MODELS_FOLDER", file=sys.stderr)
        return 2
    JobQueue(args[1], args[2]).work()
    return 0


if __name__ == "__main__":
    sys.exit(main())
