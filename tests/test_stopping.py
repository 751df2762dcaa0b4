"""Stop rules and repetition control on hand-built text and logits."""

import pytest
import torch

from genmodels.core.errors import SettingsError
from genmodels.infer.repetition import no_repeat_ngram, repetition_penalty
from genmodels.infer.stopping import StopRules, after_sentences, end_of_line, end_of_speech, stop_index


def test_end_of_line():
    assert end_of_line(" to be\nor not") == 6
    assert end_of_line("\nNext line.\nmore", prompt="Ham.\n") == 11  # an empty line does not count
    assert end_of_line("\nNext", prompt="To be, or not") == 0  # the prompt's line was unfinished
    assert end_of_line("no newline yet") is None


def test_end_of_speech():
    speech = "Who's there?\nNay, answer me.\n\nFran.\nStand."
    assert end_of_speech(speech) == speech.index("\n\n")
    assert end_of_speech("Who's there?\n  \t\nFran.") == 12
    assert end_of_speech("Who's there?\nFran.\nNay, answer me.") == 12  # a heading without a blank line
    assert end_of_speech("Who's there?\nFirst Clown.\nNay.") == 12
    assert end_of_speech("\n\nWho's there?") is None  # nothing said yet
    assert end_of_speech("And so to bed.\nNot yet") is None


def test_after_sentences():
    text = "Who's there? Nay, answer me. Stand, and unfold yourself! Long live"
    assert after_sentences(text, 1) == text.index("?") + 1
    assert after_sentences(text, 2) == text.index("me.") + 3
    assert after_sentences(text, 4) is None
    assert after_sentences("Ham.\nTo be. Or not", 1) == len("Ham.\nTo be.")  # the heading is no sentence
    assert after_sentences("He said 'stop.' Then", 1) == len("He said 'stop.'")
    assert after_sentences("The end.", 1) is None  # the stop waits for what follows


def test_stop_index_takes_the_earliest_rule_and_checks_settings():
    text = "To be, or not. To be\n\nHam."
    assert stop_index(text, StopRules(end_of_line=True, sentences=1)) == text.index(".") + 1
    assert stop_index(text, StopRules(end_of_speech=True)) == text.index("\n\n")
    assert stop_index(text, StopRules()) is None and not StopRules().active
    for bad in (-1, 101, 1.5, True):
        with pytest.raises(SettingsError):
            StopRules(sentences=bad).checked()


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0], [2.0, -1.0, 0.5, 3.0]])
    out = repetition_penalty(logits, [[0, 1], [3, 3]], 2.0)
    assert torch.equal(out, torch.tensor([[1.0, -2.0, 0.5, 3.0], [2.0, -1.0, 0.5, 1.5]]))
    assert torch.equal(repetition_penalty(logits, [[0], [1]], 1.0), logits)
    assert torch.equal(repetition_penalty(logits, torch.tensor([[0, 1], [3, 3]]), 2.0), out)
    for bad in (0, -1, float("nan"), 11):
        with pytest.raises(SettingsError):
            repetition_penalty(logits, [[0], [1]], bad)


def test_no_repeat_ngram_bans_the_token_that_would_repeat_an_ngram():
    logits = torch.zeros(2, 6)
    history = [[1, 2, 3, 1, 2], [4, 5, 4]]
    out = no_repeat_ngram(logits, history, 3)
    assert torch.isinf(out[0, 3]) and torch.isinf(out).sum() == 1  # "1 2" was followed by 3
    out2 = no_repeat_ngram(logits, history, 2)
    assert torch.isinf(out2[0, 3]) and torch.isinf(out2[1, 5])  # "2"→3 and "4"→5 were seen
    out1 = no_repeat_ngram(logits, history, 1)
    assert torch.isinf(out1[1, [4, 5]]).all() and not torch.isinf(out1[1, 0])
    assert torch.equal(no_repeat_ngram(logits, history, 0), logits)
    assert torch.equal(no_repeat_ngram(logits, [[1], []], 3), logits)  # histories too short
    with pytest.raises(SettingsError):
        no_repeat_ngram(logits, history, -1)
    with pytest.raises(SettingsError):
        no_repeat_ngram(logits, [[1]], 2)  # one history for two rows
