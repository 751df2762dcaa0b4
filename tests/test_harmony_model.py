"""The harmoniser: tokens, shapes and masks, training on whole chorales (valid NLL falls, exact resume,
the time budget), the checkpoint round trip, harmonise and regenerate_voice, bad settings. Tiny models
on hand-made chorales: seconds, no prepared data."""

from __future__ import annotations

import pytest
import torch
from harmony_fixtures import toy_chorale, toy_corpus

from genmodels.core.errors import NotationError, SettingsError
from genmodels.domains import HARMONY, get_domain
from genmodels.harmony.grid import HOLD, RANGES, REST, VOICES, Chorale
from genmodels.infer.harmonise import HarmonySettings, harmonise, regenerate_voice, voice_masks
from genmodels.io.checkpoint import load_checkpoint, load_train_state, pack_for_shipping
from genmodels.learn.config import TrainConfig
from genmodels.learn.harmony_trainer import (
    HarmonyTrainer,
    collate,
    encode_item,
    epoch_batches,
    harmony_data,
    harmony_nll,
)
from genmodels.learn.trainer import train
from genmodels.nn.harmoniser import HarmonyModel
from genmodels.nn.rnn import ModelConfig
from genmodels.tokenizers.harmony import (
    BOS,
    HOLD_ID,
    PAD,
    REST_ID,
    HarmonyTokenizer,
    held_pitches,
    lower_onsets,
    lower_tokens,
    rows_from_tokens,
    soprano_features,
)

TOK = HarmonyTokenizer()
TINY = ModelConfig(vocab_size=TOK.vocab_size, emb_dim=16, hidden=24, layers=1, dropout=0.0)


