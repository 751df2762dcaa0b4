"""Mixtures of trained models (``python -m genmodels mix``): the probabilities are the weighted mean of the
members', every use of a model works on one, and models that cannot mix are refused with a clear error."""

import math
import shutil

import pytest
import torch

from genmodels.cli.main import main
from genmodels.core.errors import SettingsError
from genmodels.domains import get_domain
from genmodels.eval.mixing import fit_shares
from genmodels.infer.decoding import Settings
from genmodels.infer.dynamic import DynamicSettings, adapted_copy
from genmodels.infer.sampling import Sampler
from genmodels.infer.suggest import suggest
from genmodels.io.checkpoint import init_checkpoint_dir, load_checkpoint, pack_for_shipping, save_weights
from genmodels.nn.mixture import MixtureConfig, MixtureLanguageModel
from genmodels.nn.rnn import ModelConfig, RNNLanguageModel
from genmodels.tokenizers.text import TextTokenizer
from tests.conftest import train_config


def mixture(cell, weights=(3.0, 1.0)):
    torch.manual_seed(0)
    cfgs = [
        ModelConfig(vocab_size=30, cell=cell, emb_dim=8, hidden=16, layers=2, dropout=0.0),
        ModelConfig(vocab_size=30, cell=cell, emb_dim=16, hidden=16, layers=1, dropout=0.0, tie_weights=True),
    ]
    return MixtureLanguageModel(MixtureConfig(cfgs, list(weights))).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_probabilities_are_the_weighted_mean_of_the_members(cell):
    m = mixture(cell)
    x = torch.randint(0, 30, (3, 7))
    logits, state = m(x)
    a, b = (torch.softmax(net(x)[0], -1) for net in m.members)
    assert torch.allclose(torch.softmax(logits, -1), 0.75 * a + 0.25 * b, atol=1e-6)
    # the step path (one token at a time, states stacked along the layer axis) agrees with forward
    s = m.init_state(3)
    for t in range(7):
        step_logits, s = m.step(x[:, t], s)
    assert torch.allclose(step_logits, logits[:, -1], atol=1e-5)
    for got, want in zip(s if cell == "lstm" else (s,), state if cell == "lstm" else (state,), strict=True):
        assert got.shape == (3, 3, 16) and torch.allclose(got, want, atol=1e-5)


def test_a_mixture_of_copies_is_the_model_itself_logits_and_all():
    """The logits keep a single model's scale, so steering that acts on logits (the repetition penalty
    divides positive ones) treats a mixture as it treats one network."""
    torch.manual_seed(0)
    net = RNNLanguageModel(ModelConfig(vocab_size=30, cell="gru", emb_dim=8, hidden=16, layers=2, dropout=0.0))
    m = MixtureLanguageModel(MixtureConfig([net.config, net.config], [0.3, 0.7])).eval()
    for member in m.members:
        member.load_state_dict(net.state_dict())
    x = torch.randint(0, 30, (2, 5))
    assert torch.allclose(m(x)[0], net.eval()(x)[0], atol=1e-5)
    s = m.init_state(2)
    assert torch.allclose(m.step(x[:, 0], s)[0], net.step(x[:, 0], net.init_state(2))[0], atol=1e-5)


def test_members_must_share_cell_width_and_vocabulary():
    base = dict(vocab_size=30, emb_dim=8, hidden=16, layers=1)
    with pytest.raises(SettingsError, match="cell"):
        MixtureConfig([ModelConfig(cell="gru", **base), ModelConfig(cell="lstm", **base)], [1, 1])
    with pytest.raises(SettingsError, match="units"):
        MixtureConfig([ModelConfig(**base), ModelConfig(**{**base, "hidden": 32})], [1, 1])
    with pytest.raises(SettingsError, match="positive"):
        MixtureConfig([ModelConfig(**base), ModelConfig(**base)], [1, -1])
    with pytest.raises(SettingsError, match="at least two"):
        MixtureConfig([ModelConfig(**base)], [1])


