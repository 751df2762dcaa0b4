"""Style tokens: the kind of tune (fiddle tune, folk song, chorale) in place of <bos>, given and never predicted;
corpus tunes are trained with their collection's style and their repeat signs, or anonymous and played out; a
melody is generated in a chosen style or one drawn given the prompt."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch
from conftest import ROOT, TINY, train_config

from genmodels.core.errors import MidiError, SettingsError
from genmodels.infer.constraints import MelodySteering
from genmodels.infer.decoding import Settings
from genmodels.learn.melody_data import _transposed_stream
from genmodels.music import Melody, parse_note_prompt
from genmodels.music.types import Repeat
from genmodels.nn.losses import masked_loss
from genmodels.tokenizers.melody import STYLES, MelodyTokenizer

A, B = "C4 D4 E4 F4 | G4 A4 G4 E4 | F4 E4 D4 C4 | D4 E4 C4*2", "E4 F4 G4 A4 | G4 F4 E4 D4 | C4 E4 D4 B3 | C4*4"
TUNE = parse_note_prompt(f"{A} | {B}")  # two 4-bar parts
A_TWICE = dataclasses.replace(parse_note_prompt(f"{A} | {A} | {B}"), form=(Repeat(0, 4),))  # A played twice


def test_style_tokens_extend_the_vocabulary_and_start_a_tune():
    tok, old = MelodyTokenizer(), MelodyTokenizer(styles=False)
    assert tok.vocab[: old.vocab_size] == old.vocab  # every older token keeps its id: models fine-tune across
    plain = tok.encode(A_TWICE)
    for style in STYLES:
        ids = tok.encode(A_TWICE, style=style)
        assert ids[0] == tok.style_ids[style] and ids[1:] == plain[1:]
        assert tok.style_of(ids) == style and tok.decode(ids) == tok.decode(plain)
        tok.grammar_state(ids[:-1])  # a valid prefix
    assert tok.style_of(plain) is None
    assert MelodyTokenizer.from_config(old.to_config()).styles == ()
    with pytest.raises(MidiError, match="no style"):
        old.encode(TUNE, style="tunebook")


def test_style_tokens_are_never_targets():
    """The style is given, like the meter: scoring a tune does not charge the model for guessing it."""
    tok = MelodyTokenizer()
    ids = torch.tensor([tok.encode(A_TWICE, style="tunebook") + tok.encode(TUNE)])
    x, y = ids[:, :-1], ids[:, 1:]
    logits = torch.randn(1, x.size(1), tok.vocab_size)
    loss, n = masked_loss(logits, y, tok.start_ids)
    keep = ~torch.isin(y[0], torch.tensor(tok.start_ids))
    expected = torch.nn.functional.cross_entropy(logits[0][keep], y[0][keep], reduction="sum")
    assert n == int(keep.sum()) == y.numel() - 1  # only the second tune's <bos> is a start among the targets
    assert torch.allclose(loss, expected)
    ids[0, len(tok.encode(A_TWICE))] = tok.style_ids["folksong"]  # the second tune styled: still not a target
    loss2, n2 = masked_loss(logits, ids[:, 1:], tok.start_ids)
    assert n2 == n and torch.allclose(loss2, expected)


def test_training_writes_corpus_tunes_with_their_style_or_anonymous_and_played_out():
    """A fiddle tune starts with its style and keeps its repeat sign, or is anonymous (<bos>) and played out;
    a tune from elsewhere is never styled; over epochs every spelling appears, and no other."""
    tok = MelodyTokenizer()
    tunes = [("ryansMammoth-ryans-0001", A_TWICE), ("mytune", A_TWICE), ("essenFolksong-kinder-0002", TUNE)]
    kinds = set()
    for epoch in range(16):
        stream = _transposed_stream(tok, tunes, seed=0, epoch=epoch).tolist()
        starts = [i for i, t in enumerate(stream) if t in tok.start_ids] + [len(stream)]
        for a, b in zip(starts, starts[1:], strict=False):
            doc = stream[a:b]
            kinds.add((tok.style_of(doc), any(t in tok.id_sign for t in doc)))
    # (None, True) is "mytune" written with its sign; (None, False) any tune played out.
    assert kinds == {("tunebook", True), ("folksong", False), (None, True), (None, False)}


@pytest.fixture(scope="module")
def styled_melody(small_melody_dir, tmp_path_factory):
    """A tiny melody model trained on tunes named as two of the corpus's collections (so it has styles), and
    the same model fine-tuned on tunes of no collection, as a user's own."""
    from genmodels.infer.sampling import Sampler
    from genmodels.learn.trainer import train

    data = tmp_path_factory.mktemp("styled")
    for i, f in enumerate(sorted(small_melody_dir.glob("*.mid"))):
        shutil.copy(f, data / f"{['ryansMammoth', 'bach'][i % 2]}-tune-{i:04d}.mid")
    out = tmp_path_factory.mktemp("ck")
    settings = dict(domain="melody", cell="gru", steps=30, eval_every=30, **TINY)
    train(train_config(data=str(data), out=str(out / "styled"), **settings), progress=False)
    own = dict(settings, steps=10, init_from=str(out / "styled"))
    train(train_config(data=str(small_melody_dir), out=str(out / "own"), **own), progress=False)
    return Sampler(out / "styled"), Sampler(out / "own")


