"""genmodels: write with an LSTM/GRU, or continue a melody. Run with ``streamlit run app.py``."""

from pathlib import Path

import streamlit as st

# A local icon file: a ":material/...:" favicon would be fetched from a font CDN, and the app works offline.
st.set_page_config(page_title="genmodels", page_icon=str(Path(__file__).parent / "docs/icon.png"), layout="wide")

pages = [
    st.Page("app/pages/text.py", title="Text", icon=":material/edit_note:", default=True),
    st.Page("app/pages/melody.py", title="Melody", icon=":material/music_note:"),
    st.Page("app/pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app/pages/models.py", title="Models", icon=":material/info:"),
]
st.navigation(pages).run()
