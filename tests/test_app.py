"""The Streamlit pages under streamlit.testing's AppTest: generation, seeds, errors, reproducibility.

Models come from ``$GENMODELS_CHECKPOINTS`` or ``checkpoints/``; a page's tests skip when no model of its
domain is found there.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pretty_midi
import pytest
from streamlit.testing.v1 import AppTest

from app_support import available_models
from genmodels.melody import MAX_MIDI_BYTES, parse_note_prompt
from genmodels.sampling import MAX_PROMPT_CHARS, Sampler, Settings

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


def page(name: str) -> AppTest:
    """The app started as a user starts it (``app.py``, on the Text page), then switched to ``name``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    if name != "text.py":
        at.switch_page(f"app_pages/{name}").run()
        assert not at.exception, at.exception
    return at


def away_and_back(at: AppTest, page_name: str) -> AppTest:
    """Visit another page, then return to ``app_pages/page_name``."""
    other = "models.py" if page_name != "models.py" else "text.py"
    at.switch_page(f"app_pages/{other}").run()
    assert not at.exception, at.exception
    at.switch_page(f"app_pages/{page_name}").run()
    assert not at.exception, at.exception
    return at


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def errors(at: AppTest) -> str:
    assert not at.exception, [e.value for e in at.exception]
    return " | ".join(e.value for e in at.error)


def needs(domain: str):
    return pytest.mark.skipif(
        not available_models(domain), reason=f"no {domain} checkpoint found (train one or set GENMODELS_CHECKPOINTS)"
    )


def midi_file(pitches=(64, 62, 60, 62, 64, 64, 64), drums: bool = False) -> bytes:
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    inst = pretty_midi.Instrument(program=0, is_drum=drums)
    for i, p in enumerate(pitches):
        inst.notes.append(pretty_midi.Note(velocity=90, pitch=p, start=i * 0.6, end=(i + 1) * 0.6))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------
# Text
# ------------------------------------------------------------------------------------------------
def text_generate(
    at: AppTest, seed_text: str = "To be, or not to be", seed: int = 7, length: int = 20, **widgets
) -> AppTest:
    at.text_area(key="t_seed_text").set_value(seed_text)
    at.number_input(key="t_seed").set_value(seed)
    at.slider(key="t_len").set_value(length)
    for key, value in widgets.items():
        at.session_state[key] = value
    at.button(key="t_go").click().run()
    return at


def continuations(at: AppTest) -> list[list[str]]:
    res = at.session_state["t_results"]
    return [[r.continuation for r in run["results"]] for run in res["runs"]]


@needs("text")
def test_text_generates_a_continuation():
    at = text_generate(page("text.py"))
    no_errors(at)
    [[cont]] = continuations(at)
    assert cont
    shown = [h.proto.body for h in at.get("html") if "gm-cont" in h.proto.body]
    assert shown and "To be, or not to be" in shown[0]
    # the "why this word" distribution is there
    assert len(at.session_state["t_results"]["runs"][0]["next"]) == 12


@needs("text")
def test_text_same_seed_same_text():
    at = page("text.py")
    first = continuations(text_generate(at, seed=1234, t_temp=1.0))
    again = continuations(text_generate(at, seed=1234, t_temp=1.0))
    other = continuations(text_generate(at, seed=4321, t_temp=1.0))
    assert first == again
    assert first != other
    # and it is the library's answer for those settings
    gen = Sampler(available_models("text")[0].path)
    lib = gen.complete("To be, or not to be", 20, Settings(temperature=1.0, seed=1234))
    assert first[0][0] == lib[0].continuation


@needs("text")
def test_text_seed_is_escaped():
    at = text_generate(page("text.py"), seed_text="<script>alert(1)</script> & **bold**")
    no_errors(at)
    body = next(h.proto.body for h in at.get("html") if "gm-cont" in h.proto.body)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; **bold**" in body and "<script>" not in body


@needs("text")
def test_text_empty_seed_is_refused():
    at = text_generate(page("text.py"), seed_text="   ")
    assert "Type a few words to start from" in errors(at)
    assert at.session_state["t_results"] is None


@needs("text")
def test_text_candidates_keep_one_and_continue():
    at = text_generate(page("text.py"), t_n=3)
    no_errors(at)
    [conts] = continuations(at)
    assert len(conts) == 3
    keep = [b for b in at.button if b.key and b.key.startswith("t_keep_")]
    assert len(keep) == 3
    keep[1].click().run()
    no_errors(at)
    assert at.text_area(key="t_seed_text").value == "To be, or not to be" + conts[1]
    assert at.session_state["t_results"] is None


