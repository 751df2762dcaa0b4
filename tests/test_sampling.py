"""Sampling: reproducible per-request seeds, batched candidates, streaming, settings at their edges."""

import threading

import pytest

from genmodels.core.errors import SeedError, SettingsError
from genmodels.infer.decoding import MAX_TEXT_TOKENS, Settings
from genmodels.infer.sampling import Sampler


@pytest.fixture(scope="module")
def gen(tiny_text_ckpt):
    return Sampler(tiny_text_ckpt)


def test_same_seed_same_output_and_different_seed_differs(gen):
    s = Settings(temperature=1.0, seed=7, n=3)
    a = [r.continuation for r in gen.complete("To be, or not", 40, s)]
    b = [r.continuation for r in gen.complete("To be, or not", 40, s)]
    c = [r.continuation for r in gen.complete("To be, or not", 40, Settings(temperature=1.0, seed=8, n=3))]
    assert a == b and a != c and len(set(a)) > 1


def test_greedy_and_top_k_1_agree(gen):
    g0 = gen.complete("KING.\n", 30, Settings(temperature=0))[0]
    k1 = gen.complete("KING.\n", 30, Settings(temperature=1.0, top_k=1, seed=3))[0]
    assert g0.continuation == k1.continuation
    assert all(0 <= p <= 1 for _, p in g0.tokens) and "".join(t for t, _ in g0.tokens) == g0.continuation


def test_stream_adds_up_to_the_completion(gen):
    s = Settings(temperature=0.9, seed=11)
    streamed = "".join(d[0] for d in gen.stream_text("What", 50, s))
    assert streamed == gen.complete("What", 50, s)[0].continuation


def test_next_token_probs(gen):
    top = gen.next_token_probs("the king", 5)
    probs = [p for _, p in top]
    assert len(top) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6


@pytest.mark.parametrize(
    "bad",
    [
        dict(temperature=float("nan")),
        dict(temperature=-1),
        dict(temperature=100),
        dict(top_k=-1),
        dict(top_p=0),
        dict(top_p=1.5),
        dict(top_p=float("nan")),
        dict(n=0),
        dict(n=17),
        dict(seed=-1),
    ],
)
def test_bad_settings_are_refused(gen, bad):
    with pytest.raises(SettingsError):
        gen.complete("x", 5, Settings(**bad))


@pytest.mark.parametrize(
    "ok",
    [
        dict(temperature=0),
        dict(temperature=1e-6),
        dict(temperature=5.0),
        dict(top_k=0),
        dict(top_k=1),
        dict(top_k=10**6),
        dict(top_p=1e-9),
        dict(top_p=1),
    ],
)
def test_edge_settings_work(gen, ok):
    assert isinstance(gen.complete("x", 5, Settings(**ok))[0].continuation, str)


def test_lengths_at_their_edges(gen):
    assert gen.complete("abc", 0)[0].continuation == ""
    assert len(gen.complete("abc", MAX_TEXT_TOKENS, Settings(temperature=0))[0].tokens) > 0
    with pytest.raises(SettingsError):
        gen.complete("abc", MAX_TEXT_TOKENS + 1)


def test_long_seed_is_cut_to_the_context_window(gen):
    long = "word " * 20_000  # 100,000 characters: the longest seed accepted
    assert gen.prompt_was_cut(long) and not gen.prompt_was_cut("short")
    assert gen.complete(long, 5)[0].continuation is not None
    with pytest.raises(SeedError):
        gen.complete("x" * 100_001, 5)


def test_threads_share_a_model_without_changing_results(gen):
    seeds = list(range(16))
    alone = {s: gen.complete("Enter", 30, Settings(temperature=1.0, seed=s))[0].continuation for s in seeds}
    got = {}

    def work(s):
        got[s] = gen.complete("Enter", 30, Settings(temperature=1.0, seed=s))[0].continuation

    threads = [threading.Thread(target=work, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == alone


def test_choose_samples_the_filtered_distribution():
    import torch

    from genmodels.infer.decoding import choose

    probs = torch.tensor([0.5, 0.25, 0.15, 0.1, 0.0])
    logits = probs.clamp_min(1e-12).log().expand(20_000, -1).contiguous()
    gen = torch.Generator().manual_seed(0)
    tokens, p = choose(logits, Settings(temperature=1.0), gen)
    freq = torch.bincount(tokens, minlength=5).float() / tokens.numel()
    assert torch.allclose(freq, probs, atol=0.015) and freq[4] == 0
    assert torch.allclose(p, probs[tokens], atol=1e-6)
    top_p, _ = choose(logits, Settings(temperature=1.0, top_p=0.7), gen)  # keeps 0.5 + 0.25
    assert set(top_p.tolist()) == {0, 1} and abs((top_p == 0).float().mean() - 2 / 3) < 0.02
    top_k, _ = choose(logits, Settings(temperature=1.0, top_k=3), gen)
    assert set(top_k.tolist()) == {0, 1, 2}


def test_top_k_keeps_exactly_k_tokens_even_when_tied():
    """Top-k kept every token tied at the boundary (top_k=1 on equal logits sampled all of them)."""
    import torch

    from genmodels.infer.decoding import choose

    gen = torch.Generator().manual_seed(0)
    tied = torch.zeros(2000, 3)
    assert set(choose(tied, Settings(temperature=1.0, top_k=1), gen)[0].tolist()) == {0}
    logits = torch.tensor([0.0, 1.0, 1.0, 1.0, -1.0]).expand(2000, -1).contiguous()
    assert set(choose(logits, Settings(temperature=1.0, top_k=2), gen)[0].tolist()) == {1, 2}  # ties: by index


def test_candidate_i_depends_only_on_seed_and_i(gen):
    """With the same seed, the first candidate changed with the number of candidates."""
    alone = [r.continuation for r in gen.complete("To be", 30, Settings(temperature=1.0, seed=7, n=1))]
    three = [r.continuation for r in gen.complete("To be", 30, Settings(temperature=1.0, seed=7, n=3))]
    five = [r.continuation for r in gen.complete("To be", 30, Settings(temperature=1.0, seed=7, n=5))]
    assert three[0] == alone[0] and five[:3] == three
    assert len(set(five)) > 1


def test_continuation_starts_with_the_rest_of_a_held_note():
    """A prompt note held across the bar line was merged into the prompt and dropped from the
    continuation alone, which then started with silence."""
    from genmodels.infer.melody_rows import continuation_of
    from genmodels.music import Melody, Note, parse_note_prompt
    from genmodels.tokenizers.melody import MelodyTokenizer

    prompt = parse_note_prompt("C4 D4 E4 F4")  # one full 4/4 bar
    tok = MelodyTokenizer()
    ids = tok.encode(prompt, add_eos=False)
    ids += [tok.bar_id, tok.hold_id, tok.dur_id(24), tok.pitch_id(67), tok.dur_id(24), tok.eos_id]
    full = tok.decode(ids)
    assert full.notes[3] == Note(65, 36, 36)  # F4 held into the second bar
    cont = continuation_of(full, prompt.end)
    assert cont.notes == [Note(65, 0, 24), Note(67, 24, 24)]
    assert isinstance(cont, Melody) and cont.n_bars == 1
