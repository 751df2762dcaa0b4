"""The Streamlit app: pages/ (one script per page), components/ (the typing view, the Harmonise section) and
support modules by concern: the shared model cache, links, text rendering, charts, corpus tunes, model cards.
Only this package imports Streamlit; every result comes from a call into ``genmodels``."""
