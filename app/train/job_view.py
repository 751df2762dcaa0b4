"""A training job as the Train page shows it: status and place in the queue, progress with ETA, the training
and validation curves, a sample from the current weights, and Stop, Resume, Keep, Download, Delete. Everything
is read from the jobs folder, so a reload, a second tab or a restarted server shows the same."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from app.melody.common import render_wav
from app.render import plain, score_html
from app.train.common import PAGE_OF, job_queue
from genmodels.core.errors import GenmodelsError
from genmodels.infer.sampling import Sampler, Settings
from genmodels.io.checkpoint import WEIGHTS
from genmodels.learn.job_files import JobError, model_zip
from genmodels.learn.material import is_text_domain
from genmodels.music import midi_bytes, read_midi
from genmodels.music.engrave import render_svg

SAMPLE_EVERY_S = 120  # a new sample from the current weights at most this often
STATUS = {
    "queued": "waiting",
    "running": "training",
    "done": "finished",
    "failed": "failed",
    "stopped": "stopped",
}


def eta_text(progress: dict, job: dict) -> tuple[float, str]:
    """The fraction of the time budget spent and the time left, from the trainer's progress file."""
    budget = 60 * float(progress.get("time_budget_min") or 0)
    cpu = float(progress.get("cpu_s") or 0)
    if not budget or not cpu:
        return 0.0, "starting…"
    frac = min(1.0, cpu / budget)
    wall = max(1.0, time.time() - float(job.get("started") or time.time()))
    left = (budget - cpu) * max(1.0, wall / max(cpu, 1e-9)) if job["status"] == "running" else 0
    return frac, f"{cpu / 60:.1f} of {budget / 60:g} CPU minutes; about {left / 60:.0f} min {left % 60:.0f} s left"


def curves(progress: dict) -> pd.DataFrame | None:
    history = progress.get("history") or []
    if not history:
        return None
    frame = pd.DataFrame(history).set_index("step")
    cols = {"train_loss": "training loss", "valid": f"validation ({progress.get('metric', '')})"}
    return frame[[c for c in cols if c in frame]].rename(columns=cols)


@st.cache_data(max_entries=8, show_spinner="A sample from the current weights…")
def sample(out: str, domain: str, stamp: int) -> dict:
    """A sample from the weights in ``out`` (``stamp``: their time, in SAMPLE_EVERY_S steps)."""
    sampler = Sampler(out)
    settings = Settings(temperature=0.8, seed=stamp % 1000)
    data = Path(out).parent / "data" / "valid"
    if is_text_domain(domain):
        prompt = next(iter(sorted(data.glob("*.txt"))), None)
        start = prompt.read_text(encoding="utf-8")[:60] if prompt else "\n"
        return {"text": start + sampler.complete(start, length=80, settings=settings)[0].continuation}
    first = next(iter(sorted(data.glob("*.mid"))), None)
    tune = read_midi(first.read_bytes()).slice_bars(0, 2)
    melody = sampler.generate_melody(tune, bars=6, settings=settings)[0].full
    return {"midi": midi_bytes(melody), "svg": render_svg(melody, prompt_notes=len(tune.notes))}


def show_sample(job: dict) -> None:
    weights = Path(job["out"]) / WEIGHTS
    if not weights.is_file():
        return
    stamp = int(weights.stat().st_mtime // SAMPLE_EVERY_S)
    try:
        s = sample(job["out"], job["domain"], stamp)
    except (GenmodelsError, OSError, ValueError) as e:
        st.caption(plain(f"No sample yet: {e}"))
        return
    st.caption("A sample from the best weights so far (renewed every few minutes while it trains):")
    if s.get("text") is not None:
        st.code(s["text"], language=None, wrap_lines=True)
    else:
        st.html(score_html(s["svg"], alt="sample score"))
        st.audio(render_wav(s["midi"]), format="audio/wav")


def show_progress(job: dict) -> None:
    q = job_queue()
    progress = q.progress(job)
    if job["status"] == "queued":
        st.info(f"Waiting: {q.place(job['id'])} job(s) before this one. One job trains at a time on this server.")
    if progress:
        frac, words = eta_text(progress, job)
        st.progress(frac, text=words)
        before = progress.get("parent_valid")
        best = progress.get("best")
        metric = progress.get("metric", "")
        if best is not None:
            start = f"; the base model scored {before:.3f} on the same held-out part" if before is not None else ""
            st.caption(f"Best validation so far: {best:.3f} {metric} (lower is better){start}.")
        frame = curves(progress)
        if frame is not None:
            st.line_chart(frame, x_label="step")


def act(what: str, job_id: str) -> None:
    q = job_queue()
    try:
        {"stop": q.stop, "resume": q.resume, "keep": q.finish, "delete": q.delete, "drop": q.delete_model}[what](job_id)
    except (JobError, OSError) as e:
        st.session_state.tr_message = str(e)


def buttons(job: dict) -> None:
    cols = st.columns(4)
    i, key = job["id"], job["id"]
    if job["status"] in ("queued", "running"):
        cols[0].button("Stop", key=f"tr_stop_{key}", on_click=act, args=("stop", i), help="Keeps the best weights")
    if job["status"] in ("stopped", "failed"):
        cols[0].button("Resume", key=f"tr_resume_{key}", on_click=act, args=("resume", i))
        if job["status"] == "stopped" and job_queue().has_weights(job):
            cols[1].button("Keep as it is", key=f"tr_keep_{key}", on_click=act, args=("keep", i))
        cols[2].button("Delete", key=f"tr_del_{key}", on_click=act, args=("delete", i))
    if job["status"] == "done" and job.get("model") and Path(job["model"]).is_dir():
        cols[0].download_button(
            "Download (zip)",
            data=model_zip(job["model"]),
            file_name=f"{job['name']}.zip",
            mime="application/zip",
            key=f"tr_zip_{key}",
        )
        cols[1].button("Delete the model", key=f"tr_drop_{key}", on_click=act, args=("drop", i))


def show_job(job: dict) -> None:
    """One job, read afresh from disk."""
    label = f"{job['name']} · {job['domain']} · {STATUS.get(job['status'], job['status'])}"
    with st.expander(plain(label), expanded=job["status"] in ("queued", "running", "stopped")):
        if job.get("message"):
            st.caption(plain(job["message"]))
        if job["status"] == "done":
            page = PAGE_OF[job["domain"]]
            st.success(
                plain(f"{job['name']} is in the {page} page's model list. Use it from the command line with ")
                + f"`python -m genmodels generate checkpoints/{job['name']} ...` after unzipping the download."
            )
        show_progress(job)
        show_sample(job)
        buttons(job)
