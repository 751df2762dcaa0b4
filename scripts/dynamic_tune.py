"""Choose dynamic evaluation's step size and decay on the validation split (not the test split).

    python -m scripts.dynamic_tune text-gru [--tokens 40000]

Prints the validation metric for each (lr, decay) pair over the first --tokens tokens; lr 0 is static.
"""

import argparse
import time

import torch

from genmodels.core.paths import repo_path
from genmodels.infer.dynamic import DynamicSettings, dynamic_evaluate
from genmodels.io import checkpoint as ckpt

GRID = [
    (0, 0),
    (3e-2, 1e-3),
    (1e-1, 1e-3),
    (3e-1, 1e-2),
    (1e-1, 1e-2),
    (1.0, 1e-2),
    (1e-1, 1e-4),
    (2e-1, 1e-3),
    (1.5e-1, 3e-4),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="a checkpoint name under checkpoints/ or a directory")
    ap.add_argument("--tokens", type=int, default=40000, help="validation tokens to read")
    ap.add_argument("--segment", type=int, default=32, help="tokens per gradient step")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first SKIP settings of the grid")
    a = ap.parse_args()
    torch.set_num_threads(1)
    path = repo_path(f"checkpoints/{a.model}") if "/" not in a.model else a.model
    c = ckpt.load_checkpoint(path)
    d = c.domain.load_data(c.domain.default_data, tokenizer=c.tokenizer, augment=False)
    for lr, decay in GRID[a.skip :]:
        t = time.time()
        s = DynamicSettings(lr, decay, a.segment)
        r = dynamic_evaluate(c.model, d.valid, d.valid_units, c.domain, c.tokenizer.bos_id, s, max_tokens=a.tokens)
        print(
            f"{a.model} lr={lr:g} decay={decay:g} segment={a.segment}: "
            f"valid {r['value']:.4f} ({time.time() - t:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
