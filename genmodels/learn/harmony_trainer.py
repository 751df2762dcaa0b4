"""Training the harmoniser: a whole chorale per row (padded), batches of chorales of similar length.

The shared :class:`genmodels.learn.trainer.Trainer` does the rest as for the other domains (AdamW or SGD, the
schedules, bf16 autocast, the CPU-time budget, validation and best weights, atomic saves, exact resume,
the card). Exact resume: the batches of an epoch are a function of (seed, epoch), the position in the
epoch and the RNG state are saved with the weights and the optimiser.

Metric: nats per lower-voice note = the total NLL of every alto, tenor and bass grid token (pitch,
HOLD or REST at every step) ÷ the number of lower-voice note onsets.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels.core.errors import DataError
from genmodels.harmony.grid import Chorale
from genmodels.learn.chorales import load_split
from genmodels.learn.data import recorded_path
from genmodels.learn.optim import lr_at
from genmodels.learn.trainer import Trainer
from genmodels.tokenizers.harmony import (
    BOS,
    PAD,
    REST_ID,
    HarmonyTokenizer,
    held_pitches,
    lower_onsets,
    lower_tokens,
    soprano_features,
)

SPLITS = ("train", "valid", "test")
FEATURES = ("soprano", "sounding", "position", "strength", "fermata")


@dataclass
class Item:
    """One chorale as the model reads it: soprano features, the flattened lower-voice targets."""

    feats: dict[str, torch.Tensor]
    target: torch.Tensor  # (3T,)
    held: torch.Tensor  # (3T, 3) the pitches the voices hold before each token (``held_pitches``)
    onsets: int

    @property
    def steps(self) -> int:
        return self.feats["soprano"].numel()


def encode_item(chorale: Chorale, tok: HarmonyTokenizer) -> Item:
    target = lower_tokens(chorale, tok)
    held = torch.tensor(held_pitches(target.tolist()), dtype=torch.long).view(-1, 3)
    return Item(soprano_features(chorale, tok), target, held, lower_onsets(chorale))


@dataclass
class HarmonyData:
    """The three splits, encoded; ``info`` goes into the model card."""

    domain: object
    tokenizer: HarmonyTokenizer
    train: list[Item]
    valid: list[Item]
    test: list[Item]
    info: dict = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return self.domain.metric

    @property
    def valid_units(self) -> int:
        return sum(i.onsets for i in self.valid)

    @property
    def test_units(self) -> int:
        return sum(i.onsets for i in self.test)


def read_split(folder: Path, split: str) -> list[Chorale]:
    """The chorales of one split (``train`` with its transposed copies)."""

    return load_split(folder, split)


def harmony_data(domain, folder: str | Path, tokenizer=None, augment: bool = True) -> HarmonyData:
    """The corpus in ``folder`` (train/valid/test .jsonl). ``augment=False``: the train split without
    its transposed copies."""
    folder = Path(folder)
    if not (folder / "train.jsonl").exists():
        raise DataError(f"No harmony corpus in {folder}: run python -m genmodels prepare harmony")
    tok = tokenizer or HarmonyTokenizer()
    splits = {s: read_split(folder, s) for s in SPLITS}
    if not augment:
        splits["train"] = [c for c in splits["train"] if not c.meta.get("transposed")]
    if not splits["train"] or not splits["valid"]:
        raise DataError(f"{folder}: the train and valid splits need chorales")
    items = {s: [encode_item(c, tok) for c in cs] for s, cs in splits.items()}
    if not items["test"]:
        items["test"] = items["valid"]
    info = {
        "data": recorded_path(folder),
        "split": {
            s: {
                "chorales": len(items[s]),
                "steps": sum(i.steps for i in items[s]),
                "notes": sum(i.onsets for i in items[s]),
            }
            for s in SPLITS
        },
        "augment": "the transposed copies in train.jsonl" if augment else "none (untransposed chorales only)",
    }
    return HarmonyData(domain, tok, items["train"], items["valid"], items["test"], info)


def epoch_batches(items: list[Item], batch: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of an epoch (indices into ``items``): shuffled by (seed, epoch), chorales of similar
    length together (sorted within windows of 20 batches) so little is padding."""
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(items)))
    rng.shuffle(order)
    out: list[list[int]] = []
    window = batch * 20
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: items[i].steps)
        out += [chunk[k : k + batch] for k in range(0, len(chunk), batch)]
    rng.shuffle(out)
    return out


