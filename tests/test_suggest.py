"""Next-word suggestions, ghost text and token healing: on hand-built pieces, a tiny model and the shipped ones."""

import math
import random

import pytest
import torch

from genmodels.core.errors import GenmodelsError, SeedError, SettingsError
from genmodels.infer.healing import (
    HealingConstraint,
    PieceTable,
    greedy_word,
    heal,
    is_word_char,
    mid_word_cuts,
    prepare_prompt,
    table_for,
    word_at,
)
from genmodels.infer.suggest import Suggester, Suggestion, WordBeam, _Masks, ghost_text, next_words
from genmodels.io.checkpoint import load_checkpoint
from genmodels.tokenizers.text import _escape

SHIPPED = ["checkpoints/text-lstm", "checkpoints/text-gru"]
HOSTILE = [
    "",
    "x" * 100_000,
    "Καλημέρα κόσμε, πώς",
    "日本語のテキスト",
    "emoji 😀👍🏽",
    "\u0301",
    "   \n\t  ",
    "\u2581\ue000 odd",
    "To be\n\n\n",
    "a" * 300,
]


@pytest.fixture(scope="module")
def tiny(tiny_text_ckpt):
    return load_checkpoint(tiny_text_ckpt)


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    return load_checkpoint(request.param)


# -- the beam on hand-built pieces ---------------------------------------------------------------------
class UniformStepper:
    """Every allowed piece equally likely at every step (pieces: '', ' a', 'b', ' ab', '.')."""

    def __init__(self):
        self.table = PieceTable([b"", b" a", b"b", b" ab", b"."])

    def logprobs(self, batch):
        lp = torch.full((batch, 5), math.log(0.25))
        lp[:, 0] = -math.inf
        return lp

    def step(self, tokens, state, rows):
        return self.logprobs(len(tokens)), None


def test_beam_merges_paths_that_spell_the_same_word():
    s = UniformStepper()
    wb = WordBeam(s, _Masks(s.table), b"", b"", beam=16)
    wb.run(s.logprobs(1), None, max_pieces=6, k=3)
    got = {x.word: x.prob for x in wb.suggestions(3)}
    # "ab": ' ab' then a boundary (3/4), or ' a' + 'b' then a boundary; "a": ' a' then a boundary
    assert got["ab"] == pytest.approx(0.25 * 0.75 + 0.25 * 0.25 * 0.75)
    assert got["a"] == pytest.approx(0.25 * 0.75)
    assert list(got)[0] == "ab"


def test_beam_completes_the_word_being_typed():
    s = UniformStepper()
    wb = WordBeam(s, _Masks(s.table), b"", b"a", beam=16)
    wb.run(s.logprobs(1), None, max_pieces=6, k=3)
    out = wb.suggestions(3)
    assert all(x.word.startswith("a") and x.insert == x.word[1:] for x in out)
    assert out[0].word == "a" and out[0].prob == pytest.approx(0.75)


# -- healing ----------------------------------------------------------------------------------------------
def test_piece_bytes_concatenate_to_the_escaped_text(tiny):
    tok, table = tiny.tokenizer, table_for(tiny.tokenizer)
    for text in ["To be, or not to b", "é\u0301 \u2581x\ue000y 😀", "  \n  two  spaces", "naïve café"]:
        assert b"".join(table.pieces[i] for i in tok.encode(text)) == _escape(text).encode("utf-8")


@pytest.mark.parametrize(
    "text",
    [
        "To be, or not to b",
        "To be, or not to ",
        "Hamlet.\n",
        "",
        "word",
        "x, y",
        "Καλημέρα κό",
        "é\u0301",
        "\u2581x",
        "😀",
        "   ",
    ],
)
def test_heal_backs_off_the_tail_and_the_constraint_spells_it_again(tiny, text):
    tok, table = tiny.tokenizer, table_for(tiny.tokenizer)
    h = heal(tok, text)
    assert tok.encode(text) == h.ids + tok.encode(text)[len(h.ids) :]
    assert b"".join(table.pieces[i] for i in tok.encode(text)[len(h.ids) :]) == h.removed
    assert h.removed_text == text[len(text) - len(h.removed_text) :]
    ids, c = prepare_prompt(tok, text, batch=2)
    assert ids == h.ids
    rng, out = torch.Generator().manual_seed(0), [b"", b""]
    while c.active:  # random allowed pieces always spell the removed text
        logits = c.apply(torch.randn(2, tok.vocab_size, generator=rng).masked_fill(table.banned, -math.inf))
        tokens = logits.argmax(-1)
        c.advance(tokens)
        out = [o + table.pieces[t] for o, t in zip(out, tokens.tolist(), strict=False)]
    assert all(o.startswith(h.removed) for o in out)


