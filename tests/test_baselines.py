import math
import random
from collections import Counter, defaultdict

import pytest

from genmodels.core.errors import DataError, SettingsError
from genmodels.eval.ngram import (
    CharKneserNey,
    KneserNey,
    baseline_report,
    melody_nats_per_note,
    split_tunes,
    text_baseline,
)
from tests.kn_probe import distribution, logprob, prob

CORPUS = ["the cat sat on the mat. ", "a cat and a hat; the bat sat.", "that mat is flat"]


def reference_kn(seqs, order, vocab_size, discounts):
    """Dict-based interpolated Kneser-Ney written straight from the formula, for checking."""
    counts = [Counter() for _ in range(order + 1)]
    for s in seqs:
        for i in range(len(s) - order + 1):
            counts[order][tuple(s[i : i + order])] += 1
    for n in range(1, order):
        left = defaultdict(set)
        for s in seqs:
            for i in range(len(s) - n + 1):
                left[tuple(s[i : i + n])].add(s[i - 1] if i > 0 else "<start>")
        counts[n] = Counter({g: len(v) for g, v in left.items()})

    def p(hist, w, n):
        if n == 0:
            return 1.0 / vocab_size
        h = tuple(hist[len(hist) - (n - 1) :]) if n > 1 else ()
        lower = p(hist, w, n - 1)
        rows = [(g, c) for g, c in counts[n].items() if g[:-1] == h]
        tot = sum(c for _, c in rows)
        if tot == 0:
            return lower
        d = discounts[n]
        return max(counts[n][h + (w,)] - d, 0) / tot + d * len(rows) / tot * lower

    def logprob(s):
        return sum(math.log(p(s[max(0, i - order + 1) : i], s[i], min(order, i + 1))) for i in range(len(s)))

    return logprob


def test_distribution_sums_to_one_for_every_context():
    m = CharKneserNey(order=4).fit(CORPUS)
    for ctx in ["", "t", "th", "the", "the ", "zzz", "q", "at.", "cat "]:
        d = distribution(m, ctx)
        assert abs(sum(d.values()) - 1.0) < 1e-9
        assert all(v > 0 for v in d.values())
    m.extend_vocab(["xyz!"])
    assert abs(sum(distribution(m, "ca").values()) - 1.0) < 1e-9
    rng = random.Random(1)
    mk = CharKneserNey(order=3, modified=True).fit(["".join(rng.choice("abcdef ") for _ in range(300))])
    assert len(set(mk.discounts3[3][1:])) == 3  # three distinct discounts in use
    for ctx in ["", "a", "ab", "f ", "zz"]:
        assert abs(sum(distribution(mk, ctx).values()) - 1.0) < 1e-9


def test_matches_reference_implementation():
    rng = random.Random(3)
    seqs = ["".join(rng.choice("abcde ") for _ in range(rng.randint(5, 60))) for _ in range(12)]
    tests = ["".join(rng.choice("abcdef ") for _ in range(30)) for _ in range(4)]
    for order in (1, 2, 3, 5):
        m = CharKneserNey(order=order).fit(seqs)
        m.extend_vocab(tests)
        ref = reference_kn(seqs, order, m.vocab_size, m.discounts)
        for t in tests:
            assert logprob(m, t) == pytest.approx(ref(t), rel=1e-10, abs=1e-10)


def test_order_one_is_smoothed_unigram():
    text = "aaaabbbccd"
    m = CharKneserNey(order=1, discount=0.5).fit([text])
    c = Counter(text)
    V = m.vocab_size
    assert V == 5  # a b c d + one unseen slot
    for ch in "abcd":
        expected = (c[ch] - 0.5) / len(text) + 0.5 * len(c) / len(text) / V
        assert prob(m, "", ch) == pytest.approx(expected, abs=1e-12)
        assert prob(m, "abc", ch) == pytest.approx(expected, abs=1e-12)  # no context at order 1
    assert prob(m, "", "z") == pytest.approx(0.5 * 4 / 10 / 5)
    # the estimated discount is n1 / (n1 + 2 n2) over the unigram counts (n1 = 1: d, n2 = 1: c)
    assert CharKneserNey(order=1).fit([text]).discounts[1] == pytest.approx(1 / 3)


