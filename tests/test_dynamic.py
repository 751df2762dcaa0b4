"""Dynamic evaluation: adapting to the text being read, on a tiny model and a repeated passage."""

import pytest
import torch

from genmodels.core.errors import SettingsError
from genmodels.domains import get_domain
from genmodels.infer import dynamic
from genmodels.infer.dynamic import DynamicSettings, adapted_copy, documents, dynamic_evaluate
from genmodels.nn.rnn import ModelConfig, RNNLanguageModel

BOS = 1


@pytest.fixture
def model():
    torch.manual_seed(0)
    return RNNLanguageModel(ModelConfig(vocab_size=40, cell="gru", emb_dim=16, hidden=32, layers=1, dropout=0.0))


def repeated(times=6, length=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    passage = torch.randint(2, 40, (length,), generator=g)
    return torch.cat([torch.tensor([BOS]), passage.repeat(times)])


def weights(m):
    return [p.detach().clone() for p in m.parameters()]


def test_adapting_makes_a_repeated_passage_likely_and_restores_the_weights(model):
    stream, text = repeated(times=20), get_domain("text")
    before = weights(model)
    static = dynamic_evaluate(model, stream, stream.numel(), text, BOS, DynamicSettings(0, 0, 16))
    adapted = dynamic_evaluate(model, stream, stream.numel(), text, BOS, DynamicSettings(4.0, 0.01, 16))
    assert adapted["tokens"] == static["tokens"] == stream.numel() - 1
    assert adapted["value"] < static["value"] - 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, weights(model), strict=True))


def test_each_document_starts_again_from_the_trained_weights():
    stream = torch.tensor([BOS, 5, 6, 7, BOS, 8, 9, BOS, 3])
    assert [d.tolist() for d in documents(stream, BOS)] == [[BOS, 5, 6, 7], [BOS, 8, 9], [BOS, 3]]


def test_adapted_copies_are_private_and_ready_to_step(model):
    before = weights(model)
    a = adapted_copy(model, repeated(seed=2).tolist(), BOS, DynamicSettings(0.5, 0.01, 16))
    b = adapted_copy(model, repeated(seed=3).tolist(), BOS, DynamicSettings(0.5, 0.01, 16))
    assert all(torch.equal(x, y) for x, y in zip(before, weights(model), strict=True)), "shipped weights unchanged"
    assert not torch.equal(a.embed.weight, b.embed.weight), "one session's adaptation never reaches another"
    x = torch.tensor([[BOS, 4, 5]])
    logits, _ = a(x)
    state = a.init_state(1)
    for t in x[0]:
        step_logits, state = a.step(t[None], state)
    assert torch.allclose(step_logits, logits[0, -1][None], atol=1e-4), "the step path uses the adapted weights"


def test_adaptation_work_is_bounded(model, monkeypatch):
    calls = []
    real = dynamic._segment
    monkeypatch.setattr(dynamic, "_segment", lambda *a: calls.append(1) or real(*a))
    adapted_copy(model, list(range(2, 40)) * 500, BOS, DynamicSettings(segment=32))
    assert len(calls) == -(-(dynamic.MAX_ADAPT_TOKENS - 1) // 32)
    assert adapted_copy(model, [], BOS) is not model


def test_bad_settings_are_refused():
    with pytest.raises(SettingsError):
        DynamicSettings(lr=-1).checked()
    with pytest.raises(SettingsError):
        DynamicSettings(segment=0).checked()


def test_a_sampler_adapted_to_a_prompt_leaves_the_shipped_one_alone():
    from genmodels.infer.decoding import Settings
    from genmodels.infer.sampling import Sampler
    from genmodels.io.checkpoint import find_checkpoints

    paths = [p for p in find_checkpoints() if p.name == "text-gru"]
    if not paths:
        pytest.skip("no shipped text-gru")
    g = Sampler(paths[0])
    before = weights(g.model)
    prompt = "HORATIO. Marcellus and Barnardo saw it. " * 20
    twin = g.adapted_to(prompt)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(g.model), strict=True))
    assert twin.model is not g.model and not torch.equal(twin.model.embed.weight, g.model.embed.weight)
    p_before = dict(g.next_token_probs("Marcellus and Barnardo saw it. HORATIO. Marcellus and", k=50))
    p_after = dict(twin.next_token_probs("Marcellus and Barnardo saw it. HORATIO. Marcellus and", k=50))
    assert p_after.get(" B", 0) > 2 * p_before.get(" B", 0), "a name it has read becomes more likely"
    assert twin.complete("HORATIO.", 20, Settings(seed=1))[0].continuation