@needs("text")
def test_text_probability_colours():
    at = text_generate(page("text.py"))
    at.toggle(key="t_colour").set_value(True).run()
    no_errors(at)
    assert any("p = " in h.proto.body for h in at.get("html"))


@pytest.mark.skipif(len(available_models("text")) < 2, reason="needs two text checkpoints to compare")
def test_text_compare_two_models():
    at = text_generate(page("text.py"), t_compare=True)
    no_errors(at)
    runs = at.session_state["t_results"]["runs"]
    assert [r["label"] for r in runs] == [m.label for m in available_models("text")[:2]]


@needs("text")
def test_text_long_seed_says_it_is_cut():
    at = page("text.py")
    at.text_area(key="t_seed_text").set_value("Now is the winter of our discontent. " * 400).run()
    assert any("reads only its last" in i.value for i in at.info)


@needs("text")
def test_text_long_paste_is_kept_up_to_the_limit():
    """Issue 10.5: a paste over the limit was silently emptied; now it is cut to the limit, with a message."""
    at = page("text.py")
    pasted = "".join(f"{i:07d} " for i in range(MAX_PROMPT_CHARS // 8 + 2000))
    at.text_area(key="t_seed_text").set_value(pasted).run()
    assert not at.exception
    assert at.text_area(key="t_seed_text").value == pasted[:MAX_PROMPT_CHARS]
    assert any(f"{len(pasted):,} characters" in w.value and "cut" in w.value for w in at.warning)
    at.button(key="t_go").click().run()  # and it is usable: the prompt is not refused
    assert "Type a few words" not in errors(at)


TEXT_SETTINGS = {"t_temp": 1.2, "t_topk": 40, "t_topp": 0.9, "t_n": 2, "t_seed": 99, "t_len": 20}
HAMLET = "HAMLET.\nTo be, or not to be, that is the question:\n"


@needs("text")
def test_text_settings_survive_navigation():
    """Issue 10.2: every control keeps what the user set after a visit to another page, and the result shown
    still matches the controls."""
    at = page("text.py")
    label = list(model_labels("text"))[-1]
    at.radio(key="t_model").set_value(label)
    at.text_area(key="t_seed_text").set_value(HAMLET)
    at.slider(key="t_temp").set_value(TEXT_SETTINGS["t_temp"])
    at.number_input(key="t_topk").set_value(TEXT_SETTINGS["t_topk"])
    at.slider(key="t_topp").set_value(TEXT_SETTINGS["t_topp"])
    at.number_input(key="t_n").set_value(TEXT_SETTINGS["t_n"])
    at.number_input(key="t_seed").set_value(TEXT_SETTINGS["t_seed"])
    at.slider(key="t_len").set_value(TEXT_SETTINGS["t_len"])
    at.button(key="t_go").click().run()
    no_errors(at)
    caption_before = result_caption(at)
    at = away_and_back(at, "text.py")
    no_errors(at)
    assert at.radio(key="t_model").value == label
    assert at.text_area(key="t_seed_text").value == HAMLET
    for key, value in TEXT_SETTINGS.items():
        widget = at.slider(key=key) if key in ("t_temp", "t_topp", "t_len") else at.number_input(key=key)
        assert widget.value == value, key
    assert result_caption(at) == caption_before
    assert f"{label} · temperature 1.2 · top-k 40 · top-p 0.9 · 20 tokens · random seed 99" in caption_before


def model_labels(domain: str) -> list[str]:
    return [m.label for m in available_models(domain)]


def result_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if "random seed" in c.value)


# ------------------------------------------------------------------------------------------------
# Melody
# ------------------------------------------------------------------------------------------------
def melody_generate(at: AppTest, **widgets) -> AppTest:
    at.slider(key="m_bars").set_value(2)
    at.number_input(key="m_seed").set_value(42)
    for key, value in widgets.items():
        at.session_state[key] = value
    at.button(key="m_go").click().run()
    return at


def last_melody(at: AppTest) -> dict:
    return at.session_state["m_history"][-1]


@needs("melody")
def test_melody_from_note_names():
    at = page("melody.py")
    at.text_input(key="m_notes").set_value("E4 G4 A4/2 A4/2 G4*2")
    at = melody_generate(at)
    no_errors(at)
    h = last_melody(at)
    seed = parse_note_prompt("E4 G4 A4/2 A4/2 G4*2")
    assert h["full"].pitches[:5] == seed.pitches
    assert h["full"].n_bars >= 3
    assert {d.key for d in at.get("download_button")} == {"m_dl_full_1", "m_dl_cont_1"}
    assert h["name"].startswith("melody-") and "seed42" in h["name"] and "/" not in h["name"]
    assert len(at.get("audio")) == 1


@needs("melody")
def test_melody_same_seed_same_tune_and_history():
    at = melody_generate(page("melody.py"))
    at = melody_generate(at)
    no_errors(at)
    hist = at.session_state["m_history"]
    assert len(hist) == 2 and hist[0]["full"] == hist[1]["full"]
    at.selectbox(key="m_pick").set_value(1).run()  # replay the first one
    no_errors(at)
    assert {d.key for d in at.get("download_button")} == {"m_dl_full_1", "m_dl_cont_1"}


@needs("melody")
def test_melody_key_and_tempo_apply():
    at = melody_generate(page("melody.py"), m_key=(2, "major"), m_tempo=90)
    no_errors(at)
    full = last_melody(at)["full"]
    assert full.key == (2, "major") and full.tempo == 90
    assert "Dmajor" in last_melody(at)["name"]


@needs("melody")
def test_melody_bad_notes_message():
    at = page("melody.py")
    at.text_input(key="m_notes").set_value("E4 H4 G4").run()
    assert "H4" in errors(at)
    at.button(key="m_go").click().run()
    assert "Fix the seed first" in errors(at)
    assert not at.session_state["m_history"]


@needs("melody")
def test_melody_from_uploaded_midi():
    at = page("melody.py")
    at.radio(key="m_source").set_value("MIDI file").run()
    at.file_uploader(key="m_upload").upload("tune.mid", midi_file(), "audio/midi").run()
    no_errors(at)
    assert any("E4 D4 C4" in c.value for c in at.code)  # the extracted melody is shown before generating
    at = melody_generate(at)
    no_errors(at)
    assert last_melody(at)["full"].pitches[:4] == [64, 62, 60, 62]


@needs("melody")
@pytest.mark.parametrize(
    "name,data,message",
    [
        ("notes.mid", b"this is not a MIDI file", "Not a MIDI file"),
        ("drums.mid", midi_file(drums=True), "Drum-only"),
        ("huge.mid", b"MThd" + bytes(MAX_MIDI_BYTES), "the limit is"),
    ],
)
def test_melody_bad_upload_message(name, data, message):
    at = page("melody.py")
    at.radio(key="m_source").set_value("MIDI file").run()
    at.file_uploader(key="m_upload").upload(name, data, "audio/midi").run()
    assert message in errors(at)
    at.button(key="m_go").click().run()
    assert not at.exception and not at.session_state["m_history"]


@needs("melody")
def test_melody_upload_missing():
    at = page("melody.py")
    at.radio(key="m_source").set_value("MIDI file").run()
    at.button(key="m_go").click().run()
    assert "Upload a MIDI file first" in errors(at)


@needs("melody")
def test_melody_from_corpus_tune(tmp_path, monkeypatch):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "tune-a.mid").write_bytes(midi_file((67, 69, 71, 72, 74, 72, 71, 69)))
    (tmp_path / "test" / "tune-b.mid").write_bytes(midi_file())
    monkeypatch.setenv("GENMODELS_MELODY_DATA", str(tmp_path))
    at = page("melody.py")
    at.radio(key="m_source").set_value("Corpus tune").run()
    no_errors(at)
    assert at.selectbox(key="m_corpus").value.name == "tune-a.mid"
    at.selectbox(key="m_corpus").set_value(tmp_path / "test" / "tune-b.mid").run()
    at = melody_generate(at)
    no_errors(at)
    assert last_melody(at)["full"].pitches[:4] == [64, 62, 60, 62]