def test_tunes_of_no_collection_train_a_model_without_styles(tiny_melody):
    assert tiny_melody.tok.styles == () and tiny_melody.tok.implicit_start


def test_a_melody_in_a_chosen_style_or_one_drawn_given_the_prompt(styled_melody):
    g, own = styled_melody
    assert g.tok.styles == STYLES and g.ckpt.config["styles"] == ["chorale", "tunebook"]
    prompt = parse_note_prompt("E4 G4 A4/2 B4/2 A4 G4")
    r = g.generate_melody(prompt, 4, Settings(seed=3), MelodySteering(style="chorale"))[0]
    assert r.style == "chorale" and r.full.notes[: len(prompt.notes)] == prompt.notes
    drawn = [g.generate_melody(prompt, 2, Settings(seed=s))[0].style for s in range(6)]
    assert set(drawn) <= {"chorale", "tunebook"}  # only styles its data had
    assert drawn == [g.generate_melody(prompt, 2, Settings(seed=s))[0].style for s in range(6)]  # seeded
    with pytest.raises(SettingsError, match="no style 'jazz'"):
        g.generate_melody(prompt, 2, Settings(), MelodySteering(style="jazz"))
    # Fine-tuned on tunes of no collection: it writes as those were, unless a style is asked for.
    assert own.ckpt.config["styles"] == [] and own.generate_melody(prompt, 2, Settings())[0].style is None
    assert own.generate_melody(prompt, 2, Settings(), MelodySteering(style="tunebook"))[0].style == "tunebook"


def test_the_shipped_model_writes_repeats_as_a_fiddle_tune_and_none_as_a_folk_song(shipped_melody):
    """Continuing the first two bars of 12 held-out reels with no form chosen: as fiddle tunes several play a
    part again with repeat signs; as folk songs (Essen's never repeat) none does."""
    from genmodels.eval.form_report import first_full_bar
    from genmodels.music.tunebook import SHIPPED, TuneBook

    book = TuneBook(SHIPPED)
    reels = [e.id for e in book.search("reel") if e.split == "test"][:12]
    repeats = {"tunebook": 0, "folksong": 0}
    for seed, tune_id in enumerate(reels):
        m = book.melody(tune_id)
        p = m.slice_bars(0, first_full_bar(m) + 2)
        p = Melody(p.notes, p.meter, p.key)
        for style in repeats:
            r = shipped_melody.generate_melody(p, 14, Settings(seed=seed), MelodySteering(style=style))[0]
            repeats[style] += bool(r.full.form)
    assert repeats["folksong"] == 0 and repeats["tunebook"] >= 4, repeats


def test_cli_generate_in_a_style(shipped_melody, tmp_path, capsys):
    from genmodels.cli.main import main

    main(["generate", str(ROOT / "checkpoints/melody-gru"), "--prompt-notes", "E4 G4 A4/2 B4/2 A4 G4", "--style",
          "tunebook", "--out", str(tmp_path / "t.mid")])  # fmt: skip
    assert "written as a fiddle tune" in capsys.readouterr().out