def collate(
    items: list[Item],
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features padded (B, T) + key (B, 2), decoder inputs (B, 3T), the pitches the voices hold (B, 3T, 3),
    targets (B, 3T; PAD past the end), lengths (B,))."""
    lengths = torch.tensor([i.steps for i in items])
    T = int(lengths.max())
    feats = {k: torch.zeros(len(items), T, dtype=torch.long) for k in FEATURES}
    target = torch.full((len(items), 3 * T), PAD, dtype=torch.long)
    held = torch.full((len(items), 3 * T, 3), REST_ID, dtype=torch.long)
    for b, it in enumerate(items):
        for k in FEATURES:
            feats[k][b, : it.steps] = it.feats[k]
        target[b, : 3 * it.steps] = it.target
        held[b, : 3 * it.steps] = it.held
    feats["key"] = torch.stack([i.feats["key"] for i in items])
    prev = torch.cat([torch.full((len(items), 1), BOS, dtype=torch.long), target[:, :-1]], dim=1)
    return feats, prev, held, target, lengths


def token_loss(model, feats, prev, held, target, lengths) -> tuple[torch.Tensor, int]:
    """Summed NLL of the target tokens (PAD skipped) and their number."""
    logits = model(feats, prev, held, lengths)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1), ignore_index=PAD, reduction="sum"
    )
    return loss, int((target != PAD).sum())


@torch.no_grad()
def harmony_nll(model, items: list[Item], domain, batch: int = 16) -> dict:
    """The metric over ``items``: total nats of every lower-voice token ÷ lower-voice note onsets."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(items)), key=lambda i: items[i].steps)
    nats, tokens = 0.0, 0
    for k in range(0, len(order), batch):
        loss, n = token_loss(model, *collate([items[i] for i in order[k : k + batch]]))
        nats, tokens = nats + float(loss), tokens + n
    model.train(was_training)
    units = sum(i.onsets for i in items)
    return {"nats": nats, "tokens": tokens, "units": units, "value": domain.nats_to_metric(nats, units)}


class HarmonyTrainer(Trainer):
    """The shared trainer over batches of whole chorales instead of windows of a token stream."""

    def _rows(self, epoch: int) -> list[list[int]]:
        return epoch_batches(self.data.train, self.cfg.batch, self.cfg.seed, epoch)

    def _epoch_over(self, data: list[list[int]]) -> bool:
        return self.pos >= len(data)

    def _batch(self, data: list[list[int]]) -> tuple:
        return collate([self.data.train[i] for i in data[self.pos]])

    def _batch_tokens(self, batch: tuple) -> int:
        return int((batch[3] != PAD).sum())

    def _train_on(self, feats, prev, held, target, lengths) -> float | None:
        """One optimiser step on a batch of chorales; None when the loss was not finite."""

        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.cfg, self.step, self._budget_fraction(), self.lr_scale)
        self.net.train()
        t_cpu = time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            loss_sum, n = token_loss(self.net, feats, prev, held, target, lengths)
        loss = loss_sum / max(n, 1)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.clip)
        self.pos += 1
        if not (torch.isfinite(loss) and torch.isfinite(norm)):
            self.opt.zero_grad(set_to_none=True)
            return None
        self.opt.step()
        self._speed[0] += time.process_time() - t_cpu
        self.step += 1
        self.tokens += n
        self._speed[1] += n
        return float(loss.detach())

    def validate(self) -> dict:
        return harmony_nll(self.model, self.data.valid, self.domain)
