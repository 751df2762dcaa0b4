"""What the Train page shares: where jobs live, the model a fine-tune starts from, the small-corpus recipe and
an estimate of what a few minutes can do with the material."""

from __future__ import annotations

import os
from pathlib import Path

from app.model_cache import ROOT, checkpoints_root
from genmodels.core.errors import GenmodelsError
from genmodels.io.checkpoint import read_card, read_config
from genmodels.learn.jobs import JobQueue
from genmodels.learn.material import Material, is_text_domain, split_plan

DOMAINS = {"Text": "text", "Melody": "melody"}
PAGE_OF = {domain: page for page, domain in DOMAINS.items()}  # where a finished model is listed
SCRATCH_FLAGS = {"text": ["--vocab-size", "256"], "melody": []}  # a small vocabulary for a small corpus
FINE_TUNE = "Fine-tune the shipped model (recommended)"
SCRATCH = "Train a new small model from scratch (for a large corpus)"
# Rough tokens per unit, for sizing batches and validations before the tokenizer has read anything.
TOKENS_PER = {"text": 1 / 3.2, "melody": 2.3}
BPTT = {"text": 35, "melody": 64}
BATCH = {"text": 20, "melody": 16}


def jobs_root() -> Path:
    """``$GENMODELS_JOBS`` or the repository's ``runs/jobs`` (kept out of git)."""
    env = os.environ.get("GENMODELS_JOBS")
    return Path(env) if env else ROOT / "runs" / "jobs"


def job_queue() -> JobQueue:
    return JobQueue(jobs_root(), checkpoints_root())


def parent_model(domain: str) -> Path | None:
    """The shipped GRU of ``domain`` (the quicker network to fine-tune), if it is there and a single network."""
    path = checkpoints_root() / f"{domain}-gru"
    try:
        model = read_config(path).get("model") or {}
    except GenmodelsError:
        return None
    return None if "mixture" in model else path


def train_tokens(domain: str, mat: Material) -> int:
    plan = split_plan(mat)
    units = plan["train"] if is_text_domain(domain) else mat.notes * plan["train"] / max(1, len(mat.tunes))
    return max(1, int(units * TOKENS_PER[domain]))


def recipe(domain: str, mat: Material, minutes: float, parent: Path | None) -> list[str]:
    """The ``train`` flags for this material. A fine-tune: a fifth of the base learning rate (the parent is
    already good; large steps would wash out what it knows), a short warm-up, validation about once per
    pass over the material, stopping after 5 validations without a new best, and more dropout (0.3) since a
    small corpus is memorised quickly. From scratch: a small GRU and a small vocabulary."""
    bptt = BPTT[domain]
    tokens = train_tokens(domain, mat)
    batch = max(2, min(BATCH[domain], tokens // (2 * bptt)))
    per_pass = max(1, tokens // (batch * bptt))
    args = ["--time-budget", f"{minutes:g}", "--batch", str(batch), "--bptt", str(bptt), "--patience", "5"]
    args += ["--eval-every", str(min(100, max(10, per_pass))), "--dropout", "0.3"]
    if parent is not None:
        return [*args, "--init-from", str(parent), "--lr", "5e-4", "--warmup", "20"]
    small = ["--cell", "gru", "--emb-dim", "128", "--hidden", "256", "--layers", "2", "--warmup", "50"]
    return [*args, *small, *SCRATCH_FLAGS[domain]]


def tokens_per_cpu_second(parent: Path | None) -> float:
    """The parent's training speed from its card (tokens per CPU second); a cautious guess without one."""
    try:
        card = read_card(parent) if parent else {}
    except GenmodelsError:
        card = {}
    tokens, cpu = card.get("tokens"), card.get("cpu_time_s")
    if isinstance(tokens, int) and isinstance(cpu, (int, float)) and cpu > 0:
        return tokens / cpu / 2  # the card's machine may be faster; say less rather than more
    return 1500.0


def estimate(domain: str, mat: Material, minutes: float, parent: Path | None) -> str:
    """What ``minutes`` of CPU can do with this much material, in words."""
    tokens = train_tokens(domain, mat)
    passes = tokens_per_cpu_second(parent) * 60 * minutes / tokens
    start = "the shipped model" if parent else "a new small model"
    if passes < 1:
        return (
            f"{minutes:g} minutes read about {passes:.0%} of your material once: {start} moves toward it only a "
            "little. Give it more minutes, or expect a modest change."
        )
    if passes <= 30:
        return (
            f"{minutes:g} minutes are about {passes:.0f} passes over your material: enough for {start} to take "
            "up its vocabulary and turns; the validation figure should beat the shipped model's within minutes."
        )
    return (
        f"{minutes:g} minutes are about {passes:.0f} passes over a small corpus: {start} learns it within a "
        "minute or two, then starts to memorise it. Early stopping keeps the weights that did best on your "
        "held-out tenth, so extra minutes cost nothing but time."
    )
