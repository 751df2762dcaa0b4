"""The worker that runs the job queue: one per server (it holds a file lock), oldest job first, each the
library's train command in its own process; after a restart it resumes or fails what was running, and it
publishes a finished model under its name only once it is complete."""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from genmodels.io.checkpoint import PROGRESS, TRAIN_STATE
from genmodels.learn.job_files import (
    LOG_FILE,
    MAX_RESTARTS,
    WORKER_LOCK,
    JobError,
    _alive,
    _die_with_parent,
    _import_path,
)


class JobWorker:
    """Running the queue: the half of ``JobQueue`` that a worker process uses."""

    # the worker -------------------------------------------------------------------------------------
    def worker_alive(self) -> bool:
        """Whether a worker holds the worker lock (tried, not taken)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / WORKER_LOCK, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False

    def start_worker(self) -> None:
        """Start a worker if jobs wait and none runs (idempotent: a second worker leaves at once). Called
        after every change and whenever the app shows the jobs, so a restarted server takes its jobs up."""
        if self.worker_alive() or not any(j["status"] in ("queued", "running") for j in self.jobs()):
            return
        with open(self.root / "worker.log", "ab") as log:  # the worker has its own copy of the descriptor
            subprocess.Popen(
                [sys.executable, "-m", "genmodels.learn.jobs", "work", str(self.root), str(self.models_root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # not the server's process group: a Ctrl-C of the server is not its
                env={**os.environ, "PYTHONPATH": _import_path()},
            )

    def work(self) -> None:
        """The worker's loop: hold the worker lock, take up jobs whose worker died, run the queue, leave."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = open(self.root / WORKER_LOCK, "a")  # held, and so locked, for the worker's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another worker runs the queue
        os.nice(10)
        self._recover()
        while (job := self._next()) is not None:
            self._run(job)

    def _recover(self) -> None:
        """Jobs marked running whose worker died (a server restart): wait for their train process to save and
        end, then queue them to resume from that save; one that keeps dying is failed."""
        for job in self.jobs():
            if job["status"] != "running":
                continue
            for _ in range(600):  # SIGINT on its worker's death: the trainer is saving
                if not _alive(job.get("pid"), job["out"]):
                    break
                time.sleep(0.1)
            saved = (Path(job["out"]) / TRAIN_STATE).is_file()
            if job.get("restarts", 0) >= MAX_RESTARTS:
                self._update(job["id"], status="failed", message="its process was ended three times; not retried")
            else:
                note = "resumed after its process was ended (a server restart?)"
                restarts = job.get("restarts", 0) + 1
                self._update(job["id"], status="queued", resume=saved, restarts=restarts, message=note)

    def _next(self) -> dict | None:
        with self._locked():
            queued = [j for j in self.jobs() if j["status"] == "queued"]
            if not queued:
                return None
            job = {**queued[0], "status": "running", "pid": None, "worker": os.getpid(), "started": time.time()}
            return self._save(job)

    def _run(self, job: dict) -> None:
        """Run one job's train process to its end and record how it ended."""
        argv = [sys.executable, "-m", "genmodels", *job["command"], *(["--resume"] if job["resume"] else [])]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": _import_path()}
        with open(self.root / job["id"] / LOG_FILE, "ab") as log:
            log.write(f"\n$ {' '.join(argv[1:])}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, preexec_fn=_die_with_parent
            )
            self._update(job["id"], pid=proc.pid)
            rc = proc.wait()
        self._ended(self.job(job["id"]), rc)

    def _ended(self, job: dict, rc: int) -> None:
        with self._locked():
            if rc == 0 and self.has_weights(job):
                try:
                    path = self._publish(job)
                except (OSError, JobError) as e:
                    self._save({**job, "status": "failed", "pid": None, "message": f"Could not publish: {e}"})
                    return
                self._save({**job, "status": "done", "pid": None, "model": str(path), "ended": time.time()})
            elif job.get("stop_requested") or rc in (130, -signal.SIGINT):
                self._save({**job, "status": "stopped", "pid": None, "message": "stopped; its best weights are kept"})
            else:
                tail = self.log_tail(job, 600).strip().splitlines()
                why = next((ln for ln in reversed(tail) if ln.startswith("error:")), tail[-1] if tail else "")
                self._save({**job, "status": "failed", "pid": None, "message": f"exit code {rc}: {why}"})

    def _publish(self, job: dict) -> Path:
        """Copy the job's model into the models folder: under a dot-name first, renamed when whole."""
        src, dest = Path(job["out"]), self.models_root / job["name"]
        if dest.exists():
            raise JobError(f"a model named {job['name']!r} appeared meanwhile; the job's weights stay in {src}")
        self.models_root.mkdir(parents=True, exist_ok=True)
        tmp = self.models_root / f".{job['name']}.{secrets.token_hex(3)}.part"
        try:
            shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(TRAIN_STATE, PROGRESS, ".*"))
            os.rename(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest
