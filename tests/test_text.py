"""The text tokenizer: lossless on any Unicode, streaming-safe, and the default corpus is deterministic."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genmodels.core.errors import DataError
from genmodels.core.paths import tree_hash
from genmodels.learn.text_corpus import load_text_folder, prepare_text
from genmodels.tokenizers.text import StreamDecoder, TextTokenizer


@pytest.fixture(scope="module")
def tok(text_corpus):
    return TextTokenizer.load(text_corpus / "tokenizer.model")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_encode_decode_is_identity_for_any_unicode(tok, text):
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "a  b   c\n\n\n",
        "\ttab\t\t",
        "emoji 😀🎵 and accents éàü ñ",
        "\x00\x01\x1f\x7f ctrl",
        "▁ meta ▁▁",
        "\ue000 escape \ue0000\ue0001",
        " leading and trailing ",
        "\r\n\r",
        "",
    ],
)
def test_hard_cases_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_stream_decoder_deltas_add_up(tok, text):
    ids = tok.encode(text)
    dec = StreamDecoder(tok, [])
    out = "".join(dec.push(i) for i in ids) + dec.flush()
    assert out == text


def test_prepare_text_is_deterministic_and_split_by_work(tmp_path, text_corpus):
    a = prepare_text(tmp_path / "a", readme=None)
    b = prepare_text(tmp_path / "b", readme=None)
    assert a["sha256"] == b["sha256"] == tree_hash(tmp_path / "a")
    assert a["train"]["works"] == 37 and a["valid"]["works"] == 2 and a["test"]["works"] == 3
    names = {p.stem for p in (tmp_path / "a/test").glob("*.txt")}
    assert names == {"hamlet", "tempest", "sonnets"}
    assert "Gutenberg" not in (tmp_path / "a/test/hamlet.txt").read_text()


def test_any_folder_of_text_files_splits(tmp_path):
    (tmp_path / "one.txt").write_text("hello world\n" * 100)
    s = load_text_folder(tmp_path)
    assert s.train and s.valid and s.test
    with pytest.raises(DataError, match="not found"):
        load_text_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No non-empty"):
        load_text_folder(tmp_path / "empty")


@pytest.mark.parametrize("text", ["a\u2581b", "x\ue000y", "\ue000", "\u2581\u2581 \ue000\u2581", "é\u2581😀\ue0001"])
def test_stream_never_emits_what_a_later_piece_changes(tok, text):
    """The escape character of '▁' was emitted, then retracted when the next piece came."""
    dec = StreamDecoder(tok, [])
    shown = ""
    for i in tok.encode(text):
        shown += dec.push(i)
        assert text.startswith(shown), (text, shown)
    assert shown + dec.flush() == text
