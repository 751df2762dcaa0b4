"""The app's pages, each a script that Streamlit runs top to bottom (``app.py`` lists them)."""
