"""Melody page: write a tune with the model. A prompt (note names, a track of a MIDI file or a corpus tune) in a
chosen key and mode is continued by an LSTM or a GRU; the result is engraved as a score, played, and can be
reworked: regenerate some bars, keep the rhythm with new pitches, transpose. Every version stays in the
session's history (undo); MIDI, ABC and MusicXML downloads; a link holds the prompt and settings.

Every control, the uploaded file and the history last for the session, also while the user is on another page
(``persist_state="session"``; the file's bytes in session state). The settings column is a fragment: moving a
slider reruns only that column.
"""

import streamlit as st

from app.corpus import tune_book
from app.links import bad_link_message, new_seed
from app.melody.common import AS_PROMPT, DEFAULT_NOTES, SRC_CORPUS, SRC_FILE, SRC_NOTES
from app.melody.generate import generate, settings_column
from app.melody.prompt import prompt_column
from app.melody.sharing import apply_link
from app.melody.versions import show_history
from app.model_cache import require_models
from app.render import plain

# Set by callbacks as well as by the user, so initialised here and not through ``value=``.
for key, default in {
    "m_seed": new_seed(),
    "m_notes": DEFAULT_NOTES,
    "m_meter": "4/4",
    "m_source": SRC_NOTES,
    "m_tempo": 120,
    "m_tonic": AS_PROMPT,
    "m_mode": AS_PROMPT,
    "m_history": [],
}.items():
    st.session_state.setdefault(key, default)

st.title("Write a melody")
st.caption(
    "Give the start of a tune; an LSTM or a GRU trained on folk tunes and chorale melodies writes the next bars "
    "in your meter, key and mode. Read the score, listen, regenerate bars you do not like, keep a rhythm with new "
    "pitches, transpose, harmonise it in four parts; download MIDI, ABC or MusicXML."
)

by_label = require_models("melody")
cat = tune_book()
apply_link(list(by_label), cat.book if cat else None)
sources = [SRC_NOTES, SRC_FILE] + ([SRC_CORPUS] if cat else [])
if st.session_state.m_source not in sources:
    st.session_state.m_source = SRC_NOTES
if "m_link_error" in st.session_state:
    st.error(plain(st.session_state.pop("m_link_error")))
if bad := st.session_state.pop("m_link_bad", None):
    st.warning(bad_link_message(bad))

left, right = st.columns([5, 4], gap="large")
with left:
    prompt, link, no_link = prompt_column(sources, cat)
with right:
    settings_column(prompt, link, no_link, by_label)

link_harmony = st.session_state.pop("m_link_harmony", False)
if st.session_state.pop("m_autogen", False):  # opened from a link: make its melody (and below, its harmony)
    if generate(prompt, link, no_link, by_label, st.container()) and link_harmony:
        st.session_state.hz_autogen = True

if st.session_state.m_history:
    show_history(st.session_state.m_history)
