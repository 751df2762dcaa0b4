"""Training: tiny LSTM/GRU models learn, interrupted runs resume exactly, DDP under torchrun, the CLI."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import needs_bf16, train_command

import genmodels.cli.main as cli_main
import genmodels.learn.optim as optim_mod
from genmodels.core.errors import CheckpointError
from genmodels.core.options import flatten
from genmodels.io.checkpoint import load_checkpoint, load_train_state, save_train_state
from genmodels.learn.trainer import Trainer, train
from tests.conftest import TINY, train_config


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tiny_text_model_learns_and_generates(cell, small_text_dir, tmp_path):
    out = tmp_path / f"text-{cell}"
    r = train(
        train_config(
            domain="text",
            data=str(small_text_dir),
            out=str(out),
            cell=cell,
            vocab_size=300,
            steps=240,
            eval_every=60,
            **TINY,
        ),
        progress=False,
    )
    vals = [h["valid"] for h in r["history"]]
    assert vals[-1] < vals[0] - 0.3, vals
    card = json.loads((out / "card.json").read_text())
    assert (
        card["metric"] == "bits_per_char" and card["parameters"] > 0 and "train" in card["command"] or card["command"]
    )
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "genmodels",
            "generate",
            str(out),
            "--seed-text",
            "ROMEO:",
            "--length",
            "30",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ROMEO:") and len(p.stdout) > len("ROMEO:") + 5


def _weights(path):
    return load_checkpoint(path).model.state_dict() if False else load_train_state(path)["model"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_interrupted_run_resumes_exactly(cell, small_text_dir, tmp_path):
    kw = dict(
        domain="text",
        data=str(small_text_dir),
        cell=cell,
        vocab_size=300,
        steps=40,
        eval_every=15,
        save_every=5,
        **{**TINY, "dropout": 0.3, "layers": 2},
    )
    train(train_config(out=str(tmp_path / "a"), **kw), progress=False)
    with pytest.raises(KeyboardInterrupt):
        Trainer(train_config(out=str(tmp_path / "b"), **kw), progress=False).run(stop_after=17)
    assert load_train_state(tmp_path / "b")["step"] == 17
    train(train_config(out=str(tmp_path / "b"), **kw), resume=True, progress=False)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_without_state_is_a_clear_error(tmp_path, small_text_dir):
    with pytest.raises(CheckpointError, match="Nothing to resume"):
        train(train_config(domain="text", data=str(small_text_dir), out=str(tmp_path / "none")), resume=True)


def test_ddp_two_processes_loss_falls(small_text_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = train_command(
        small_text_dir, out, ddp=True, emb_dim=24, hidden=32, bptt=32, lr="1e-2", steps=120, eval_every=40, warmup=10
    )
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[:3000] + "\n...\n" + p.stderr[-1000:]  # the rank's own error comes first
    hist = json.loads((out / "card.json").read_text())["history"]
    assert "2 processes" in json.loads((out / "card.json").read_text())["hardware"]
    assert hist[-1]["valid"] < hist[0]["valid"], hist


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tiny_melody_model_learns_and_generates(cell, small_melody_dir, tmp_path):
    import pretty_midi

    out = tmp_path / f"melody-{cell}"
    r = train(
        train_config(
            domain="melody",
            data=str(small_melody_dir),
            out=str(out),
            cell=cell,
            steps=200,
            eval_every=50,
            **{**TINY, "batch": 4},
        ),
        progress=False,
    )
    vals = [h["valid"] for h in r["history"]]
    assert vals[-1] < vals[0] - 0.3, vals
    assert json.loads((out / "card.json").read_text())["metric"] == "nats_per_note"
    mid = tmp_path / "gen.mid"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "genmodels",
            "generate",
            str(out),
            "--prompt-notes",
            "E4 G4 A4/2 B4/2",
            "--length",
            "4",
            "--out",
            str(mid),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    notes = pretty_midi.PrettyMIDI(str(mid)).instruments[0].notes
    assert [n.pitch for n in notes[:4]] == [64, 67, 69, 71] and len(notes) > 4


def test_cli_bad_input_is_a_clear_error_not_a_traceback(tiny_text_ckpt, tmp_path):
    cases = [
        ["generate", str(tmp_path / "nope"), "--prompt", "x"],
        ["generate", str(tiny_text_ckpt), "--prompt", "x", "--temperature", "nan"],
        ["generate", str(tiny_text_ckpt)],
        ["train", "--domain", "text", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        ["eval", str(tmp_path / "nope")],
    ]
    cases.append(["train", "--domain", "text", "--weight-dropout", "1.5", "--out", str(tmp_path / "o")])
    for args in cases:
        p = subprocess.run([sys.executable, "-m", "genmodels", *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr, p.stderr
    assert "--weight-dropout 1.5: a rate in [0, 1) is needed" in p.stderr


def test_cli_resume_keeps_the_saved_options(small_text_dir, tmp_path):
    out = tmp_path / "cli"
    base = [sys.executable, "-m", "genmodels", "train", "--domain", "text", "--out", str(out)]
    first = [
        "--data",
        str(small_text_dir),
        "--cell",
        "gru",
        "--emb-dim",
        "16",
        "--hidden",
        "24",
        "--layers",
        "1",
        "--batch",
        "4",
        "--bptt",
        "16",
        "--lr",
        "0.005",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--vocab-size",
        "300",
        "--threads",
        "1",
    ]
    assert subprocess.run(base + first, capture_output=True, timeout=300).returncode == 0
    state = load_train_state(out)
    state["config"] = flatten(state["config"])  # saves made before TrainConfig held a ModelConfig were flat
    save_train_state(out, state)
    p = subprocess.run(base + ["--resume", "--steps", "30"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    state = load_train_state(out)
    assert state["step"] == 30 and state["config"]["lr"] == 0.005 and state["config"]["model"]["cell"] == "gru"
    card = json.loads((out / "card.json").read_text())
    assert [c["step"] for c in card["commands"]] == [0, 20] and "--resume" not in card["commands"][1]["command"]


def test_augmentation_keeps_tunes_that_cannot_be_transposed(tmp_path):
    from genmodels.domains.melody import melody_data
    from genmodels.music import parse_note_prompt, write_midi

    for i in range(4):
        write_midi(parse_note_prompt("A#7 G#7 C8*2 A#7 G#7", key=(0, "major")), tmp_path / f"high{i}.mid")
    d = melody_data(tmp_path, augment=True, cache_dir=tmp_path / "cache")
    for epoch in range(30):  # every epoch draws new intervals; tunes near the top of the range stay as they are
        assert d.train_stream(epoch).numel() > 0


def test_fine_tune_from_a_checkpoint(tiny_text_ckpt, small_text_dir, tmp_path):
    from genmodels.core.errors import SettingsError

    parent = json.loads((tiny_text_ckpt / "card.json").read_text())
    kw = dict(
        domain="text",
        data=str(small_text_dir),
        cell="lstm",
        vocab_size=300,
        steps=20,
        eval_every=10,
        init_from=str(tiny_text_ckpt),
        **{**TINY, "lr": 1e-3},
    )
    r = train(train_config(out=str(tmp_path / "ft"), **kw), progress=False)
    assert r["history"][0]["valid"] < parent["valid"] + 0.05  # starts where the parent ended, not from scratch
    card = json.loads((tmp_path / "ft/card.json").read_text())
    assert card["commands"][0]["model"] == tiny_text_ckpt.name and card["wall_time_s"] >= parent["wall_time_s"]
    with pytest.raises(SettingsError, match="differs"):
        train(train_config(out=str(tmp_path / "bad"), **{**kw, "hidden": 48}), progress=False)
    # regularisers change only training: a fine-tune may add them
    reg = {**kw, "steps": 10, "weight_dropout": 0.3, "embed_dropout": 0.1}
    assert len(train(train_config(out=str(tmp_path / "reg"), **reg), progress=False)["history"]) == 1


# optimiser, schedules, precision, CPU-time budget ------------------------------------------
def _text_kw(small_text_dir, **over):
    return dict(
        domain="text",
        data=str(small_text_dir),
        cell="lstm",
        vocab_size=300,
        **{**TINY, "dropout": 0.1, "layers": 2, **over},
    )


def test_make_optimizer_plain_sgd_or_adamw_with_decay_groups():
    from genmodels.learn.optim import make_optimizer
    from genmodels.nn.rnn import ModelConfig, RNNLanguageModel

    m = RNNLanguageModel(ModelConfig(vocab_size=50, emb_dim=8, hidden=8, layers=1))
    sgd = make_optimizer(train_config(optimizer="sgd", lr=20.0), m.named_parameters())
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0 and sgd.defaults["weight_decay"] == 0
    adamw = make_optimizer(train_config(weight_decay=0.1), m.named_parameters())
    assert type(adamw) is torch.optim.AdamW and [g["weight_decay"] for g in adamw.param_groups] == [0.1, 0.0]


def test_schedules_plateau_scale_and_cosine_over_the_time_budget():
    from genmodels.learn.optim import lr_at

    plateau = train_config(schedule="plateau", lr=20.0, warmup=0)
    assert lr_at(plateau, 500) == 20.0 and lr_at(plateau, 500, plateau_scale=1 / 16) == 1.25
    budget = train_config(lr=1.0, warmup=0, steps=0, time_budget=10, min_lr_ratio=0.0)
    assert lr_at(budget, 10**6, budget_spent=0.0) == 1.0  # no step limit: only the budget moves the cosine
    assert lr_at(budget, 5, budget_spent=0.5) == pytest.approx(0.5)
    assert lr_at(budget, 5, budget_spent=1.0) == pytest.approx(0.0)
    both = train_config(lr=1.0, warmup=0, steps=100, time_budget=10, min_lr_ratio=0.0)
    assert lr_at(both, 50, budget_spent=0.1) == pytest.approx(0.5)  # whichever ends first ends the cosine
    warm = train_config(lr=1.0, warmup=10, steps=0, time_budget=10)
    assert lr_at(warm, 8, budget_spent=0.3) < lr_at(warm, 9, budget_spent=0.3) == lr_at(warm, 10, budget_spent=0.3)
    assert lr_at(train_config(lr=1.0, warmup=10, steps=100), 4) == 0.5  # step-based runs: the same rates as before


def _bits_after(cfg) -> float:
    return train(cfg, progress=False)["history"][-1]["valid"]


@needs_bf16
def test_bf16_and_fp32_reach_the_same_validation_metric(small_text_dir, tmp_path, monkeypatch):
    """bf16 autocast rounds the inputs of the forward matrix products to 8 bits of mantissa (relative error
    2^-9 ≈ 0.2 %); weights, gradients, optimiser state and loss stay fp32, so the two runs drift apart only
    slowly. Measured after 150 steps (valid falls by 0.4 bits/char): 0.001-0.003 bits/char between the
    precisions, 0.04 between two fp32 runs with different seeds. The tolerance, 0.02, is half the seed-to-seed
    spread: a precision defect larger than the noise of training itself fails the test."""

    monkeypatch.setattr(optim_mod, "bf16_supported", lambda device_type="cpu": True)  # bf16 runs on any CPU
    kw = dict(
        domain="text",
        data=str(small_text_dir),
        cell="lstm",
        vocab_size=300,
        steps=150,
        eval_every=50,
        **{**TINY, "lr": 2e-2},
    )
    fp32 = _bits_after(train_config(out=str(tmp_path / "fp32"), precision="fp32", **kw))
    bf16 = _bits_after(train_config(out=str(tmp_path / "bf16"), precision="bf16", **kw))
    assert abs(bf16 - fp32) < 0.02, (fp32, bf16)
    card = json.loads((tmp_path / "bf16/card.json").read_text())
    assert card["precision"] == "bf16" and card["hyperparameters"]["precision"] == "bf16"
    assert all(v.dtype == torch.float32 for v in load_train_state(tmp_path / "bf16")["model"].values())


@needs_bf16
def test_bf16_run_resumes_exactly(small_text_dir, tmp_path, monkeypatch):

    monkeypatch.setattr(optim_mod, "bf16_supported", lambda device_type="cpu": True)
    kw = _text_kw(small_text_dir, steps=30, eval_every=15, save_every=5, precision="bf16")
    train(train_config(out=str(tmp_path / "a"), **kw), progress=False)
    with pytest.raises(KeyboardInterrupt):
        Trainer(train_config(out=str(tmp_path / "b"), **kw), progress=False).run(stop_after=12)
    hidden = load_train_state(tmp_path / "b")["hidden"]
    assert all(h.dtype == torch.float32 for h in hidden)  # the carried state is saved in fp32
    train(train_config(out=str(tmp_path / "b"), **kw), resume=True, progress=False)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_new_weights_make_earlier_results_stale(small_text_dir, tmp_path, monkeypatch):
    """A new best save copied test, baseline and samples measured on earlier weights."""
    import genmodels.eval.evaluate as ev
    from genmodels.io.card import card_markdown

    monkeypatch.setattr(ev, "baseline_summary", lambda domain, data=None: {"model": "stub", "value": 9.0})
    out = tmp_path / "stale"
    kw = dict(domain="text", data=str(small_text_dir), out=str(out), cell="lstm", vocab_size=300, eval_every=10, **TINY)
    train(train_config(steps=20, **kw), progress=False)
    ev.eval_checkpoint(str(out), samples=True, update_card=True)
    card = json.loads((out / "card.json").read_text())
    old_test = card["test"]["value"]
    assert f"| test | {old_test} (" in card_markdown(card)  # fresh results are shown as they are
    weights = (out / "model.safetensors").read_bytes()
    train(train_config(steps=60, **kw), resume=True, progress=False)
    assert (out / "model.safetensors").read_bytes() != weights  # a new best was saved
    card = json.loads((out / "card.json").read_text())
    for k in ("test", "baseline", "samples"):
        assert k not in card, k  # not presented as results of the new weights
    assert card["stale_results"]["test"]["value"] == old_test
    md = (out / "card.md").read_text()
    assert f"| test | {old_test}" not in md and "earlier weights" in md


def test_cli_prints_one_valid_json_line_when_nothing_was_validated(small_text_dir, tmp_path):
    """A run with no finite validation printed {"best_valid": Infinity}, which is not JSON.
    (--steps 0 is no step limit now; a CPU-time budget spent before the first step ends the run unvalidated.)"""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "genmodels",
            "train",
            "--domain",
            "text",
            "--data",
            str(small_text_dir),
            "--out",
            str(tmp_path / "zero"),
            "--steps",
            "0",
            "--time-budget",
            "1e-12",
            "--vocab-size",
            "300",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr

    def refuse(name):
        raise ValueError(name)

    assert json.loads(p.stdout, parse_constant=refuse)["best_valid"] is None


def test_ddp_prints_once_and_resumes_exactly(small_text_dir, tmp_path):
    """Every rank printed (non-zero ranks {"best_valid": Infinity}), and a resume under DDP
    reset every process's carried hidden state."""

    def run(out, steps, *extra):
        cmd = train_command(
            small_text_dir, out, ddp=True, lr="1e-2", steps=steps, eval_every=10, warmup=100, eval_tokens=2000
        ) + list(extra)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[:3000] + "\n...\n" + p.stderr[-1000:]  # the rank's own error comes first
        return p.stdout

    whole = run(tmp_path / "a", 20)  # warm-up covers every step: the schedule does not depend on --steps
    assert len(whole.strip().splitlines()) == 1 and json.loads(whole)["steps"] == 20
    run(tmp_path / "b", 10)
    run(tmp_path / "b", 20, "--resume")
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_plateau_schedule_state_resumes_exactly(small_text_dir, tmp_path, monkeypatch):
    """Validation never improves after the first check (a fixed metric), so every later check divides the
    lr by 4; an interrupted run must carry those divisions over and end like an uninterrupted one."""
    import genmodels.learn.trainer as train_mod

    monkeypatch.setattr(train_mod, "evaluate", lambda *a, **k: {"nats": 1.0, "tokens": 1, "units": 1, "value": 5.0})
    kw = _text_kw(
        small_text_dir,
        optimizer="sgd",
        schedule="plateau",
        lr=1.0,
        warmup=0,
        clip=0.25,
        steps=40,
        eval_every=10,
        save_every=5,
    )
    train(train_config(out=str(tmp_path / "a"), **kw), progress=False)
    with pytest.raises(KeyboardInterrupt):
        Trainer(train_config(out=str(tmp_path / "b"), **kw), progress=False).run(stop_after=25)
    assert load_train_state(tmp_path / "b")["lr_scale"] == 1 / 4  # checks at 10 (best), 20 (÷4)
    train(train_config(out=str(tmp_path / "b"), **kw), resume=True, progress=False)
    sa, sb = load_train_state(tmp_path / "a"), load_train_state(tmp_path / "b")
    assert sa["lr_scale"] == sb["lr_scale"] == 1 / 64  # 20, 30, 40 did not improve
    assert sb["opt"]["param_groups"][0]["lr"] == 1 / 16  # step 40's update used the rate before its check
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k