def test_melody_corpus_option_hidden_without_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GENMODELS_MELODY_DATA", str(tmp_path))
    at = page("melody.py")
    if available_models("melody"):
        assert "Corpus tune" not in at.radio(key="m_source").options
        assert any("python -m genmodels prepare melody" in c.value for c in at.caption)


MELODY_SETTINGS = {"m_tempo": 90, "m_bars": 3, "m_seed": 77, "m_key": (9, "minor"), "m_meter": "3/4", "m_program": 73}


@needs("melody")
def test_melody_settings_and_history_survive_navigation():
    """Issue 10.2 on the Melody page: notes, tempo, length, key, meter, instrument, random seed, the history."""
    at = page("melody.py")
    label = model_labels("melody")[-1]
    at.radio(key="m_model").set_value(label)
    at.text_input(key="m_notes").set_value("E4 G4 A4/2 A4/2 G4*2")
    at.selectbox(key="m_meter").set_value(MELODY_SETTINGS["m_meter"])
    at.selectbox(key="m_key").set_value(MELODY_SETTINGS["m_key"])
    at.slider(key="m_tempo").set_value(MELODY_SETTINGS["m_tempo"])
    at.slider(key="m_bars").set_value(MELODY_SETTINGS["m_bars"])
    at.selectbox(key="m_program").set_value(MELODY_SETTINGS["m_program"])
    at.number_input(key="m_seed").set_value(MELODY_SETTINGS["m_seed"])
    at.button(key="m_go").click().run()
    no_errors(at)
    at = away_and_back(at, "melody.py")
    no_errors(at)
    assert at.radio(key="m_model").value == label
    assert at.text_input(key="m_notes").value == "E4 G4 A4/2 A4/2 G4*2"
    assert at.selectbox(key="m_meter").value == MELODY_SETTINGS["m_meter"]
    assert at.selectbox(key="m_key").value == MELODY_SETTINGS["m_key"]
    assert at.slider(key="m_tempo").value == MELODY_SETTINGS["m_tempo"]
    assert at.slider(key="m_bars").value == MELODY_SETTINGS["m_bars"]
    assert at.selectbox(key="m_program").value == MELODY_SETTINGS["m_program"]
    assert at.number_input(key="m_seed").value == MELODY_SETTINGS["m_seed"]
    [h] = at.session_state["m_history"]
    assert h["model"] == label and h["settings"].seed == 77 and h["full"].tempo == 90 and h["bars"] == 3
    assert at.selectbox(key="m_pick").value == 1


@needs("melody")
def test_melody_uploaded_file_survives_navigation_and_can_be_cleared():
    at = page("melody.py")
    at.radio(key="m_source").set_value("MIDI file").run()
    at.file_uploader(key="m_upload").upload("tune.mid", midi_file(), "audio/midi").run()
    no_errors(at)
    at = away_and_back(at, "melody.py")
    no_errors(at)
    assert at.radio(key="m_source").value == "MIDI file"
    assert any("Using uploaded file tune.mid" in c.value for c in at.caption)
    assert any("E4 D4 C4" in c.value for c in at.code)
    at = melody_generate(at)
    no_errors(at)
    assert last_melody(at)["full"].pitches[:4] == [64, 62, 60, 62]
    at.button(key="m_clear_upload").click().run()
    no_errors(at)
    assert not any("Using uploaded file" in c.value for c in at.caption)
    assert len(at.get("file_uploader")) == 1
    at.button(key="m_go").click().run()
    assert "Upload a MIDI file first" in errors(at)


# ------------------------------------------------------------------------------------------------
# Models page and navigation
# ------------------------------------------------------------------------------------------------
def test_models_page_lists_checkpoints_and_training():
    at = page("models.py")
    no_errors(at)
    found = available_models("text") + available_models("melody")
    assert len(at.tabs) == len(found)
    assert any("python -m genmodels train" in m.value for m in at.markdown)


def test_models_page_reads_cards_without_loading_weights(monkeypatch):
    """Issue 9.9: the Models page loaded all four models to show their cards."""
    import streamlit as st

    def no_loading(*args, **kwargs):
        raise AssertionError("the Models page loaded a model")

    st.cache_resource.clear()  # models loaded by earlier tests would hide a load
    monkeypatch.setattr(Sampler, "__init__", no_loading)
    at = page("models.py")
    no_errors(at)
    found = available_models("text") + available_models("melody")
    assert len(at.tabs) == len(found)
    if found:
        assert any(m.label == "Parameters" for m in at.metric)