@pytest.fixture
def two_models(tiny_text_ckpt, tmp_path):
    """The tiny trained model and a second one: the same network with its weights moved."""
    other = tmp_path / "other"
    shutil.copytree(tiny_text_ckpt, other)
    c = load_checkpoint(other)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in c.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_weights(other, c.model)
    return str(tiny_text_ckpt), str(other)


def test_mix_writes_a_checkpoint_that_every_part_of_the_product_uses(two_models, tmp_path, capsys):
    out = tmp_path / "mix"
    assert main(["mix", *two_models, "--out", str(out), "--weights", "3,1"]) == 0
    c = load_checkpoint(out)
    a, b = (load_checkpoint(p).model for p in two_models)
    assert isinstance(c.model, MixtureLanguageModel) and c.model.n_params == a.n_params + b.n_params
    x = torch.tensor([[c.tokenizer.bos_id, *c.tokenizer.encode("To be, or not to be")]])
    want = 0.75 * torch.softmax(a(x)[0], -1) + 0.25 * torch.softmax(b(x)[0], -1)
    assert torch.allclose(torch.softmax(c.model(x)[0], -1), want, atol=1e-5)
    assert "A mixture of 2 LSTM text models" in (out / "card.md").read_text()
    assert c.card["valid"] > 0 and [m["share"] for m in c.card["members"]] == [0.75, 0.25]
    # sampling, suggestions, dynamic evaluation and packing work on it as on one network
    stream = Sampler(str(out)).stream_text("ROMEO.\n", 20, Settings(seed=3, n=4))
    deltas = list(stream)
    assert len(stream.results) == 4 and all(len(d) == 4 for d in deltas)
    words, _ghost = suggest(c.model, c.tokenizer, "To be, or not to ")
    assert words
    before = [p.clone() for p in c.model.parameters()]
    twin = adapted_copy(c.model, x[0].tolist() * 4, c.tokenizer.bos_id, DynamicSettings(0.5, 0.01, 8))
    assert all(torch.equal(p, q) for p, q in zip(before, c.model.parameters(), strict=True))
    assert not torch.equal(twin.members[0].embed.weight, c.model.members[0].embed.weight)
    pack_for_shipping(out)
    assert torch.allclose(load_checkpoint(out).model(x)[0], c.model(x)[0], atol=2e-2)


