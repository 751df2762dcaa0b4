"""A melody in a link: applying a link once per session (its prompt and settings, then generating), and the
link of the version on show."""

from urllib.parse import urlencode

import streamlit as st

from app.components.harmony import link_choices
from app.links import parse_melody_link
from app.melody.common import AS_PROMPT, METERS, SRC_CORPUS, SRC_NOTES
from genmodels.learn.melody_corpus import TUNEBOOK_LEAVES_OUT
from genmodels.music import (
    MODES,
)


# -- a link that reproduces a melody -------------------------------------------------------------
def apply_link(models: list[str], book) -> None:
    """Once per session: the prompt and settings of the page's URL go into the controls, and the melody is
    generated again (same random seed, same melody); then its harmony, when the link holds one."""
    if st.session_state.get("m_link_read"):
        return
    st.session_state.m_link_read = True
    params = {k: st.query_params[k] for k in st.query_params}
    values = parse_melody_link(params, models, MODES, METERS, AS_PROMPT, harmony=link_choices())
    if bad := values.pop("m_link_bad", None):
        st.session_state.m_link_bad = bad
    kind = values.pop("m_source_kind", None)
    if kind is None:
        return
    tune, tune_bars = values.pop("m_tune_id", None), values.pop("m_tune_bars", None)
    if kind == "tune":
        if book is None or tune not in book:
            left_out = str(tune).split("-", 1)[0] in TUNEBOOK_LEAVES_OUT
            why = " (its collection is not shipped: its permission covers music21 only)" if left_out else ""
            st.session_state.m_link_error = f"The link names corpus tune {tune!r}, which is not in this tune book{why}."
            return
        st.session_state.m_source, st.session_state.m_corpus, st.session_state.m_find = SRC_CORPUS, tune, ""
        st.session_state.m_link_pbars = tune_bars
        st.session_state.m_tempo_from = f"tune:{tune}"  # the link's tempo, not the tune's
    else:
        st.session_state.m_source = SRC_NOTES
    st.session_state.update(values)
    st.session_state.m_autogen = True


def show_link(h: dict, harmony: dict | None = None) -> None:
    """The picked version's link in the address bar, with the settings of its ``harmony`` on show (as first made)
    when it has one, and a note of what a link cannot hold."""
    if h.get("link") is None:
        st.query_params.clear()
        st.caption(h.get("link_note", "This version has no link."))
        return
    harmony_link = (harmony or {}).get("link") or {}
    st.query_params.from_dict(h["link"] | harmony_link)
    note = " It makes the melody as first generated; later changes (regenerate, new pitches, transpose) are not in it."
    note = note if h.get("derived") else ""
    if harmony_link and harmony.get("derived"):
        note += " It makes the harmony as first harmonised; new alto, tenor or bass voices are not in it."
    what = "melody and its harmony" if harmony_link else "melody"
    query = urlencode(st.query_params.to_dict())  # as the address bar holds it (spaces, "/" and "#" escaped)
    st.caption(
        f"The address bar now holds a link to this melody: opening it makes the same {what} again.{note} "
        f"({len(query):,} characters)"
    )
