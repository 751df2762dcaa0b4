"""Train page: teach a model your own texts or tunes. Upload, see what was read, name the model, train it as a
job in its own process (state on disk: a reload or another tab shows it), stop, resume, use, download."""

import secrets

import streamlit as st

from app.model_cache import checkpoints_root
from app.render import plain
from app.train.common import DOMAINS, FINE_TUNE, SCRATCH, job_queue, jobs_root, parent_model, recipe
from app.train.job_view import show_job
from app.train.upload import show_estimate, uploaded_material
from genmodels.core.errors import DataError
from genmodels.learn.job_files import JobError, check_model_name
from genmodels.learn.material import write_corpus

st.title("Teach a model your own style")
st.caption(
    "Upload your texts or tunes and fine-tune the shipped model on them. Training runs on this server in a "
    "process of its own, one job at a time; you can leave this page and come back."
)
queue = job_queue()
queue.start_worker()  # takes up jobs that a restarted server left waiting
if msg := st.session_state.pop("tr_message", None):
    st.error(plain(msg))

kind = st.segmented_control("What to learn", list(DOMAINS), default="Text", key="tr_kind", persist_state="session")
domain = DOMAINS.get(kind or "Text", "text")
material = uploaded_material(domain)
parent = parent_model(domain)
start = st.radio("Start from", [FINE_TUNE, SCRATCH] if parent else [SCRATCH], key="tr_start")
minutes = st.slider("CPU minutes", 1, 30, 5, key="tr_minutes", help="The training stops after this much CPU time.")
if material is not None:
    show_estimate(material, minutes, parent if start == FINE_TUNE else None)
name = st.text_input("Name of the new model", key="tr_name", max_chars=48, placeholder="e.g. my-session-tunes")


def submit() -> None:
    """Write the corpus, then queue the job (the queue refuses a name taken meanwhile, or twice)."""
    try:
        check_model_name(name.strip(), checkpoints_root())
        base = parent if start == FINE_TUNE else None
        corpus = write_corpus(material, jobs_root() / ".incoming" / secrets.token_hex(6))
        meta = {"files": len(material.taken), "minutes": minutes, "base": base.name if base else None}
        args = recipe(domain, material, minutes, base)
        queue.submit(name.strip(), domain, corpus, args, meta=meta, move_data=True)
    except (JobError, DataError, OSError) as e:
        st.session_state.tr_message = str(e)


st.button("Train", type="primary", key="tr_go", disabled=material is None or not name.strip(), on_click=submit)


@st.fragment(run_every=3)
def jobs() -> None:
    """Every job of this server, newest first, refreshed every few seconds."""
    all_jobs = queue.jobs()
    if not all_jobs:
        return
    st.subheader("Jobs on this server")
    for job in reversed(all_jobs):
        show_job(job)


jobs()