def test_models_page_is_readable_and_agrees_with_the_cards():
    """Issue 10.6: no raw lists or "None" in tables, the whole command history with steps that add up,
    one test token count, a plain-words summary, melody samples as music (piano roll and audio)."""
    import json

    found = [(d, m) for d in ("text", "melody") for m in available_models(d)]
    if not found:
        pytest.skip("no checkpoint found")
    at = page("models.py")
    no_errors(at)
    cells = [str(v) for df in at.dataframe for v in df.value.astype(str).to_numpy().ravel()]
    assert not [c for c in cells if c.lstrip().startswith(("[", "{")) or c in ("None", "nan", "<NA>")]
    codes = [c.value for c in at.code]
    words = " ".join([m.value for m in at.markdown] + [c.value for c in at.caption])
    for _, m in found:
        card = json.loads((m.path / "card.json").read_text())
        commands = [c["command"].split("  (")[0] for c in card.get("commands", [])]
        positions = [next((i for i, code in enumerate(codes) if code.startswith(c)), -1) for c in commands]
        assert -1 not in positions and positions == sorted(positions), m.name  # every command, in order
        if isinstance(card.get("steps"), int):
            assert f"to step {card['steps']:,}" in words, m.name
        test = card.get("test") or {}
        split_tokens = (((card.get("data") or {}).get("split") or {}).get("test") or {}).get("tokens")
        if isinstance(test.get("tokens"), int) and split_tokens and split_tokens != test["tokens"]:
            assert f"{split_tokens:,}" not in words + " ".join(cells) and str(split_tokens) not in " ".join(cells)
        if isinstance(card.get("baseline"), dict) and isinstance(test.get("value"), (int, float)):
            assert "better than the best n-gram" in words or "worse than the best n-gram" in words
    if available_models("melody"):
        assert "per note on" in words and "held-out tunes" in words
        assert "scale consistency" in cells
        assert at.get("audio"), "melody samples are played, not shown as note text"
    if available_models("text"):
        assert "bits per character on three held-out works" in words


def test_model_card_history_and_summary_in_plain_words():
    from app_cards import command_history, music_table, summary, total_steps

    card = {
        "domain": "text",
        "metric": "bits_per_char",
        "steps": 1400,
        "commands": [
            {"command": "python -m genmodels train --domain text --steps 1600", "step": 0},
            {"command": "python -m genmodels train --domain text --steps 1600 --resume", "step": 984},
            {"command": "python -m genmodels train --init-from x --steps 1400", "step": 0},
        ],
        "test": {"value": 2.0109, "units": 368112, "tokens": 139358},
        "baseline": {"model": "interpolated Kneser-Ney character n-gram", "order": 7, "value": 2.2776},
        "data": {"split": {"test": {"documents": ["hamlet", "sonnets", "tempest"], "tokens": 139388}}},
        "music_stats": {"rows": [{"statistic": "scale_consistency", "generated": 0.96, "held_out": 0.99}]},
    }
    h = command_history(card)
    assert [(x["start"], x["end"]) for x in h] == [(0, 984), (984, 1600), (0, 1400)]
    assert total_steps(h) == 3000
    s = summary(card)
    assert "**2.01** bits per character on three held-out works" in s
    assert "12% better than the best n-gram (interpolated Kneser-Ney character 7-gram: 2.28" in s
    assert "139,388" not in s and "3,000 steps in all, in three commands" in s
    assert music_table({"m": card}) == [{"statistic": "scale consistency", "m": "0.960", "held-out tunes": "0.990"}]


def test_app_navigation_runs_every_page():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    for p in ("app_pages/melody.py", "app_pages/models.py", "app_pages/text.py"):
        at.switch_page(p).run()
        assert not at.exception, p


def test_app_does_not_import_training_code():
    """The UI holds no training code: running every page leaves genmodels.train unimported."""
    import subprocess

    code = (
        "import sys; from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=60).run()\n"
        "for p in ('app_pages/melody.py', 'app_pages/models.py'):\n"
        "    at.switch_page(p).run()\n"
        "print('genmodels.train' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_streamlit_config_does_not_silence_the_duplication_warning():
    """Issue 9.9: widget defaults are set once, so Streamlit's duplication warning stays on."""
    import tomllib

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert "disableWidgetStateDuplicationWarning" not in cfg.get("global", {})


def test_streamlit_config_hides_tracebacks_and_limits_uploads():
    import tomllib

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["server"]["maxUploadSize"] * 1_000_000 >= MAX_MIDI_BYTES and cfg["server"]["headless"] is True


@needs("text")
def test_broken_checkpoint_is_a_message(tmp_path, monkeypatch):
    import shutil

    src = available_models("text")[0].path
    bad = tmp_path / "text-lstm"
    bad.mkdir()
    for f in ("config.json", "tokenizer.model"):
        shutil.copy(src / f, bad / f)
    (bad / "model.safetensors").write_bytes(b"not safetensors at all")
    monkeypatch.setenv("GENMODELS_CHECKPOINTS", str(tmp_path))
    at = page("text.py")
    assert "could not be loaded" in errors(at)
    at.switch_page("app_pages/models.py").run()
    assert "could not be loaded" in errors(at)  # no card: the parameter count comes from the weights' header
