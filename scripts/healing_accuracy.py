"""First word of the greedy continuation right at 2,000 mid-word cuts of the test works, with and without token
healing (``--beam``: also the top next-word suggestion): ``python -m scripts.healing_accuracy [CHECKPOINT ...]``."""

import json

import torch

from genmodels.core.options import text_measurement_parser
from genmodels.infer.healing import healing_accuracy, load_test_works
from genmodels.infer.suggest import beam_accuracy
from genmodels.io.checkpoint import load_checkpoint

p = text_measurement_parser(
    "python -m scripts.healing_accuracy",
    "First word of the greedy continuation right at 2,000 mid-word cuts of the test works, "
    "with and without token healing.",
)
p.add_argument("--beam", action="store_true", help="also the top next-word suggestion at the same cuts")
args = p.parse_args()
torch.set_num_threads(1)
works = load_test_works()
for path in args.checkpoints:
    ck = load_checkpoint(path)
    report = healing_accuracy(ck.model, ck.tokenizer, works)
    if args.beam:  # the same cut points, scored with the top next-word suggestion
        report["beam_top1"] = beam_accuracy(ck.model, ck.tokenizer, works)
    print(json.dumps({"checkpoint": ck.name, **report}), flush=True)
