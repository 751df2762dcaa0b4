"""Every shipped checkpoint loads, has a complete card, and generates (no retraining here)."""

import pytest

from genmodels.domains import HARMONY, TEXT
from genmodels.infer.decoding import Settings
from genmodels.infer.sampling import Sampler
from genmodels.io.checkpoint import find_checkpoints, load_checkpoint

SHIPPED = find_checkpoints()
NAMES = {p.name for p in SHIPPED}


def test_the_four_default_models_ship():
    assert {"text-lstm", "text-gru", "melody-lstm", "melody-gru", "harmony-lstm", "harmony-gru"} <= NAMES
    total = sum(f.stat().st_size for p in SHIPPED for f in p.iterdir())
    assert total < 60e6, f"shipped checkpoints take {total / 1e6:.1f} MB"
    assert not any((p / "train_state.pt").exists() for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_card_is_complete(path):
    c = load_checkpoint(path)
    card = c.card
    for key in (
        "data",
        "tokenizer",
        "parameters",
        "hyperparameters",
        "command",
        "wall_time_s",
        "hardware",
        "metric",
        "valid",
        "test",
        "baseline",
        "samples",
    ):
        assert key in card, f"{path.name}/card.json lacks {key!r}"
    assert card["parameters"] == c.model.n_params
    assert card["command"].startswith(("python -m genmodels train", "python -m genmodels mix"))
    if card["command"].startswith("python -m genmodels mix"):  # a mixture: each member's provenance
        assert len(card["members"]) >= 2 and all(m["trained_with"] and m["weights"] for m in card["members"])
    assert card["test"]["metric"] == c.domain.metric
    assert (path / "card.md").exists()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_generates(path):
    g = Sampler(path)
    if g.domain is TEXT:
        r = g.complete("ROMEO:\n", 40, Settings(temperature=0.8, seed=1))[0]
        assert len(r.continuation) > 20
    elif g.domain is HARMONY:
        from genmodels.harmony.grid import HOLD, REST, Chorale
        from genmodels.infer.harmonise import HarmonySettings, harmonise

        melody = tuple(x for p in (64, 67, 69, 71, 69, 67, 64, 64) for x in (p, HOLD, HOLD, HOLD))
        soprano = Chorale((melody, *[(REST,) * len(melody)] * 3), tonic=4, mode="minor")
        r = harmonise(g.ckpt, soprano, HarmonySettings(seed=1))
        assert r.chorale.voices[0] == melody and all(r.chorale.notes(v) for v in (1, 2, 3))
    else:
        from genmodels.music import parse_note_prompt

        prompt = parse_note_prompt("E4 G4 A4/2 B4/2 A4 G4", meter=(4, 4), key=(4, "minor"))
        r = g.generate_melody(prompt, bars=8, settings=Settings(temperature=1.0, seed=1))[0]
        assert r.full.notes[:6] == prompt.notes and r.full.n_bars >= prompt.n_bars + 8 - 1
        assert r.continuation.notes


@pytest.mark.parametrize("model", ["checkpoints/text-gru", "checkpoints/text-lstm"])
def test_text_ends_at_a_word_end(model):
    """At the length limit a continuation finishes the word it is in (it used to stop mid-word): the same
    seed run longer goes on with a space or a mark right where the shorter one ends."""
    from genmodels.infer.text_rows import is_word_char

    g = Sampler(model)
    prompt = "To be, or not to be, that is the"
    longer = [r.continuation for r in g.complete(prompt, 60, Settings(seed=3, n=4))]
    for length in (5, 9, 14, 23):
        for short, long in zip(g.complete(prompt, length, Settings(seed=3, n=4)), longer, strict=True):
            text = short.continuation
            assert text and long.startswith(text)
            at_word_end = not is_word_char(text[-1]) or len(long) == len(text) or not is_word_char(long[len(text)])
            assert at_word_end, (length, text, long)


def test_why_this_word_completes_an_unfinished_word_and_follows_a_finished_one():
    from genmodels.infer.suggest import word_distribution

    g = Sampler("checkpoints/text-gru")
    after = [w for w, _ in word_distribution(g.model, g.tok, "To be, or not to be")]
    assert "be" not in after and all(len(w) > 1 or w in {"a", "I", "O"} for w in after)
    inside = word_distribution(g.model, g.tok, "To be, or not to b")
    assert inside[0][0] == "be" and all(w.startswith("b") for w, _ in inside)
    assert abs(sum(p for _, p in inside) - 1.0) < 1e-6  # given the letters typed
