"""Keystroke savings of three word suggestions on a fixed sample of the test works: ``python -m scripts.keystrokes
[CHECKPOINT ...] [--no-ngram]``, one JSON line per predictor."""

import json

import torch

from genmodels.core.options import text_measurement_parser
from genmodels.eval.keystrokes import keystroke_report

p = text_measurement_parser(
    "python -m scripts.keystrokes",
    "Keystroke savings of three word suggestions on a fixed sample of the test works "
    "(about 21,000 characters; a few minutes per predictor).",
)
p.add_argument("--no-ngram", action="store_true", help="leave out the character Kneser-Ney 7-gram")
args = p.parse_args()
torch.set_num_threads(1)
report = keystroke_report(args.checkpoints, ngram=not args.no_ngram)
for name, r in report.items():
    print(json.dumps({"predictor": name, **r}), flush=True)
