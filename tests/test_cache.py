"""The tune's memory of itself (genmodels.nn.cache): which earlier tokens a history offers to copy, how the
copies mix with the network, the weights fitted by likelihood, and a shipped melody model scoring and
writing with them."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genmodels.core.errors import CheckpointError
from genmodels.eval.form_report import DANCE_COLLECTIONS, continuations, form_bars, repeated_bars
from genmodels.infer.sampling import Sampler
from genmodels.learn.cache_fit import Targets, fit_weights, score_tunes, weight_tensor
from genmodels.learn.melody_data import tune_style
from genmodels.music.tunebook import SHIPPED, TuneBook
from genmodels.nn.cache import (
    BAR_DISTANCES,
    PREFIX_BUCKETS,
    SUFFIX_BUCKETS,
    CacheWeights,
    Copy,
    History,
    mix,
    target_log_probs,
)

ROOT = Path(__file__).resolve().parents[1]
BAR = 3


def uniform_weights(w: float) -> CacheWeights:
    return CacheWeights((w,) * len(SUFFIX_BUCKETS), tuple((w,) * len(PREFIX_BUCKETS) for _ in BAR_DISTANCES))


def test_a_bar_that_begins_like_the_one_before_is_offered_its_next_token():
    # header 1 2, then bar [10 11 12 13], bar [10 11 ...
    h = History(BAR, [1, 2, BAR, 10, 11, 12, 13, BAR, 10, 11])
    copies = h.copies()
    bar_back = [c for c in copies if c.kind == 1 + BAR_DISTANCES.index(1)]
    assert bar_back and bar_back[0].votes == {12: 1.0}
    suffix = [c for c in copies if c.kind == 0]
    assert suffix and suffix[0].votes == {12: 1.0}  # "BAR 10 11" was followed by 12


def test_a_bar_that_departs_from_the_earlier_bar_is_offered_nothing_from_it():
    h = History(BAR, [1, 2, BAR, 10, 11, 12, 13, BAR, 10, 14])
    assert not [c for c in h.copies() if c.kind > 0]


def test_the_history_grown_token_by_token_equals_the_history_read_at_once():
    ids = [1, 2, BAR, 10, 11, 12, BAR, 10, 11, 12, BAR, 10]
    h = History(BAR)
    for t in ids:
        h.add(t)
    assert h.copies() == History(BAR, ids).copies()


def test_mixing_keeps_a_distribution_and_raises_the_copied_token():
    p = torch.softmax(torch.randn(2, 6), -1)
    copies = [[Copy(0, len(SUFFIX_BUCKETS) - 1, {4: 1.0})], []]
    out = mix(p, copies, uniform_weights(3.0))
    assert torch.allclose(out.sum(-1), torch.ones(2, dtype=out.dtype))
    assert out[0, 4] > p[0, 4] and torch.equal(out[1], p[1])  # no copy: the network's own


def test_weights_survive_the_config_and_malformed_ones_are_a_checkpoint_error():
    w = uniform_weights(0.5)
    assert CacheWeights.from_config(json.loads(json.dumps(w.to_config()))) == w
    assert CacheWeights.from_config(None) is None
    bad = w.to_config() | {"suffix": [1.0]}
    with pytest.raises(CheckpointError):
        CacheWeights.from_config(bad)
    with pytest.raises(CheckpointError):
        CacheWeights.from_config(w.to_config() | {"bars": [[float("nan")] * len(PREFIX_BUCKETS)] * 4})


@pytest.fixture(scope="module")
def shipped():
    path = ROOT / "checkpoints/melody-lstm"
    if not path.exists():
        pytest.skip("no shipped melody-lstm")
    return Sampler(path)


@pytest.fixture(scope="module")
def book_tests():
    """The held-out tunes of the tune book that ships (the Melody page's): (id, melody)."""
    book = TuneBook(SHIPPED)
    return [(e.id, book.melody(e.id)) for e in book.search("") if e.split == "test"]


@pytest.fixture(scope="module")
def test_tunes(shipped, book_tests):
    tunes = [shipped.tok.encode(m, style=tune_style(shipped.tok, name)) for name, m in book_tests[:60]]
    return tunes, sum(shipped.tok.count_notes(t) for t in tunes)


def test_the_shipped_model_has_fitted_weights_that_predict_held_out_tunes_better(shipped, test_tunes):
    assert shipped.cache is not None, "checkpoints/melody-lstm has no cache weights: python -m genmodels fit-cache"
    tunes, notes = test_tunes
    r = score_tunes(shipped.model, shipped.tok, tunes, notes, shipped.cache)
    assert r["with_cache"] < r["network"] - 0.1


def test_fitting_gives_weight_to_copies_that_are_right_and_none_to_copies_that_are_wrong(shipped, test_tunes):
    tunes, notes = test_tunes
    targets = Targets(shipped.model, shipped.tok, tunes[:20])
    fitted = fit_weights(targets, steps=200)
    longest = fitted.suffix[-1]
    assert longest > 0.5  # a long match in a tune is usually followed by what followed it before
    # the same targets with every copy voting for a wrong token: the fit gives them (almost) nothing
    targets.share.zero_()
    wrong = fit_weights(targets, steps=200)
    assert max(wrong.suffix) < 0.01 and max(max(r) for r in wrong.bars) < 0.01


def test_sampling_with_the_copies_writes_more_repeated_bars_than_the_network_alone(shipped, book_tests):
    dances = [m for name, m in book_tests if name.startswith(DANCE_COLLECTIONS) and len(form_bars(m)) >= 16][:24]

    def share(sampler) -> float:
        counts = [repeated_bars(form_bars(m)) for m in continuations(sampler, dances, seed=0, style="tunebook")]
        return sum(a for a, _ in counts) / sum(b for _, b in counts)

    alone = Sampler(shipped.ckpt, cache=False)
    assert share(shipped) > share(alone)


def test_fit_cache_command_writes_the_weights_into_a_copy_of_a_checkpoint(tiny_melody, small_melody_dir, tmp_path):
    ck = tmp_path / "ck"
    shutil.copytree(tiny_melody.ckpt.path, ck)
    run = subprocess.run(
        [sys.executable, "-m", "genmodels", "fit-cache", str(ck), "--data", str(small_melody_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["with_cache"] <= report["network"] + 1e-6 and math.isfinite(report["network"])
    assert Sampler(ck).cache is not None


def test_scoring_a_tune_in_the_sampler_agrees_with_the_evaluation(shipped, test_tunes):
    tunes, _ = test_tunes
    ids = tunes[0]
    with torch.inference_mode():
        logits, _ = shipped.model(torch.tensor([ids]))
    logp = torch.log_softmax(logits[0].float(), -1)
    by_sampler = float(target_log_probs(logp, ids, 1, shipped.tok.bar_id, shipped.cache).sum())
    by_evaluation = -float(Targets(shipped.model, shipped.tok, [ids]).nats(weight_tensor(shipped.cache)))
    assert by_sampler == pytest.approx(by_evaluation, rel=1e-5)
    assert shipped.log_likelihood([ids], [1])[0] == pytest.approx(by_sampler, rel=1e-5)
