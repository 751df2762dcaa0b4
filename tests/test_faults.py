"""Faults in training: a kill during a checkpoint write, a NaN loss; the last good checkpoint survives."""

import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import train_command

import genmodels.learn.steps as steps_mod
from genmodels.core.errors import SettingsError
from genmodels.io.checkpoint import load_checkpoint, load_train_state
from genmodels.learn.trainer import Trainer
from tests.conftest import TINY, train_config

WRITER = """
import sys, torch
from genmodels.io.checkpoint import load_checkpoint, save_weights
c = load_checkpoint(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    with torch.no_grad():
        for p in c.model.parameters():
            p.add_(0.001)
    save_weights(sys.argv[1], c.model)
    i += 1
"""


def test_kill_during_checkpoint_writes_leaves_a_loadable_checkpoint(tiny_text_ckpt, tmp_path):
    ck = tmp_path / "ck"
    shutil.copytree(tiny_text_ckpt, ck)
    for delay in (0.05, 0.2, 0.5):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(ck)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        load_checkpoint(ck)  # never a half-written file


def test_nan_loss_never_overwrites_a_good_checkpoint(small_text_dir, tmp_path, monkeypatch):
    cfg = train_config(
        domain="text",
        data=str(small_text_dir),
        out=str(tmp_path / "nan"),
        vocab_size=300,
        steps=200,
        eval_every=10,
        save_every=10,
        **TINY,
    )
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, progress=False).run(stop_after=20)
    good = (tmp_path / "nan/model.safetensors").read_bytes()
    good_step = load_train_state(tmp_path / "nan")["step"]

    real = steps_mod.masked_loss

    def poisoned(logits, targets, ignore_id):
        loss, n = real(logits, targets, ignore_id)
        return loss * float("nan"), n

    monkeypatch.setattr(steps_mod, "masked_loss", poisoned)
    with pytest.raises(SettingsError, match="NaN"):
        Trainer(cfg, resume=True, progress=False).run()
    assert (tmp_path / "nan/model.safetensors").read_bytes() == good
    assert load_train_state(tmp_path / "nan")["step"] == good_step
    assert all(torch.isfinite(v).all() for v in load_checkpoint(tmp_path / "nan").model.state_dict().values())


def test_ctrl_c_saves_between_steps_and_resume_continues(small_text_dir, tmp_path):
    out = tmp_path / "sig"
    big = 10_000_000  # no step limit, evaluation or save before the signal
    cmd = train_command(small_text_dir, out, batch=4, steps=big, eval_every=big, save_every=big)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "config.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # some steps in, between periodic saves
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Interrupted at step" in err and "Traceback" not in err
    step = load_train_state(out)["step"]
    assert step > 0  # no periodic save happened: this state was written on the interrupt
    r = subprocess.run(
        cmd[:4] + ["--domain", "text", "--out", str(out), "--resume", "--steps", str(step + 3)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert load_train_state(out)["step"] == step + 3
