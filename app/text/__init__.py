"""The Text page's parts (``app/pages/text.py`` calls them in order)."""
