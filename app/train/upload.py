"""The Train page's material: the upload, what was read from it (files taken and refused, with reasons),
how it is split, and what a few minutes can do with it, all before anything trains."""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from app.render import plain
from app.train.common import estimate
from genmodels.core.errors import DataError
from genmodels.learn.material import MAX_FILES, MAX_TOTAL_BYTES, Material, is_text_domain, read_material, split_plan

SUFFIXES = {"text": ["txt", "zip"], "melody": ["mid", "midi", "abc", "musicxml", "xml", "zip"]}


@st.cache_data(max_entries=8, show_spinner="Reading your files…")
def _read(domain: str, digest: str, _files: tuple[tuple[str, bytes], ...]) -> Material | str:
    """The material read from the files (cached by their digest), or the message saying why none was."""
    try:
        return read_material(domain, list(_files))
    except DataError as e:
        return str(e)


def _keep_upload() -> None:
    """The uploader forgets its files on another page: the session keeps them, so the page still shows the
    material after a visit elsewhere."""
    ups = st.session_state.get("tr_upload") or []
    st.session_state.tr_files = [(u.name, u.getvalue()) for u in ups]


def uploaded_material(domain: str) -> Material | None:
    """The uploader and what was read from it; None until something usable is there."""
    st.file_uploader(
        "Your material",
        type=SUFFIXES[domain],
        accept_multiple_files=True,
        key="tr_upload",
        on_change=_keep_upload,
        help=f".txt files for text; .mid, .abc or .musicxml for melodies; or one .zip of them (at most {MAX_FILES} "
        f"files and {MAX_TOTAL_BYTES / 1e6:.0f} MB unpacked). Files stay on this server and train only your model.",
    )
    files = tuple(st.session_state.get("tr_files") or ())
    if not files:
        st.caption("Upload files to see what will be learned from them.")
        return None
    digest = hashlib.sha256(b"".join(hashlib.sha256(n.encode() + d).digest() for n, d in files)).hexdigest()
    mat = _read(domain, digest, files)
    if isinstance(mat, str):
        st.error(plain(mat))
        return None
    show_material(mat)
    if why := mat.usable():
        st.error(plain(why))
        return None
    return mat


def show_material(mat: Material) -> None:
    """Files taken and refused (with reasons), the amount, meters and keys, and the split."""
    if mat.taken:
        st.dataframe(
            {"file": [Path(n).name for n, _ in mat.taken], "taken": [w for _, w in mat.taken]},
            hide_index=True,
            width="stretch",
        )
    for name, why in mat.refused:
        st.warning(plain(f"Not used: {name}: {why}"))
    plan = split_plan(mat)
    if is_text_domain(mat.domain):
        st.markdown(f"**{mat.chars:,} characters** from {len(mat.texts)} file(s).")
    else:
        meters = ", ".join(f"{m} ({n})" for m, n in mat.meters().most_common())
        keys = ", ".join(f"{k} ({n})" for k, n in mat.keys().most_common(8))
        st.markdown(f"**{len(mat.tunes)} tunes, {mat.notes:,} notes.** Meters: {meters}. Keys: {keys}.")
    held = "the last tenth of each text (from a line end)" if is_text_domain(mat.domain) else "one tune in ten"
    st.caption(
        f"Split: {plan['train']:,} {plan['unit']} to learn from, {plan['valid']:,} held out ({held}) to measure "
        "the model and to stop training when it stops improving."
    )


def show_estimate(mat: Material, minutes: float, parent: Path | None) -> None:
    st.info(estimate(mat.domain, mat, minutes, parent))