def test_models_that_cannot_mix_get_a_clear_error(two_models, small_text_dir, tmp_path, capsys):
    first, _ = two_models
    cases = [
        ([first], "at least two"),
        ([*two_models, "--weights", "1"], "one weight per model"),
        ([*two_models, "--weights", "1,x"], "--weights takes numbers"),
    ]
    # a model with a tokenizer of its own
    stranger = tmp_path / "stranger"
    tok = TextTokenizer.train([f.read_text() for f in sorted((small_text_dir / "valid").glob("*.txt"))], vocab_size=300)
    shape = load_checkpoint(first).model.config.to_dict()
    model = RNNLanguageModel(ModelConfig(**{**shape, "vocab_size": tok.vocab_size}))
    init_checkpoint_dir(stranger, get_domain("text"), model, tok)
    save_weights(stranger, model)
    cases.append(([first, str(stranger)], "different tokenizers"))
    for i, (args, message) in enumerate(cases):
        assert main(["mix", *args, "--out", str(tmp_path / f"out{i}")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert main(["mix", *two_models, "--out", first]) == 2
    assert "one of the models being mixed" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    assert main(["mix", *two_models, "--out", str(tmp_path / "a-file")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["mix", first, first + "/", "--out", str(tmp_path / "twice")]) == 2
    assert "listed twice" in capsys.readouterr().err
    assert main(["mix", *two_models, "--weights", "", "--out", str(tmp_path / "none")]) == 2
    assert "at least one number" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in ("twice", "none")), "nothing written for a refused mix"


def test_a_mixture_is_not_fine_tuned_as_a_whole(two_models, small_text_dir, tmp_path):
    from genmodels.learn.trainer import train

    out = tmp_path / "mix"
    assert main(["mix", *two_models, "--out", str(out)]) == 0
    with pytest.raises(SettingsError, match="fine-tune one of its members"):
        cfg = train_config(domain="text", data=str(small_text_dir), out=str(tmp_path / "ft"), init_from=str(out))
        train(cfg, progress=False)


def test_bench_measures_a_mixture_beside_its_members(two_models, tmp_path, capsys):
    from genmodels.eval.bench import main as bench

    root = tmp_path / "models"
    shutil.copytree(two_models[0], root / "one")
    assert main(["mix", *two_models, "--out", str(root / "pair")]) == 0
    rows = {r["model"]: r for r in bench(quick=True, root=str(root))}
    assert "| pair |" in capsys.readouterr().out
    one, pair = rows["one"], rows["pair"]  # (no assertion on time: only that each figure is there)
    assert pair["step_ms"] > 0 and pair["bound_ms"] > 0 and one["train_tok_s"] > 0
    assert pair["train_tok_s"] != pair["train_tok_s"], "no training figures: a mixture is not trained"


def test_fitted_shares_give_the_most_likely_mixture():
    g = torch.Generator().manual_seed(0)
    noise = 0.05 * torch.rand(500, generator=g)
    first_knows = torch.arange(500) < 200  # each member is right where the other is not
    lp = [torch.where(first_knows, 0.9, 0.05).add(noise).log(), torch.where(first_knows, 0.05, 0.9).add(noise).log()]

    def loglik(w):
        return float(torch.logsumexp(torch.stack([lp[0] + math.log(w), lp[1] + math.log(1 - w)]), 0).sum())

    (w, rest) = fit_shares(lp)
    assert abs(w + rest - 1) < 1e-3
    assert all(loglik(w) >= loglik(v / 100) - 1e-6 for v in range(1, 100)), "no share on a grid does better"
    assert fit_shares([lp[0], lp[0]]) == [0.5, 0.5]
    assert fit_shares([lp[0], lp[0] - 5])[1] > 0, "a member that adds nothing keeps a share above zero"


def test_mix_fits_the_shares_on_the_validation_split(two_models, tmp_path):
    from genmodels.eval.evaluate import _data_path
    from genmodels.learn.steps import evaluate

    out = tmp_path / "fitted"
    assert main(["mix", *two_models, "--out", str(out), "--fit-weights"]) == 0
    c = load_checkpoint(out)
    shares = [m["share"] for m in c.card["members"]]
    assert abs(sum(shares) - 1) < 1e-3 and "fitted to the validation split" in c.card["note"]
    d = c.domain.load_data(_data_path(c, None), tokenizer=c.tokenizer, augment=False)
    alone = [evaluate(m, d.valid, d.valid_units, c.domain, c.tokenizer.bos_id)["value"] for m in c.model.members]
    assert c.card["valid"] <= min(alone) + 1e-3, "the best mixture is at least as good as its best member"
    assert main(["mix", *two_models, "--out", str(tmp_path / "both"), "--fit-weights", "--weights", "1,1"]) == 2


def test_a_melody_mixture_keeps_the_members_pitch_range(small_melody_dir, tmp_path):
    from genmodels.learn.trainer import train
    from tests.conftest import TINY

    out = tmp_path / "melody"
    train(train_config(domain="melody", data=str(small_melody_dir), out=str(out), cell="gru", steps=20, **TINY))
    other = tmp_path / "melody-2"
    shutil.copytree(out, other)
    assert main(["mix", str(out), str(other), "--out", str(tmp_path / "mix")]) == 0
    single, mixed = Sampler(str(out)), Sampler(str(tmp_path / "mix"))
    assert mixed._banned.sum() == single._banned.sum() > 0, "pitches never seen in training stay banned"
