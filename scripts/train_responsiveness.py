"""How responsive the app stays for other users while a Train-page job trains.

Two things another user waits for, measured in this process as the server's script threads run them:
  - the suggestions of the typing view: server time per keystroke (three next words + the ghost text) over
    the fixed typing script (`genmodels.infer.suggest.suggest_latency`), median and p95;
  - a 64-bar melody from the shipped melody-gru (temperature 1.0, gentle, 8-note prompt), median of 3.
First with no job, then while a job of the Train page's kind fine-tunes the shipped text model on Milton's
*Paradise Regained* (the material of `scripts/fine_tune_gain.py --material milton`): submitted to a
`JobQueue` exactly as the page does, so it runs in its own process, with one thread, at lower priority
(nice 10). The job is stopped at the end and its folder removed.

    python -m scripts.train_responsiveness [--chars 200]

Prints a JSON report with the figures and the ratios (with a job / without).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.train.common import recipe  # noqa: E402  (the page's recipe)
from genmodels.infer.constraints import MelodySteering  # noqa: E402
from genmodels.infer.decoding import Settings  # noqa: E402
from genmodels.infer.sampling import Sampler  # noqa: E402
from genmodels.infer.suggest import suggest_latency  # noqa: E402
from genmodels.learn.jobs import JobQueue  # noqa: E402
from genmodels.music import parse_note_prompt  # noqa: E402
from scripts.fine_tune_gain import write_milton  # noqa: E402

TEXT_MODEL = ROOT / "checkpoints/text-gru"
MELODY_MODEL = ROOT / "checkpoints/melody-gru"
PROMPT = "E4 G4 A4/2 B4/2 A4 | G4 E4 D4*2"


def melody_seconds(g: Sampler, runs: int = 3) -> float:
    prompt = parse_note_prompt(PROMPT)
    times = []
    for seed in range(runs):
        t0 = time.perf_counter()
        g.generate_melody(prompt, 64, Settings(seed=seed), MelodySteering(stay_in_key="gentle"))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(g: Sampler, chars: int) -> dict:
    s = suggest_latency((str(TEXT_MODEL),), typed_chars=chars)[TEXT_MODEL.name]
    return {"suggest_median_ms": s["median_ms"], "suggest_p95_ms": s["p95_ms"], "melody_64_bars_s": melody_seconds(g)}


def wait_running(q: JobQueue, job_id: str, timeout: float = 300.0) -> dict:
    """Wait until the job's train process has written a first progress line (it is then training)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        job = q.job(job_id)
        if job["status"] in ("failed", "done", "stopped"):
            raise SystemExit(f"The job ended before the measurement: {job['status']} {job.get('message', '')}")
        if job["status"] == "running" and q.progress(job).get("step"):
            return job
        time.sleep(1.0)
    raise SystemExit("The job did not start training in time")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chars", type=int, default=200, help="characters of the typing script typed")
    a = p.parse_args()
    g = Sampler(str(MELODY_MODEL))
    melody_seconds(g, 1)  # warm up: first-call costs are not what a user waits for twice
    idle = measure(g, a.chars)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mat, _ = write_milton(tmp / "milton")
        q = JobQueue(tmp / "jobs", tmp / "models")
        job = q.submit("milton-bench", "text", tmp / "milton", recipe("text", mat, 30.0, TEXT_MODEL))
        try:
            wait_running(q, job["id"])
            busy = measure(g, a.chars)
            step = q.progress(q.job(job["id"])).get("step")
        finally:
            q.stop(job["id"])
            for _ in range(60):  # let it save and end before the folder goes
                if q.job(job["id"])["status"] != "running":
                    break
                time.sleep(1.0)
    report = {
        "machine": f"{os.cpu_count()} CPUs",
        "without_job": idle,
        "with_job": busy,
        "ratio_with_without": {k: round(busy[k] / idle[k], 2) for k in idle},
        "job_step_reached": step,
        "command": "python -m scripts.train_responsiveness --chars " + str(a.chars),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