def test_bf16_without_support_is_a_clear_error_and_auto_falls_back(small_text_dir, tmp_path, monkeypatch, capsys):
    from genmodels.core.errors import SettingsError

    monkeypatch.setattr(optim_mod, "bf16_supported", lambda device_type="cpu": False)
    with pytest.raises(SettingsError, match="--precision bf16"):
        Trainer(train_config(out=str(tmp_path / "x"), precision="bf16", **_text_kw(small_text_dir)), progress=False)
    assert not (tmp_path / "x").exists()
    t = Trainer(train_config(out=str(tmp_path / "y"), precision="auto", **_text_kw(small_text_dir)), progress=False)
    assert t.precision == "fp32" and "training in fp32" in capsys.readouterr().err


def test_bad_training_settings_are_settings_errors(small_text_dir, tmp_path):
    from genmodels.core.errors import SettingsError

    for bad in (
        {"optimizer": "adam"},
        {"schedule": "step"},
        {"precision": "fp16"},
        {"steps": 0},
        {"schedule": "plateau", "plateau_factor": 1.0},
    ):
        with pytest.raises(SettingsError):
            Trainer(train_config(out=str(tmp_path / "o"), **{**_text_kw(small_text_dir), **bad}), progress=False)


def test_time_budget_stops_saves_and_validates(small_text_dir, tmp_path):
    out = tmp_path / "budget"
    r = train(
        train_config(out=str(out), steps=0, time_budget=0.02, eval_every=10**6, **_text_kw(small_text_dir)),
        progress=False,
    )
    state = load_train_state(out)
    assert state["cpu"] >= 0.02 * 60 and state["step"] == r["step"] > 0
    assert r["history"][-1]["step"] == state["step"]  # validated at the stop
    card = json.loads((out / "card.json").read_text())
    assert card["time_budget_min"] == 0.02 and card["precision"] in ("bf16", "fp32") and card["cpu_time_s"] > 0
    # resuming with a larger budget goes on from the CPU time already spent
    r2 = train(
        train_config(out=str(out), steps=0, time_budget=0.04, eval_every=10**6, **_text_kw(small_text_dir)),
        resume=True,
        progress=False,
    )
    assert r2["step"] > r["step"] and load_train_state(out)["cpu"] >= 0.04 * 60


