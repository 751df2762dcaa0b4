"""Keystroke savings: the counting protocol, the fixed sample, the n-gram predictor and a tiny model."""

import numpy as np
import pytest

from genmodels.eval.keystrokes import CharNgramStepper, model_predictor, savings, simulate, typing_sample
from genmodels.eval.ngram import CharKneserNey
from tests.kn_probe import distribution


def test_counting_with_a_perfect_and_a_useless_predictor():
    text = "to be, or I'll go\n"
    words = {"to", "be", "or", "I'll", "go"}

    def oracle(prompt):  # suggests the word being typed (read from the text itself)
        i = len(prompt)
        j = i
        while j < len(text) and (text[j].isalnum() or text[j] == "'"):
            j += 1
        k = i
        while k > 0 and (text[k - 1].isalnum() or text[k - 1] == "'"):
            k -= 1
        assert text[k:j] in words
        return ["zzz", text[k:j]]

    r = simulate(oracle, text)
    # one key per word (each has two or more characters), one per space, comma and newline
    assert r == {"chars": len(text), "keystrokes": 5 + 6, "accepted": 5, "queries": 5}
    assert simulate(oracle, "a b\n")["queries"] == 0  # one-letter words: nothing to save
    assert simulate(lambda p: [], text)["keystrokes"] == len(text)
    assert savings(lambda p: [], [text, text])["savings_rate"] == 0


def test_the_sample_is_fixed_and_long_enough():
    a, b = typing_sample(), typing_sample()
    assert a == b and sum(map(len, a)) >= 20_000 and len(a) == 3


def test_char_ngram_stepper_matches_the_model_and_suggests_words():
    kn = CharKneserNey(order=4).fit(["to be or not to be, that is the question. " * 30, "to bear the whips"])
    s = CharNgramStepper(kn)
    for ctx in ["to b", "", "zz", "é"]:
        d = distribution(kn, ctx[-3:])
        assert np.allclose(s._next_probs(ctx), [d[c] for c in kn.symbols])
    out = s.next_words("or not to b")
    assert out[0].word == "be" and all(x.word.startswith("b") for x in out)


def test_model_predictor_runs_on_a_tiny_model(tiny_text_ckpt):
    predict = model_predictor(tiny_text_ckpt)
    r = simulate(predict, "KING.\nWhat say you, my lord?\n")
    assert r["keystrokes"] <= r["chars"] and r["queries"] >= 5
    assert all(isinstance(w, str) for w in predict("To be, or not to "))


@pytest.mark.parametrize("prompt", ["", "   ", "😀", "\u0301", "x" * 5000])
def test_ngram_predictor_on_odd_prompts(prompt):
    kn = CharKneserNey(order=3).fit(["to be or not to be"])
    out = CharNgramStepper(kn).next_words(prompt)
    assert all(x.word for x in out)