def test_heal_of_a_word_ending_prompt():
    tok = load_checkpoint(SHIPPED[0]).tokenizer
    h = heal(tok, "To be, or not to b")
    assert h.removed_text == " b"
    assert heal(tok, "To be,").removed == b""


def test_constraint_rejects_a_piece_that_does_not_continue():
    table = PieceTable([b"", b" b", b"be", b"x"])
    c = HealingConstraint(table, b" be", 1)
    masked = c.apply(torch.zeros(1, 4))
    assert torch.isinf(masked[0, 3]) and masked[0, 1] == 0
    c.advance([1])
    assert c.remaining == [b"e"]
    with pytest.raises(SettingsError):
        c.advance([3])


def test_mid_word_cuts_are_inside_words_and_fixed():
    texts = ["The quick brown fox jumps over the lazy dog. " * 20]
    cuts = mid_word_cuts(texts, 50, seed=1, min_context=10)
    assert cuts == mid_word_cuts(texts, 50, seed=1, min_context=10)
    for ti, pos in cuts:
        assert is_word_char(texts[ti][pos - 1]) and is_word_char(texts[ti][pos])
        assert len(word_at(texts[ti], pos)) >= 2


# -- suggestions from a tiny model --------------------------------------------------------------------------
def test_suggestions_are_whole_words_that_extend_the_typed_one(tiny):
    for prompt in ["To be, or not to b", "the ki", "KING.\n", "What, ", "And"]:
        out = next_words(tiny.model, tiny.tokenizer, prompt, k=3)
        assert 1 <= len(out) <= 3 and all(isinstance(x, Suggestion) for x in out)
        typed = prompt[len(prompt.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")) :]
        for x in out:
            assert x.word and all(is_word_char(ch) for ch in x.word) and x.word.startswith(typed)
            assert 0 < x.prob <= 1 and (prompt + x.insert).endswith(x.word)
        assert [x.prob for x in out] == sorted((x.prob for x in out), reverse=True)


def test_prefix_cache_gives_the_same_answers_as_a_fresh_start(tiny):
    text = "KING.\nWhat say you to this, my lord? I would not have it so, for all the world.\n" * 12
    warm = Suggester(tiny.model, tiny.tokenizer)
    for i in range(len(text) - 60, len(text) + 1, 7):  # typing on: the cache resumes from stored prefixes
        fresh = Suggester(tiny.model, tiny.tokenizer)
        a, b = warm.next_words(text[:i]), fresh.next_words(text[:i])
        assert [x.word for x in a] == [x.word for x in b]
        assert [x.prob for x in a] == pytest.approx([x.prob for x in b], rel=1e-4)
        assert warm.ghost_text(text[:i]) == fresh.ghost_text(text[:i])


def test_prefill_matches_the_model(tiny):
    s = Suggester(tiny.model, tiny.tokenizer)
    ids = [tiny.tokenizer.bos_id] + tiny.tokenizer.encode("To be, or not to be, that is the question. " * 4)
    s.prefill(ids[:40])
    lp, _ = s.prefill(ids)
    logits, _ = tiny.model.prefill(torch.tensor([ids]))
    ref = torch.log_softmax(logits.masked_fill(s.table.banned, -math.inf), -1)
    assert torch.allclose(lp, ref, atol=1e-4)


def test_ghost_text_is_the_rest_of_one_line(tiny):
    for prompt in ["To be, or not to b", "KING.\n", ""]:
        g = ghost_text(tiny.model, tiny.tokenizer, prompt, max_chars=30)
        assert isinstance(g, str) and "\n" not in g and len(g) <= 30


@pytest.mark.parametrize("prompt", HOSTILE)
def test_hostile_prompts_give_suggestions_or_a_typed_error(tiny, prompt):
    try:
        out = next_words(tiny.model, tiny.tokenizer, prompt)
        g = ghost_text(tiny.model, tiny.tokenizer, prompt)
    except GenmodelsError:
        return
    assert isinstance(g, str) and all(isinstance(x.word, str) and x.word for x in out)


@pytest.mark.parametrize("bad", [dict(k=0), dict(k=21), dict(beam=0), dict(max_pieces=0), dict(k="3"), dict(k=True)])
def test_bad_settings_are_refused(tiny, bad):
    with pytest.raises(SettingsError):
        next_words(tiny.model, tiny.tokenizer, "To be", **bad)


def test_a_prompt_that_is_not_text_is_refused(tiny):
    with pytest.raises(SeedError):
        next_words(tiny.model, tiny.tokenizer, None)
    with pytest.raises(SeedError):
        ghost_text(tiny.model, tiny.tokenizer, b"bytes")


def test_a_melody_tokenizer_is_refused(tiny):
    with pytest.raises(SettingsError):
        Suggester(tiny.model, object())


# -- the shipped models ---------------------------------------------------------------------------------------
def test_shipped_heal_continues_the_word(shipped):
    healed = greedy_word(shipped.model, shipped.tokenizer, "To be, or not to b", healing=True)
    assert healed.startswith("b") and len(healed) > 1  # the word goes on: no space, no broken piece
    if shipped.name == "text-lstm":  # the GRU's greedy pieces spell "b" + "roth"; its beam still says "be"
        assert healed == "be"
    assert next_words(shipped.model, shipped.tokenizer, "To be, or not to b", k=1)[0].word == "be"


def test_shipped_suggestions(shipped):
    words = [x.word for x in next_words(shipped.model, shipped.tokenizer, "To be, or not to ")]
    assert "be" in words
    done = next_words(shipped.model, shipped.tokenizer, "To be, or not to b")
    assert done[0].word == "be" and done[0].insert == "e"
    assert all(x.word.startswith("b") for x in done)


@pytest.mark.parametrize("prompt", HOSTILE[:6])
def test_shipped_hostile_prompts(shipped, prompt):
    out = next_words(shipped.model, shipped.tokenizer, prompt)
    assert isinstance(ghost_text(shipped.model, shipped.tokenizer, prompt), str)
    assert all(x.word and all(is_word_char(ch) for ch in x.word) for x in out)


def test_random_prompts_never_raise_an_untyped_error(tiny):
    rng = random.Random(3)
    alphabet = "ab c\n.,'é\u0301😀\u2581\ue000Ωж "
    for _ in range(40):
        prompt = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        out = next_words(tiny.model, tiny.tokenizer, prompt)
        assert all(x.word for x in out)
        assert isinstance(ghost_text(tiny.model, tiny.tokenizer, prompt), str)


def test_suggest_gives_words_and_a_ghost_that_starts_with_the_best_word(tiny):
    from genmodels.infer.suggest import suggest

    for prompt in ["To be, or not to b", "KING.\nWhat ", "x" * 3000]:
        words, ghost = suggest(tiny.model, tiny.tokenizer, prompt)
        assert "\n" not in ghost and len(ghost) <= 80
        here = next_words(tiny.model, tiny.tokenizer, prompt)
        if here and here[0].insert:
            assert ghost.startswith(words[0].insert)
            assert words == here
        elif here:  # the typed word is most likely complete: the words after it
            after = next_words(tiny.model, tiny.tokenizer, prompt + " ")
            assert [(w.word, " " + w.insert) for w in after] == [(w.word, w.insert) for w in words]


def test_constraint_reports_the_text_it_spells_again(tiny):
    ids, c = prepare_prompt(tiny.tokenizer, "To be, or not to b")
    assert c.removed_text == " b" and tiny.tokenizer.decode(ids) + c.removed_text == "To be, or not to b"


def test_cli_suggest_prints_three_words_and_the_ghost_text(tiny_text_ckpt, capsys):
    from genmodels.cli.main import main

    assert main(["generate", str(tiny_text_ckpt), "--suggest", "To be, or not to b"]) == 0
    out = capsys.readouterr().out
    assert "1." in out and "ghost text:" in out


def test_shipped_word_end_offers_next_words_not_the_same_word(shipped):
    """At the end of a complete word a keyboard offers the words after it (after a space), not the word
    itself or made-up extensions of it ("throughs")."""
    from genmodels.infer.suggest import suggest

    for prompt in ["But soft, what light through", "To be, or not to be"]:
        words, _ = suggest(shipped.model, shipped.tokenizer, prompt)
        typed = prompt.rsplit(" ", 1)[1]
        assert words and all(x.insert.startswith(" ") and x.insert.strip() == x.word for x in words)
        assert not any(x.word.startswith(typed) and len(x.word) > len(typed) for x in words)
    words, _ = suggest(shipped.model, shipped.tokenizer, "To be, or not to b")
    assert words[0].insert == "e"  # inside a word: completions of it


def test_keystrokes_and_generation_step_on_one_thread(tiny, tiny_melody):
    """Token-by-token steps run on one torch thread: with two, a training job on the other core made every
    step wait for a descheduled thread (suggestion p95 690 ms against 72 ms, scripts/train_responsiveness.py)."""
    from genmodels.infer.decoding import Settings
    from genmodels.music import parse_note_prompt

    seen = []

    def spy(model):
        step = model.step

        def counted(*a, **k):
            seen.append(torch.get_num_threads())
            return step(*a, **k)

        return counted

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    tiny.model.step = spy(tiny.model)
    tiny_melody.model.step = spy(tiny_melody.model)
    try:
        Suggester(tiny.model, tiny.tokenizer).suggest("To be, or not to be, that is the")
        tiny_melody.generate_melody(parse_note_prompt("C4 D4 E4 F4"), 2, Settings(seed=1))
        assert torch.get_num_threads() == 2  # the count before is restored
    finally:
        del tiny.model.step, tiny_melody.model.step
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}