def test_cli_time_budget_alone_means_no_step_limit(tmp_path, monkeypatch):
    from genmodels.cli.main import main

    seen = []
    monkeypatch.setattr(cli_main, "train", lambda cfg, **kw: seen.append(cfg) or {"best_valid": 0.0, "step": 0})
    base = ["train", "--domain", "text", "--out", str(tmp_path / "o"), "--precision", "fp32"]
    assert main([*base, "--time-budget", "2"]) == 0 and main([*base, "--time-budget", "2", "--steps", "7"]) == 0
    assert [(c.steps, c.time_budget, c.precision) for c in seen] == [(0, 2.0, "fp32"), (7, 2.0, "fp32")]


def test_fine_tuning_grows_the_vocabulary_and_keeps_the_old_rows():
    from genmodels.domains import get_domain
    from genmodels.learn.trainer_inputs import grown_state
    from genmodels.tokenizers.melody import MelodyTokenizer

    old = MelodyTokenizer(("major", "minor"), form=False)  # the first vocabulary: two modes, no repeat signs
    new = get_domain("melody").fine_tune_tokenizer(old)
    # 24 keys of the two later modes (12 tonics each), the four repeat signs |: :| [1 [2, then three styles
    assert new.vocab[: old.vocab_size] == old.vocab and new.vocab_size == old.vocab_size + 24 + 4 + 3
    parent = {
        "embed.weight": torch.randn(old.vocab_size, 4),
        "head.bias": torch.randn(old.vocab_size),
        "rnn.w": torch.randn(3, 3),
    }
    own = {
        "embed.weight": torch.zeros(new.vocab_size, 4),
        "head.bias": torch.zeros(new.vocab_size),
        "rnn.w": torch.zeros(3, 3),
    }
    grown = grown_state(parent, own, get_domain("melody").grown_like(new))
    assert torch.equal(grown["embed.weight"][: old.vocab_size], parent["embed.weight"])
    sign = new.sign_ids["|:"]
    assert torch.allclose(grown["embed.weight"][sign], parent["embed.weight"].mean(0))
    for style in new.style_ids.values():  # a style stands where <bos> stood: it starts as <bos>
        assert torch.equal(grown["embed.weight"][style], parent["embed.weight"][new.bos_id])
        assert grown["head.bias"][style] == parent["head.bias"][new.bos_id]
    assert torch.equal(grown["rnn.w"], parent["rnn.w"])


