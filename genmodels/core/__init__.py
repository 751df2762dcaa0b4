"""The bottom layer: typed errors, repository paths and atomic files, option declarations, the domain registry."""
