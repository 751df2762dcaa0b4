"""Why did untied melody LSTMs stall near 3.5 nats/note while the GRU went on?

Runs `python -m genmodels train` with one extra experimental switch, the LSTM forget-gate bias at
initialisation: 1 (the project's init since add1c46) or PyTorch's default (uniform ±1/sqrt(hidden),
i.e. about 0, as the stalled runs had). Every other option passes through to `train`.

    python -m scripts.lstm_stall --forget-bias default -- --domain melody --cell lstm ... --out runs/NAME
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

from genmodels.cli.main import main as genmodels_main
from genmodels.nn import rnn as model_module


def _with_default_forget_bias(init):
    def patched(self, config):
        init(self, config)
        if config.cell != "lstm":
            return
        bound = 1.0 / math.sqrt(config.hidden)
        with torch.no_grad():
            for k in range(config.layers):
                for name in (f"bias_ih_l{k}", f"bias_hh_l{k}"):
                    getattr(self.rnn, name)[config.hidden : 2 * config.hidden].uniform_(-bound, bound)

    return patched


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--forget-bias", choices=["one", "default"], default="one")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="options for `genmodels train` after --")
    a = p.parse_args(argv)
    rest = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    if a.forget_bias == "default":
        cls = model_module.RNNLanguageModel
        cls.__init__ = _with_default_forget_bias(cls.__init__)
    return genmodels_main(["train", *rest])


if __name__ == "__main__":
    sys.exit(main())