def test_training_restores_the_signal_handlers(small_text_dir, tmp_path):
    """After train() returned, Ctrl-C in the calling process only set a flag."""
    import signal

    def mine(signum, frame):
        pass

    saved = signal.signal(signal.SIGINT, mine), signal.signal(signal.SIGTERM, mine)
    try:
        kw = dict(domain="text", data=str(small_text_dir), cell="gru", vocab_size=300, steps=6, eval_every=3, **TINY)
        train(train_config(out=str(tmp_path / "s"), **kw), progress=False)
        assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) is mine
        with pytest.raises(KeyboardInterrupt):
            Trainer(train_config(out=str(tmp_path / "t"), **kw), progress=False).run(stop_after=2)
        assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


def test_resume_applies_a_new_weight_decay_and_records_it(small_text_dir, tmp_path):
    """--resume --weight-decay X kept the saved weight decay while the card recorded X."""
    kw = dict(
        domain="text",
        data=str(small_text_dir),
        out=str(tmp_path / "wd"),
        cell="gru",
        vocab_size=300,
        eval_every=5,
        **TINY,
    )
    train(train_config(steps=5, weight_decay=0.01, **kw), progress=False)
    t = Trainer(train_config(steps=10, weight_decay=0.3, clip=0.5, **kw), resume=True, progress=False)
    assert [g["weight_decay"] for g in t.opt.param_groups] == [0.3, 0.0]
    t.run()
    assert load_train_state(tmp_path / "wd")["opt"]["param_groups"][0]["weight_decay"] == 0.3
    card = json.loads((tmp_path / "wd/card.json").read_text())
    assert card["hyperparameters"]["weight_decay"] == 0.3
    assert card["commands"][-1]["changed"] == {"clip": [1.0, 0.5], "steps": [5, 10], "weight_decay": [0.01, 0.3]}


