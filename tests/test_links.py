"""Links are input from strangers: every page opened with hostile or random query strings runs without an
exception, shows nothing from the link as Markdown (no live link, image or HTML), says which values it could
not use, and keeps its defaults for them."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.model_cache import available_models

ROOT = Path(__file__).resolve().parents[1]
EVIL = "evil.example"
PAYLOADS = [
    f"[Session expired: sign in again](https://{EVIL}/login) ![](https://{EVIL}/pixel.png)",
    f"![](https://{EVIL}/p.png)",
    f'<img src="https://{EVIL}/x.png" onerror="alert(1)">',
    f"https://{EVIL}/bare",
    f":red[{EVIL}] :material/warning: $\\\\{EVIL}$ **{EVIL}**",
    f"<{EVIL}@{EVIL}>",
]
NUMBERS = ["9", "-5", "5", "nan", "inf", "1e309", "", "0x10", "99999999999999999999", "１２"]
TEXT_PARAMS = [
    "model",
    "temperature",
    "top_k",
    "top_p",
    "length",
    "n",
    "seed",
    "end_of_line",
    "end_of_speech",
    "sentences",
    "repetition_penalty",
    "no_repeat_ngram",
]
MELODY_PARAMS = ["tonic", "mode", "tempo", "model", "program", "temp", "bars", "topp", "topk", "seed", "stay", "end"]
MELODY_PARAMS += ["meter", "pbars", "harm", "hm", "hi", "hr", "ht", "hc", "hs", "hv"]


def shown_markdown(at: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer, widget labels and help included."""
    texts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "toast", "title", "subheader"):
        texts += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    for kind in ("button", "checkbox", "radio", "selectbox", "slider", "number_input", "text_area", "text_input"):
        for w in getattr(at, kind):
            texts += [str(getattr(w, "label", "")), str(getattr(w, "help", "") or "")]
    return texts


def open_page(page: str, params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    if page != "text.py":
        at.switch_page(f"app/pages/{page}")
    return at.run()


def assert_safe(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    for text in shown_markdown(at):
        assert EVIL not in text, f"link content rendered as Markdown: {text!r}"
        assert not re.search(r"(?<!\\)<img", text, re.I), f"HTML from the link: {text!r}"


def random_query(rng: random.Random, names: list[str]) -> dict[str, str]:
    pool = PAYLOADS + NUMBERS + ["0", "1", "gru", "lstm", "C4 D4", "4/4", "dorian"]
    return {name: rng.choice(pool) for name in rng.sample(names, k=rng.randint(1, len(names)))}


needs_text = pytest.mark.skipif(not available_models("text"), reason="no text checkpoint")
needs_melody = pytest.mark.skipif(not available_models("melody"), reason="no melody checkpoint")


@needs_text
def test_text_link_out_of_range_values_get_a_message_and_the_default():
    at = open_page("text.py", {"prompt": "To be", "temperature": "9", "length": "5", "n": "nan"})
    assert_safe(at)
    assert at.slider(key="t_temp").value == pytest.approx(0.8)
    assert at.slider(key="t_len").value == 200
    warning = " ".join(w.value for w in at.warning)
    assert "temperature" in warning and "length" in warning and "n" in warning
    at.run()  # and on every rerun after
    assert_safe(at)


@needs_text
@pytest.mark.parametrize("payload", PAYLOADS)
def test_text_link_payloads_are_shown_as_text(payload):
    assert_safe(open_page("text.py", {"prompt": payload, "model": payload, "temperature": payload}))


@needs_melody
@pytest.mark.parametrize("payload", PAYLOADS[:3])
def test_melody_link_payloads_are_shown_as_text(payload):
    assert_safe(open_page("melody.py", {"src": "tune", "tune": payload, "tempo": payload}))
    assert_safe(open_page("melody.py", {"src": "notes", "notes": payload, "meter": payload, "mode": payload}))


@needs_melody
def test_melody_link_bad_values_are_named_and_defaults_kept():
    at = open_page("melody.py", {"src": "notes", "notes": "C4 D4 E4 F4", "tempo": "9999", "temp": "-1"})
    assert_safe(at)
    warning = " ".join(w.value for w in at.warning)
    assert "tempo" in warning and "temp" in warning
    assert at.session_state["m_tempo"] == 120


@needs_melody
def test_melody_link_carries_the_style():
    at = open_page("melody.py", {"src": "notes", "notes": "C4 D4 E4 F4", "style": "chorale"})
    assert_safe(at)
    assert at.session_state["m_style"] == "chorale"
    at = open_page("melody.py", {"src": "notes", "notes": "C4 D4 E4 F4", "style": "**jazz**"})
    assert_safe(at)
    assert "style" in " ".join(w.value for w in at.warning)
    assert at.session_state["m_style"] == "auto"


@pytest.mark.parametrize("seed", range(4))
def test_random_links_on_every_page(seed):
    rng = random.Random(seed)
    cases = [("models.py", random_query(rng, ["model", "tab", "x"]))]
    if available_models("text"):
        cases.append(("text.py", {"prompt": rng.choice(PAYLOADS)} | random_query(rng, TEXT_PARAMS)))
    if available_models("melody"):
        src = rng.choice(["notes", "tune", EVIL])
        cases.append(
            (
                "melody.py",
                {"src": src, "notes": "C4 D4 E4", "tune": rng.choice(PAYLOADS)} | random_query(rng, MELODY_PARAMS),
            )
        )
    for page, params in cases:
        assert_safe(open_page(page, params))
