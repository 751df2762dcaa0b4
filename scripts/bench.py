"""The speed and memory benchmark (as ``python -m genmodels bench``): ``python -m scripts.bench``."""

from genmodels.eval.bench import main

main()