def test_resume_with_sgd_takes_the_new_settings_and_records_main_options(small_text_dir, tmp_path):
    """--resume onto the SGD optimiser (one parameter group) applies and records the new settings,
    including --schedule and --time-budget; another --optimizer starts with fresh optimiser state."""
    kw = dict(
        domain="text",
        data=str(small_text_dir),
        out=str(tmp_path / "sgd"),
        cell="gru",
        vocab_size=300,
        eval_every=5,
        optimizer="sgd",
        **{**TINY, "lr": 0.5},
    )
    train(train_config(steps=5, **kw), progress=False)
    t = Trainer(
        train_config(steps=10, **{**kw, "lr": 0.25}, schedule="plateau", time_budget=5.0), resume=True, progress=False
    )
    assert type(t.opt) is torch.optim.SGD and len(t.opt.param_groups) == 1
    assert t.commands[-1]["changed"] == {
        "lr": [0.5, 0.25],
        "schedule": ["cosine", "plateau"],
        "steps": [5, 10],
        "time_budget": [0.0, 5.0],
    }
    t.run()
    state = load_train_state(tmp_path / "sgd")
    assert state["step"] == 10 and state["opt"]["param_groups"][0]["lr"] == pytest.approx(0.25)
    t = Trainer(
        train_config(steps=12, **{**kw, "optimizer": "adamw", "weight_decay": 0.2}), resume=True, progress=False
    )
    assert type(t.opt) is torch.optim.AdamW and [g["weight_decay"] for g in t.opt.param_groups] == [0.2, 0.0]
    assert t.commands[-1]["changed"]["optimizer"] == ["sgd", "adamw"]


