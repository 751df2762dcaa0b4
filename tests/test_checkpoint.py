"""Checkpoints: unsafe, broken or mismatched files are refused with a typed error naming the file."""

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from genmodels.domains import TEXT
from genmodels.io.checkpoint import CheckpointError, atomic_write, load_checkpoint, load_train_state


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


@pytest.fixture
def ck(tiny_text_ckpt, tmp_path) -> Path:
    d = tmp_path / "ck"
    shutil.copytree(tiny_text_ckpt, d)
    return d


def test_loads_and_has_a_card(ck):
    c = load_checkpoint(ck)
    assert c.domain is TEXT and c.card["metric"] == "bits_per_char"


@pytest.mark.parametrize("target", ["model.safetensors", "train_state.pt"])
def test_crafted_pickle_is_refused_without_running(ck, tmp_path, target):
    marker = tmp_path / "marker.txt"
    (ck / target).write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(CheckpointError, match=target.split(".")[0]):
        load_checkpoint(ck) if target == "model.safetensors" else load_train_state(ck)
    assert not marker.exists()


def test_truncated_weights(ck):
    raw = (ck / "model.safetensors").read_bytes()
    (ck / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(ck)


def test_corrupted_weights(ck):
    raw = bytearray((ck / "model.safetensors").read_bytes())
    raw[:8] = b"\xff" * 8
    (ck / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(ck)


def test_missing_and_malformed_config(ck):
    cfg = (ck / "config.json").read_text()
    (ck / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json.*not valid JSON"):
        load_checkpoint(ck)
    bad = json.loads(cfg)
    bad["model"]["hidden"] = 999
    (ck / "config.json").write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(ck)
    (ck / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_checkpoint(ck)


def test_tokenizer_that_does_not_match_the_weights(ck, text_corpus):
    shutil.copy(text_corpus / "tokenizer.model", ck / "tokenizer.model")  # 2048 pieces vs the tiny model's
    with pytest.raises(CheckpointError, match="do not belong together"):
        load_checkpoint(ck)


def test_missing_directory():
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint("checkpoints/does-not-exist")


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"old good weights")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(CheckpointError, match="No space left"):
        atomic_write(f, b"new weights")
    assert f.read_bytes() == b"old good weights"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left behind
