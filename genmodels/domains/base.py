"""The defaults shared by the domains whose models are recurrent language models over one token stream
(text and melody): the network and the trainer."""

from __future__ import annotations

from typing import Any

from genmodels.core.registry import Domain
from genmodels.learn.trainer import Trainer
from genmodels.nn.rnn import RNNLanguageModel


class LanguageModelDomain(Domain):
    """A domain whose models are ``RNNLanguageModel`` networks trained by the shared ``Trainer``."""

    def build_model(self, config: Any) -> RNNLanguageModel:
        return RNNLanguageModel(config)

    def trainer_class(self) -> type:
        return Trainer
