"""The command line, ``python -m genmodels VERB``: the parser and dispatch in ``main``, a module per verb family."""
