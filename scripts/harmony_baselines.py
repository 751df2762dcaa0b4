"""The harmony baselines (per-beat lookup, chord HMM) on a split, as JSON: ``python -m scripts.harmony_baselines``."""

from genmodels.eval.harmony_baselines import main

main()
