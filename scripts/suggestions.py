"""The shipped text models' three next words and ghost text for TEXT, or without TEXT the suggestion latency table:
``python -m scripts.suggestions [TEXT]``."""

import argparse

import torch

from genmodels.infer.suggest import SHIPPED_TEXT_MODELS, ghost_text, next_words, suggest_latency
from genmodels.io.checkpoint import load_checkpoint

p = argparse.ArgumentParser(
    prog="python -m scripts.suggestions",
    description="The shipped text models' three next words and ghost text for TEXT; without TEXT, the "
    "suggestion latency table.",
)
p.add_argument("text", nargs="?", help="the text typed so far")
args = p.parse_args()
torch.set_num_threads(1)
if args.text:
    from genmodels.io.checkpoint import load_checkpoint

    for path in SHIPPED_TEXT_MODELS:
        ck = load_checkpoint(path)
        words = ", ".join(f"{x.word} ({x.prob:.3f})" for x in next_words(ck.model, ck.tokenizer, args.text))
        print(f"{ck.name}: {words} | ghost: {ghost_text(ck.model, ck.tokenizer, args.text)!r}")
else:
    for name, r in suggest_latency().items():
        print(
            f"{name:12s} wall: median {r['median_ms']:6.1f} ms, p95 {r['p95_ms']:6.1f} ms, "
            f"max {r['max_ms']:6.1f} ms;  CPU: median {r['cpu_median_ms']:6.1f} ms, "
            f"p95 {r['cpu_p95_ms']:6.1f} ms  ({r['keystrokes']} keys)"
        )
