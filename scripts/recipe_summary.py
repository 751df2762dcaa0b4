"""One row of docs/training-recipe.md for a finished run: updates, tokens, tokens/s and valid bits/char
of its best weights on the whole validation split (the runs validate on a bounded part while training).

    python scripts/recipe_summary.py runs/NAME [runs/NAME ...]
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genmodels.core.options import flatten
from genmodels.io import checkpoint as ckpt
from genmodels.learn.steps import evaluate


def summary(out: Path) -> dict:
    state = ckpt.load_train_state(out)
    c = ckpt.load_checkpoint(out)
    data = c.domain.load_data(flatten(state["config"])["data"] or c.domain.default_data, tokenizer=c.tokenizer)
    v = evaluate(c.model, data.valid, data.valid_units, c.domain, c.tokenizer.bos_id)
    cpu = state.get("cpu", 0.0)
    return {
        "run": out.name,
        "updates": state["step"],
        "tokens": state.get("tokens", 0),
        "cpu_s": round(cpu, 1),
        "tok_per_cpu_s": round(state.get("tokens", 0) / max(cpu, 1e-9)),
        "last_bounded_valid": state["history"][-1]["valid"] if state["history"] else None,
        "valid_bpc_full": round(v["value"], 4),
        "precision": c.card.get("precision"),
    }


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(prog="python -m scripts.recipe_summary", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run folders (runs/NAME)")
    torch.set_num_threads(1)
    for run in p.parse_args().runs:
        print(json.dumps(summary(Path(run))), flush=True)