def test_resume_changes_compare_options_newer_than_the_save_with_their_defaults():
    from genmodels.learn.config import _changed

    old_save = flatten(train_config(domain="text").to_dict())
    for k in ("optimizer", "schedule", "plateau_factor", "precision", "time_budget"):
        old_save.pop(k)
    changed = _changed(old_save, train_config(domain="text", optimizer="sgd", precision="fp32"))
    assert changed == {"optimizer": ["adamw", "sgd"], "precision": ["auto", "fp32"]}


def test_evaluation_scores_every_token_of_the_stream():
    """The first token of each row (and the tail) went unscored while the units counted them."""
    from genmodels.domains import TEXT
    from genmodels.learn.steps import evaluate
    from genmodels.nn.rnn import ModelConfig, RNNLanguageModel

    torch.manual_seed(0)
    model = RNNLanguageModel(ModelConfig(vocab_size=20, emb_dim=8, hidden=8, layers=1))
    stream = torch.randint(2, 20, (203,))
    stream[[0, 50, 120]] = 1  # document starts (<bos>): never a target
    r = evaluate(model, stream, 1000, TEXT, starts=1, rows=4, bptt=16)
    assert r["tokens"] == 202 - 2  # every token after the first, except the two <bos> targets


def test_per_document_reads_training_works_beside_held_out_ones(tiny_text_ckpt, small_text_dir):
    """The overfitting figures of docs/training-recipe.md: training works read as the held-out ones are."""
    from scripts.per_document import per_document

    rows = per_document(str(tiny_text_ckpt), str(small_text_dir), train_works=1)
    assert [r[0] for r in rows] == ["train", "train", "valid", "valid", "valid", "test", "test", "test"]
    assert rows[1][1] == "(all)" and rows[0][2] == rows[1][2] == 60_000 and all(r[3] > 0 for r in rows)