def config(tmp_path, out="ck", **kw) -> TrainConfig:
    values = dict(
        domain="harmony",
        data=str(toy_corpus(tmp_path / "corpus")),
        out=str(tmp_path / out),
        batch=4,
        steps=30,
        eval_every=10,
        warmup=0,
        lr=1e-2,
        threads=1,
        precision="fp32",
    )
    values.update({k: v for k, v in kw.items() if k not in ModelConfig.__dataclass_fields__})
    mkw = {k: v for k, v in kw.items() if k in ModelConfig.__dataclass_fields__}
    return TrainConfig(model=ModelConfig(**{**TINY.to_dict(), **mkw}), **values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LSTM harmoniser trained for a few seconds on toy chorales."""
    tmp = tmp_path_factory.mktemp("harmony")
    result = train(config(tmp, steps=60, eval_every=20), progress=False)
    return load_checkpoint(tmp / "ck"), result


# tokens ---------------------------------------------------------------------------------------------
def test_tokens_round_trip_and_vocabulary():
    assert TOK.vocab_size == 4 + 81 - 36 + 1
    for x in (HOLD, REST, 36, 60, 81):
        assert TOK.decode(TOK.encode(x)) == x
    assert TOK.encode(30) == TOK.encode(42)  # folded into the span by octaves
    c = toy_chorale(1)
    tokens = lower_tokens(c, TOK)
    assert tokens.shape == (3 * c.steps,)
    assert rows_from_tokens(tokens.tolist(), TOK) == [c.voices[v] for v in (1, 2, 3)]
    assert lower_onsets(c) == sum(len(c.notes(v)) for v in (1, 2, 3))


def test_features_read_position_strength_fermata_and_key():
    c = Chorale(
        ((60, HOLD, 62, HOLD, 64, HOLD, HOLD, HOLD),) + ((REST,) * 8,) * 3,
        meter=(2, 8),
        tonic=7,
        mode="minor",
        fermatas=(4,),
    )
    f = soprano_features(c, TOK)
    assert f["position"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert f["strength"].tolist()[:4] == [0, 3, 1, 3]
    assert f["fermata"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert f["key"].tolist() == [7, 1]


def test_held_pitches_are_what_the_voices_hold_before_each_token():
    a, t, b, a2 = TOK.encode(64), TOK.encode(55), TOK.encode(48), TOK.encode(65)
    tokens = [a, t, b, HOLD_ID, REST_ID, HOLD_ID, a2, HOLD_ID, HOLD_ID]
    r = REST_ID
    assert held_pitches(tokens) == [
        [r, r, r],
        [a, r, r],
        [a, t, r],  # step 0: the voices written so far
        [a, t, b],
        [a, t, b],
        [a, r, b],  # step 1: the tenor rests
        [a, r, b],
        [a2, r, b],
        [a2, r, b],
    ]


def test_a_hold_after_a_rest_decodes_as_a_rest():
    p = TOK.encode(60)
    rows = rows_from_tokens([REST_ID, HOLD_ID, p, HOLD_ID, REST_ID, HOLD_ID], TOK)
    assert rows == [(REST, REST), (REST, REST), (60, HOLD)]


# model ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_shapes_and_padding(cell):
    torch.manual_seed(0)
    model = HarmonyModel(ModelConfig(**{**TINY.to_dict(), "cell": cell})).eval()
    items = [encode_item(toy_chorale(i, bars=2 + i), TOK) for i in range(3)]
    feats, prev, held, target, lengths = collate(items)
    T = int(lengths.max())
    assert prev.shape == target.shape == (3, 3 * T) and held.shape == (3, 3 * T, 3) and prev[0, 0] == BOS
    assert (target[0, 3 * items[0].steps :] == PAD).all()
    logits = model(feats, prev, held, lengths)
    assert logits.shape == (3, 3 * T, TOK.vocab_size)
    # a padded row scores as it does alone: the backward encoder starts at the row's own end
    alone = model(*collate(items[:1])[:3])
    n = 3 * items[0].steps
    assert torch.allclose(alone[0, :n], logits[0, :n], atol=1e-5)


def test_weight_dropout_trains_the_decoder_and_embedding_dropout_is_refused():
    torch.manual_seed(0)
    model = HarmonyModel(ModelConfig(**{**TINY.to_dict(), "weight_dropout": 0.5}))
    feats, prev, held, _, lengths = collate([encode_item(toy_chorale(0, bars=2), TOK)])
    model.train()
    assert not torch.allclose(model(feats, prev, held, lengths), model(feats, prev, held, lengths))
    model.eval()
    assert torch.equal(model(feats, prev, held, lengths), model(feats, prev, held, lengths))
    with pytest.raises(SettingsError, match="embedding dropout"):
        HarmonyModel(ModelConfig(**{**TINY.to_dict(), "embed_dropout": 0.1}))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_agrees_with_forward(cell):
    torch.manual_seed(0)
    model = HarmonyModel(ModelConfig(**{**TINY.to_dict(), "cell": cell, "layers": 2})).eval()
    c = toy_chorale(2)
    feats, prev, held, target, lengths = collate([encode_item(c, TOK)])
    full = model(feats, prev, held)
    enc, state = model.encode(feats), None
    for i in range(9):
        logits, state = model.step(prev[:, i], i % 3, held[:, i], enc[:, i // 3], feats["key"][:, 0], state)
        assert torch.allclose(logits, full[:, i], atol=1e-5)


def test_masks_keep_each_voice_in_range():
    allowed = voice_masks(TOK, TOK.vocab_size)
    for k, name in enumerate(VOICES[1:]):
        lo, hi = RANGES[name]
        pitches = [TOK.decode(i) for i in range(4, TOK.vocab_size) if allowed[k, i]]
        assert min(pitches) == lo and max(pitches) == hi
        assert allowed[k, HOLD_ID] and allowed[k, REST_ID] and not allowed[k, PAD] and not allowed[k, BOS]


# training -------------------------------------------------------------------------------------------
def test_a_tiny_model_learns_and_its_valid_nll_falls(trained):
    ck, result = trained
    history = result["history"]
    assert history[-1]["valid"] < history[0]["valid"]
    assert ck.domain is HARMONY and isinstance(ck.model, HarmonyModel)
    assert ck.card["metric"] == "nats_per_note" and ck.card["valid"] == pytest.approx(result["best_valid"], abs=1e-3)


def test_nll_is_nats_of_every_lower_token_per_lower_onset(trained):
    ck, _ = trained
    items = [encode_item(toy_chorale(50 + i), TOK) for i in range(2)]
    r = harmony_nll(ck.model, items, HARMONY)
    assert r["tokens"] == sum(3 * i.steps for i in items)
    assert r["units"] == sum(i.onsets for i in items)
    assert r["value"] == pytest.approx(r["nats"] / r["units"])


def test_epoch_batches_are_a_function_of_seed_and_epoch(tmp_path):
    d = harmony_data(HARMONY, toy_corpus(tmp_path / "c", train=20))
    a = epoch_batches(d.train, 4, 0, 3)
    assert a == epoch_batches(d.train, 4, 0, 3) and a != epoch_batches(d.train, 4, 0, 4)
    assert sorted(i for b in a for i in b) == list(range(20))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_interrupted_run_resumes_exactly(cell, tmp_path):
    kw = dict(cell=cell, steps=16, eval_every=6, save_every=3, dropout=0.3, layers=2)
    train(config(tmp_path, "a", **kw), progress=False)
    with pytest.raises(KeyboardInterrupt):
        HarmonyTrainer(config(tmp_path, "b", **kw), progress=False).run(stop_after=7)
    assert load_train_state(tmp_path / "b")["step"] == 7
    train(config(tmp_path, "b", **kw), resume=True, progress=False)
    a, b = load_train_state(tmp_path / "a")["model"], load_train_state(tmp_path / "b")["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_time_budget_ends_the_run(tmp_path):
    r = train(config(tmp_path, steps=0, time_budget=0.002, eval_every=1000), progress=False)
    state = load_train_state(tmp_path / "ck")
    assert r["step"] >= 1 and state["cpu"] >= 0.002 * 60
    assert r["history"] and r["history"][-1]["step"] == r["step"]  # the last step was validated


def test_train_without_a_corpus_says_what_to_run(tmp_path):
    from genmodels.core.errors import DataError

    with pytest.raises(DataError, match="prepare harmony"):
        train(
            TrainConfig(domain="harmony", data=str(tmp_path / "none"), out=str(tmp_path / "ck"), steps=1),
            progress=False,
        )


# checkpoint -----------------------------------------------------------------------------------------
def test_checkpoint_round_trip_and_pack(trained, tmp_path):
    import shutil

    ck, _ = trained
    copy = tmp_path / "packed"
    shutil.copytree(ck.path, copy)
    pack_for_shipping(copy)
    again = load_checkpoint(copy)
    assert isinstance(again.model, HarmonyModel) and again.tokenizer == TOK
    assert not (copy / "train_state.pt").exists()
    for k, v in ck.model.state_dict().items():
        assert torch.allclose(v, again.model.state_dict()[k], atol=1e-2), k


# sampling -------------------------------------------------------------------------------------------
def _soprano_only(c: Chorale) -> Chorale:
    rest = (REST,) * c.steps
    return Chorale((c.voices[0], rest, rest, rest), meter=c.meter, tonic=c.tonic, mode=c.mode, fermatas=c.fermatas)


def test_harmonise_writes_three_voices_in_range_under_the_unchanged_soprano(trained):
    ck, _ = trained
    soprano = _soprano_only(toy_chorale(7, bars=3))
    r = harmonise(ck, soprano, HarmonySettings(temperature=1.0, seed=3, candidates=4))
    assert len(r.candidates) == 4 and r.chorale is r.candidates[0] and r.nll == r.nlls[0]
    for c in r.candidates:
        assert len(c.voices) == 4 and all(len(v) == soprano.steps for v in c.voices)
        assert c.voices[0] == soprano.voices[0]
        for v in (1, 2, 3):
            lo, hi = RANGES[VOICES[v]]
            assert all(lo <= n.pitch <= hi for n in c.notes(v))
            assert c.voices[v][0] != HOLD


def test_candidates_do_not_depend_on_how_many_are_asked_for(trained):
    ck, _ = trained
    soprano = _soprano_only(toy_chorale(8))
    two = harmonise(ck, soprano, HarmonySettings(temperature=1.0, seed=5, candidates=2)).candidates
    five = harmonise(ck, soprano, HarmonySettings(temperature=1.0, seed=5, candidates=5)).candidates
    assert all(any(c.voices == d.voices for d in five) for c in two)


def test_greedy_is_one_deterministic_candidate(trained):
    ck, _ = trained
    soprano = _soprano_only(toy_chorale(9))
    a = harmonise(ck, soprano, HarmonySettings(temperature=0, seed=1))
    b = harmonise(ck, soprano, HarmonySettings(temperature=0, seed=2))
    assert len(a.candidates) == 1 and a.chorale.voices == b.chorale.voices


def test_regenerate_voice_changes_only_that_voice(trained):
    ck, _ = trained
    start = harmonise(ck, _soprano_only(toy_chorale(10, bars=3)), HarmonySettings(seed=1)).chorale
    for voice in (1, 2, 3):
        r = regenerate_voice(ck, start, voice, HarmonySettings(temperature=1.5, seed=2, candidates=3))
        for c in r.candidates:
            assert all(c.voices[v] == start.voices[v] for v in range(4) if v != voice)
    with pytest.raises(SettingsError, match="soprano"):
        regenerate_voice(ck, start, 0, HarmonySettings())


@pytest.mark.parametrize(
    "kw",
    [
        dict(temperature=-1),
        dict(temperature=float("nan")),
        dict(top_k=-2),
        dict(candidates=0),
        dict(candidates=99),
        dict(seed=-1),
        dict(candidates=True),
    ],
)
def test_bad_settings_are_refused(kw):
    with pytest.raises(SettingsError):
        HarmonySettings(**kw)


def test_bad_input_is_a_typed_error(trained):
    ck, _ = trained
    silent = Chorale(((REST,) * 8,) * 4)
    with pytest.raises(NotationError, match="no notes"):
        harmonise(ck, silent, HarmonySettings())
    text_like = type("C", (), {"model": object(), "name": "text-lstm"})()
    with pytest.raises(SettingsError, match="not a harmony model"):
        harmonise(text_like, _soprano_only(toy_chorale(1)), HarmonySettings())


def test_stream_methods_refuse_clearly():
    with pytest.raises(SettingsError, match="chorales"):
        get_domain("harmony").stream_from("x.txt", TOK)


def test_the_model_reads_adapts_simplified_soprano_and_keeps_the_melody(trained):
    from dataclasses import replace

    from genmodels.infer.harmonise import model_view

    ck, _ = trained
    melody = _soprano_only(toy_chorale(11))
    row = list(melody.voices[0])
    simplified = [row[0]] + [HOLD if x >= 0 else x for x in row[1:8]] + row[8:]  # two notes merged into one
    adapted = replace(melody, meta={"simplified": simplified})
    assert model_view(adapted).voices[0] == tuple(simplified) and model_view(melody) is melody
    r = harmonise(ck, adapted, HarmonySettings(seed=1, candidates=2))
    assert r.chorale.voices[0] == melody.voices[0]


def test_the_guard_masks_parallels_crossing_and_wide_spacing_only():
    import math

    from genmodels.infer.voice_guard import VoiceLeadingGuard

    soprano = Chorale(((72, 74),) + ((REST, REST),) * 3)
    # a fifth, an octave below the soprano, then the same interval again, moving up with it
    for alto0, parallels in ((65, {67}), (60, {62, 74})):
        guard = VoiceLeadingGuard(soprano, TOK, 1, TOK.vocab_size)
        guard.start_step(0)
        guard.written(1, torch.tensor([TOK.encode(alto0)]))
        for v in (2, 3):
            guard.written(v, torch.tensor([REST_ID]))
        guard.end_step()
        guard.start_step(1)
        z = guard.mask(1, torch.zeros(1, TOK.vocab_size))
        masked = {TOK.decode(i) for i in range(TOK.vocab_size) if z[0, i] == -math.inf}
        assert {p for p in masked if 62 <= p <= 74} == parallels  # within an octave under the soprano
        assert set(range(75, 82)) <= masked and set(range(36, 62)) <= masked  # crossing, spacing
        assert REST not in masked
        assert (HOLD in masked) == (alto0 == 60)  # holding 60 under 74 would be over an octave apart


def test_guarded_harmonies_keep_the_rules(trained):
    from genmodels.harmony.voice_leading import parallel_fifths, parallel_octaves, voice_crossings, wide_spacing

    ck, _ = trained
    for seed in range(3):
        soprano = _soprano_only(toy_chorale(20 + seed, bars=4))
        for c in harmonise(ck, soprano, HarmonySettings(temperature=2.0, seed=seed)).candidates:
            assert not parallel_fifths(c) and not parallel_octaves(c)
            assert not voice_crossings(c) and not wide_spacing(c)


def test_a_regenerated_voice_keeps_the_rules_with_the_voices_kept(trained):
    from genmodels.harmony.voice_leading import parallel_fifths, parallel_octaves, voice_crossings

    ck, _ = trained
    soprano = _soprano_only(toy_chorale(30, bars=4))
    free = HarmonySettings(temperature=2.0, seed=4, candidates=1, voice_leading=False)
    start = harmonise(ck, soprano, free).chorale
    for c in regenerate_voice(ck, start, 2, HarmonySettings(temperature=2.0, seed=5)).candidates:
        faults = parallel_fifths(c) + parallel_octaves(c) + voice_crossings(c)
        assert not [f for f in faults if 2 in f.voices and c.voices[2][f.step] >= 0]  # none the new tenor starts


@pytest.fixture
def tiny_harmony_for_threads(trained):
    from genmodels.harmony.adapt import soprano_from_melody
    from genmodels.infer.harmonise import CARD_NOTES
    from genmodels.music.notation import parse_note_prompt

    return trained[0], soprano_from_melody(parse_note_prompt(CARD_NOTES, meter=(4, 4), key=(4, "minor"))).chorale


def test_harmonise_steps_on_one_thread_and_gives_the_threads_back(tiny_harmony_for_threads):
    """Stepping a small batch over several threads makes them wait on each other at every step (on two
    busy cores 32 bars took 155 s instead of 13 s): the step loop runs on one thread, and the process's
    thread count is as before afterwards, also after harmonisations in several threads at once."""
    import threading

    import torch

    from genmodels.infer.harmonise import HarmonySettings, harmonise

    ck, soprano = tiny_harmony_for_threads
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = []
    step = ck.model.step

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return step(*args, **kwargs)

    try:
        ck.model.step = spy
        harmonise(ck, soprano, HarmonySettings(candidates=2, seed=1))
        assert seen and set(seen) == {1}
        runs = [threading.Thread(target=harmonise, args=(ck, soprano, HarmonySettings(seed=i))) for i in range(4)]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        assert torch.get_num_threads() == 2
    finally:
        del ck.model.step
        torch.set_num_threads(before)


def test_harmonise_tells_its_progress(tiny_harmony_for_threads):
    """The page shows a progress bar while a long tune is harmonised: the share done, rising, about 50 times."""
    from genmodels.infer.harmonise import HarmonySettings, harmonise, regenerate_voice

    ck, soprano = tiny_harmony_for_threads
    shares = []
    result = harmonise(ck, soprano, HarmonySettings(candidates=2, seed=1), progress=shares.append)
    assert shares[0] == 0 and shares == sorted(shares) and all(0 <= x < 1 for x in shares) and len(shares) >= 20
    again = []
    regenerate_voice(ck, result.chorale, 1, HarmonySettings(seed=2), progress=again.append)
    assert again and again == sorted(again)
