"""The fast step path gives the same logits as the fused full-sequence forward, for both cells."""

import pytest
import torch

from genmodels.core.errors import SettingsError
from genmodels.nn.rnn import ModelConfig, RNNLanguageModel, expand_state


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("layers,tie", [(1, False), (2, True), (3, False)])
def test_step_matches_forward(cell, layers, tie):
    torch.manual_seed(0)
    m = RNNLanguageModel(
        ModelConfig(vocab_size=97, cell=cell, emb_dim=40, hidden=40, layers=layers, tie_weights=tie)
    ).eval()
    seq = torch.randint(0, 97, (5, 120))  # 5 candidates in one batch, many steps
    ref, ref_state = m(seq)
    state = m.init_state(5)
    for t in range(seq.size(1)):
        logits, state = m.step(seq[:, t], state)
        assert torch.allclose(logits, ref[:, t], atol=1e-5), (cell, t)
    for a, b in zip(
        state if isinstance(state, tuple) else [state],
        ref_state if isinstance(ref_state, tuple) else [ref_state],
        strict=False,
    ):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_prefill_then_step_with_candidates(cell):
    torch.manual_seed(1)
    m = RNNLanguageModel(ModelConfig(vocab_size=50, cell=cell, emb_dim=16, hidden=24, layers=2)).eval()
    seed = torch.randint(0, 50, (1, 30))
    cont = torch.randint(0, 50, (4, 20))
    full = torch.cat([seed.expand(4, -1), cont], 1)
    ref, _ = m(full)
    logits, state = m.prefill(seed)
    state = expand_state(state, 4)
    assert torch.allclose(logits[0], ref[0, 29], atol=1e-5)
    for t in range(20):
        logits, state = m.step(cont[:, t], state)
        assert torch.allclose(logits, ref[:, 30 + t], atol=1e-5)


def test_bad_configs_are_typed_errors():
    with pytest.raises(SettingsError):
        ModelConfig(vocab_size=10, cell="transformer")
    with pytest.raises(SettingsError):
        ModelConfig(vocab_size=10, emb_dim=8, hidden=16, tie_weights=True)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_cache_follows_weight_changes(cell):
    """The fast-step cache survived load_state_dict (step then differed from forward by 0.21)."""
    torch.manual_seed(2)
    cfg = ModelConfig(vocab_size=30, cell=cell, emb_dim=16, hidden=16, layers=2)
    m, other = RNNLanguageModel(cfg).eval(), RNNLanguageModel(cfg).eval()
    seq = torch.randint(0, 30, (3, 6))

    def agrees() -> bool:
        ref, _ = m(seq)
        state = m.init_state(3)
        for t in range(seq.size(1)):
            logits, state = m.step(seq[:, t], state)
            if not torch.allclose(logits, ref[:, t], atol=1e-5):
                return False
        return True

    assert agrees()
    m.load_state_dict(other.state_dict())
    assert agrees()
    with torch.no_grad():  # an in-place update, as an optimiser step makes
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    assert agrees()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_and_embedding_dropout_act_only_while_training(cell):
    """--weight-dropout drops recurrent connections (one mask per update) and --embed-dropout whole tokens,
    while training only: the weights never change, gradients reach them, and the evaluated (and stepped)
    model is the same function as one trained without them."""
    torch.manual_seed(3)
    base = ModelConfig(vocab_size=40, cell=cell, emb_dim=24, hidden=24, layers=2, dropout=0.0, tie_weights=True)
    plain = RNNLanguageModel(base)
    reg = RNNLanguageModel(ModelConfig(**{**base.to_dict(), "weight_dropout": 0.5, "embed_dropout": 0.3}))
    reg.load_state_dict(plain.state_dict())
    before = {k: v.clone() for k, v in reg.state_dict().items()}
    seq = torch.randint(0, 40, (3, 25))

    plain.train(), reg.train()
    a, b = reg(seq)[0], reg(seq)[0]
    assert not torch.allclose(a, plain(seq)[0]) and not torch.allclose(a, b)  # a new mask per call
    a.sum().backward()
    assert reg.rnn.weight_hh_l0.grad.abs().sum() > 0 and reg.embed.weight.grad.abs().sum() > 0
    assert all(torch.equal(v, reg.state_dict()[k]) for k, v in before.items())

    plain.eval(), reg.eval()
    ref = plain(seq)[0]
    assert torch.equal(reg(seq)[0], ref)
    state = reg.init_state(3)
    for t in range(seq.size(1)):
        logits, state = reg.step(seq[:, t], state)
        assert torch.allclose(logits, ref[:, t], atol=1e-5)


def test_weight_dropout_rates_are_checked():
    for name in ("dropout", "weight_dropout", "embed_dropout"):
        for bad in (-0.1, 1.0, float("nan")):
            with pytest.raises(SettingsError, match=f"--{name.replace('_', '-')} "):
                ModelConfig(vocab_size=10, **{name: bad})