def test_cli_fine_tune_takes_the_parents_network_shape(tiny_text_ckpt, small_text_dir, tmp_path, capsys):
    """``train --init-from`` without shape flags stopped because the defaults (an LSTM 256/512) were
    not the parent's; the shape flags are needed only to change it, and then the message names them."""
    from genmodels.cli.main import main

    base = ["train", "--domain", "text", "--data", str(small_text_dir), "--init-from", str(tiny_text_ckpt)]
    base += ["--steps", "2", "--eval-every", "2", "--batch", "8", "--bptt", "32", "--threads", "1"]
    assert main([*base, "--out", str(tmp_path / "ft"), "--precision", "fp32"]) == 0
    parent = json.loads((tiny_text_ckpt / "config.json").read_text())["model"]
    own = json.loads((tmp_path / "ft/config.json").read_text())["model"]
    assert {k: own[k] for k in ("cell", "emb_dim", "hidden", "layers")} == {
        k: parent[k] for k in ("cell", "emb_dim", "hidden", "layers")
    }
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "bad"), "--hidden", "48"]) == 2
    err = capsys.readouterr().err
    assert "--hidden 48" in err and f"its {parent['hidden']}" in err and "--dropout" in err


def test_patience_stops_early_and_progress_and_parent_figure_are_written(tiny_text_ckpt, small_text_dir, tmp_path):
    """a small corpus needs early stopping on its own validation split, a watcher needs the run's
    progress without the progress bar, and a fine-tune's card says where it started."""
    out = tmp_path / "ft"
    kw = dict(domain="text", data=str(small_text_dir), cell="lstm", vocab_size=300, init_from=str(tiny_text_ckpt))
    cfg = train_config(out=str(out), steps=100, eval_every=5, patience=1, **{**TINY, "lr": 0.0, "warmup": 0}, **kw)
    r = train(cfg, progress=False)
    assert r["step"] == 10  # the second validation brought no new best: stop
    progress = json.loads((out / "progress.json").read_text())
    assert progress["step"] == 10 and progress["final"] and len(progress["history"]) == 2
    card = json.loads((out / "card.json").read_text())
    assert card["parent_valid"] == pytest.approx(card["valid"], abs=1e-3)  # lr 0: the parent's own figure
    assert "before fine-tuning (tiny-text)" in (out / "card.md").read_text()


def test_docs_give_the_default_learning_rate_and_the_lower_one_for_fine_tuning():
    """The README and the training recipe said the shipped models were fine-tuned "with the defaults" while
    their commands pass --lr 1e-3; the default (``train --help``) is 2e-3."""
    import re
    from pathlib import Path

    from genmodels.learn.config import TrainConfig

    root = Path(__file__).resolve().parents[1]
    default = f"{TrainConfig().lr:.0e}".replace("e-0", "e-")
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert f"default `--lr` is {default}" in readme
    assert re.search(r"--init-from[^\n]*\n?[^\n]*--lr 1e-3", readme)
    recipe = (root / "docs/training-recipe.md").read_text(encoding="utf-8")
    for line in recipe.splitlines():
        if "--init-from" in line and "--lr 1e-3" in line and "default" in line:
            assert "half the default" in line, line
