"""The Melody page's parts, one module per region of the page (``app/pages/melody.py`` calls them in order)."""