def test_repetitive_text_is_cheap_and_scoring_is_deterministic():
    text = "abcabcabcabc" * 20
    m = CharKneserNey(order=3).fit([text])
    assert m.bits_per_char([text]) < 0.2
    assert m.bits_per_char(["cba" * 20]) > 2.0
    m2 = CharKneserNey(order=3).fit([text])
    assert m.bits_per_char([text]) == m2.bits_per_char([text])
    assert logprob(m, "abcab") == logprob(m, "abcab")
    # the context restarts at each text: scoring a list equals the sum of its parts
    parts = ["abcab", "cabca"]
    total = logprob(m, parts[0]) + logprob(m, parts[1])
    assert -total / 10 / math.log(2) == pytest.approx(m.bits_per_char(parts))


def test_generic_symbols_and_hashed_codes():
    seqs = [[1, 5, 7, 1, 5, 7, 2], [5, 7, 1, 5]]
    m = KneserNey(order=3, vocab_size=20).fit(seqs)
    assert abs(sum(distribution(m, [1, 5]).values()) - 1) < 1e-9
    assert prob(m, [1, 5], 7) > 0.5
    assert prob(m, [1, 5], 19) == pytest.approx(prob(m, [1, 5], 18))  # both unseen
    # many distinct symbols at a high order do not fit 64 bits: hashed codes give the same numbers
    rng = random.Random(0)
    big = [[rng.randrange(400) for _ in range(200)] for _ in range(5)]
    hm = KneserNey(order=9, vocab_size=500).fit(big)
    assert not hm._exact
    ref = reference_kn(big, 9, 500, hm.discounts)
    assert logprob(hm, big[0][:40]) == pytest.approx(ref(big[0][:40]), rel=1e-10)


def test_melody_style_scoring_skips_bos():
    bos = 1
    stream = [bos, 10, 11, 12, 2, bos, 10, 12, 11, 2]
    tunes = split_tunes(stream, bos)
    assert tunes == [[1, 10, 11, 12, 2], [1, 10, 12, 11, 2]]
    m = KneserNey(order=2, vocab_size=16).fit(tunes)
    nats = melody_nats_per_note(m, tunes, notes=6)
    expected = -sum(logprob(m, t) - math.log(prob(m, [], bos)) for t in tunes) / 6
    assert nats == pytest.approx(expected)


def test_bad_input_raises_typed_errors(tmp_path):
    with pytest.raises(SettingsError):
        KneserNey(order=0)
    with pytest.raises(SettingsError):
        KneserNey(order=3, discount=1.5)
    with pytest.raises(DataError):
        CharKneserNey().fit(["", ""])
    with pytest.raises(SettingsError):
        logprob(CharKneserNey(), "abc")
    with pytest.raises(DataError):
        text_baseline(tmp_path / "missing")
    with pytest.raises(SettingsError):
        baseline_report(str(tmp_path))


def test_melody_baseline_on_tiny_midi_folder(tmp_path):
    from genmodels.eval.ngram import melody_baseline
    from genmodels.music import Melody, Note, write_midi

    folder = tmp_path / "mel"
    rng = random.Random(0)
    for split, k in (("train", 6), ("valid", 2), ("test", 2)):
        (folder / split).mkdir(parents=True)
        for i in range(k):
            ps = [60 + rng.choice([0, 2, 4, 5, 7]) for _ in range(16)]
            write_midi(Melody([Note(p, 12 * j, 12) for j, p in enumerate(ps)]), folder / split / f"{i}.mid")
    r = melody_baseline(folder, orders=[2, 3], verbose=False, cache_dir=tmp_path / "cache")
    assert r["order"] in (2, 3) and set(r["valid_nats_per_note"]) == {2, 3}
    assert r["valid_notes"] == 32 and r["test_notes"] == 32
    assert 0 < r["test_nats_per_note"] < 10


def test_text_baseline_on_tiny_folder(tmp_path):
    for split, texts in {
        "train": ["hello world " * 30, "hold the world"],
        "valid": ["hello there"],
        "test": ["world hello"],
    }.items():
        (tmp_path / split).mkdir()
        for i, t in enumerate(texts):
            (tmp_path / split / f"{i}.txt").write_text(t)
    r = text_baseline(tmp_path, order=3, verbose=False)
    assert r["order"] == 3 and r["train_chars"] == 360 + 14 and r["test_chars"] == 11
    assert 0 < r["test_bits_per_char"] < math.log2(r["vocab_size"])
    ck = tmp_path / "ckpt"
    ck.mkdir()
    (ck / "config.json").write_text('{"domain": "text"}')
    (ck / "card.json").write_text(f'{{"data": {{"data": "{tmp_path}"}}}}')
    assert baseline_report(str(ck), order=3)["test_bits_per_char"] == r["test_bits_per_char"]
