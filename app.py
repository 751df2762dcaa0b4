"""genmodels: write with an LSTM/GRU, or continue a melody. Run with ``streamlit run app.py``."""

import streamlit as st

st.set_page_config(page_title="genmodels", page_icon=":material/music_note:", layout="wide")

pages = [
    st.Page("pages/text.py", title="Text", icon=":material/edit_note:", default=True),
    st.Page("pages/melody.py", title="Melody", icon=":material/music_note:"),
    st.Page("pages/models.py", title="Models", icon=":material/info:"),
]
st.navigation(pages).run()
