"""Bits per character of a text checkpoint on each work of the validation and test splits, each work read
whole from its start (one row, the state carried through). Shows where the test figure comes from;
``--train-works K`` also reads the first K works of the training split, so the gap between training and
held-out text (overfitting) shows beside them.

    python -m scripts.per_document checkpoints/text-gru [checkpoints/text-lstm ...] [--data data/text] [--train-works 3]
"""

from __future__ import annotations

import argparse

import torch

from genmodels.domains.text import text_stream
from genmodels.io.checkpoint import load_checkpoint
from genmodels.learn.steps import evaluate
from genmodels.learn.text_corpus import load_text_folder


def per_document(checkpoint: str, data: str, train_works: int = 0) -> list[tuple[str, str, int, float]]:
    """(split, work, characters, bits/char) for the first ``train_works`` works of the train split and every
    work of the valid and test splits, then each split's character-weighted mean."""
    c = load_checkpoint(checkpoint)
    splits = load_text_folder(data)
    rows = []
    chosen = [("train", splits.train[:train_works])] if train_works > 0 else []
    for split, works in (*chosen, ("valid", splits.valid), ("test", splits.test)):
        bits = chars = 0.0
        for name, text in works:
            stream, units = text_stream(c.tokenizer, [text])
            v = evaluate(c.model, stream, units, c.domain, c.tokenizer.bos_id, rows=1)["value"]
            rows.append((split, name, units, v))
            bits, chars = bits + v * units, chars + units
        rows.append((split, "(all)", int(chars), bits / chars))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--data", default="data/text")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train-works", type=int, default=0, help="also read the first K works of the train split")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for ck in args.checkpoints:
        print(ck)
        for split, name, units, v in per_document(ck, args.data, args.train_works):
            print(f"  {split:5s} {name:16s} {units:9,d} chars  {v:.4f} bits/char")


if __name__ == "__main__":
    main()
