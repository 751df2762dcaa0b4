"""Training jobs (issue 25): the train command in a process of its own, one at a time, its state on disk; a
model listed only when whole; stop keeps the best weights, resume goes on, a dead worker's job is taken up."""

from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile

import pytest

from genmodels.io.checkpoint import find_checkpoints, load_checkpoint
from genmodels.learn.job_files import JobError, check_model_name, model_zip
from genmodels.learn.jobs import JobQueue

SMALL = ["--batch", "8", "--bptt", "32", "--precision", "fp32", "--lr", "1e-3", "--warmup", "0"]


def wait_for(queue: JobQueue, job_id: str, ok, what: str, timeout: float = 240) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        job = queue.job(job_id)
        if ok(job):
            return job
        if job["status"] == "failed":
            raise AssertionError(f"job failed: {job['message']}\n{queue.log_tail(job)}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {queue.job(job_id)}\n{queue.log_tail(queue.job(job_id))}")


def test_model_names_are_safe_new_folder_names(tmp_path):
    (tmp_path / "taken").mkdir()
    for bad in ("", "../up", "a/b", ".hidden", "taken", "x" * 49, "nul", "with space"):
        with pytest.raises(JobError):
            check_model_name(bad, tmp_path)
    assert check_model_name("my-tunes_2.v1", tmp_path) == "my-tunes_2.v1"


def test_a_folder_being_copied_into_place_is_not_listed(tmp_path, tiny_text_ckpt):
    import shutil

    shutil.copytree(tiny_text_ckpt, tmp_path / ".mine.abc.part")
    shutil.copytree(tiny_text_ckpt, tmp_path / "mine")
    assert [p.name for p in find_checkpoints(tmp_path)] == ["mine"]


def test_jobs_run_one_at_a_time_and_publish_a_whole_model(tiny_text_ckpt, small_text_dir, tmp_path):
    queue = JobQueue(tmp_path / "jobs", tmp_path / "models")
    args = ["--init-from", str(tiny_text_ckpt), "--steps", "12", "--eval-every", "6", *SMALL]
    first = queue.submit("mine", "text", small_text_dir, args)
    second = queue.submit("mine-too", "text", small_text_dir, [*args[:3], "4", *args[4:]])
    with pytest.raises(JobError, match="already"):  # a second Train click with the same name
        queue.submit("mine", "text", small_text_dir, args)
    assert queue.place(second["id"]) == 1  # waits behind the first
    wait_for(queue, first["id"], lambda j: j["status"] == "done", "the first job")
    assert queue.job(second["id"])["status"] in ("queued", "running", "done")
    done = wait_for(queue, second["id"], lambda j: j["status"] == "done", "the second job")
    model = tmp_path / "models/mine"
    assert sorted(p.name for p in find_checkpoints(tmp_path / "models")) == ["mine", "mine-too"]
    assert not (model / "train_state.pt").exists() and not (model / "progress.json").exists()
    card = json.loads((model / "card.json").read_text())
    assert card["steps"] == 12 and isinstance(card["parent_valid"], float)
    assert load_checkpoint(model).model.config.hidden == load_checkpoint(tiny_text_ckpt).model.config.hidden
    progress = queue.progress(queue.job(first["id"]))
    assert progress["step"] == 12 and progress["final"]
    names = zipfile.ZipFile(io.BytesIO(model_zip(model))).namelist()
    assert "mine/model.safetensors" in names and "mine/config.json" in names
    with pytest.raises(JobError, match="exists"):
        queue.submit("mine", "text", small_text_dir, args)
    queue.delete_model(done["id"])
    assert [p.name for p in find_checkpoints(tmp_path / "models")] == ["mine"]


def test_stop_keeps_the_best_weights_resume_goes_on_and_a_dead_workers_job_is_taken_up(
    tiny_text_ckpt, small_text_dir, tmp_path
):
    queue = JobQueue(tmp_path / "jobs", tmp_path / "models")
    args = ["--init-from", str(tiny_text_ckpt), "--time-budget", "0.25", "--eval-every", "5", *SMALL]
    job = queue.submit("long", "text", small_text_dir, args)
    saved = lambda j: j["status"] == "running" and queue.progress(j).get("step", 0) >= 10  # noqa: E731
    wait_for(queue, job["id"], saved, "a first save")
    queue.stop(job["id"])
    stopped = wait_for(queue, job["id"], lambda j: j["status"] == "stopped", "the stop")
    assert queue.has_weights(stopped) and not (tmp_path / "models/long").exists()
    step = json.loads((tmp_path / "jobs" / job["id"] / "model/card.json").read_text())["steps"]
    queue.resume(job["id"])
    running = wait_for(queue, job["id"], lambda j: j["status"] == "running" and j["pid"], "the resumed run")
    assert "--resume" in queue.log_tail(running, 10_000)
    time.sleep(3)
    os.kill(running["worker"], signal.SIGKILL)  # the server went down: its train process saves and stops
    wait_for(queue, job["id"], lambda j: not queue.worker_alive(), "the worker's end", timeout=30)
    queue.start_worker()  # what the app does when it shows the jobs
    done = wait_for(queue, job["id"], lambda j: j["status"] == "done", "the job taken up again")
    assert done["restarts"] == 1 and "server restart" in done["message"]
    card = json.loads((tmp_path / "models/long/card.json").read_text())
    assert card["steps"] > step and card["cpu_time_s"] >= 0.25 * 60
    assert len(card["commands"]) >= 3  # the first run and two resumes, each recorded
