"""Parts of pages with their own state: the typing view (a custom component) and the Harmonise section."""
