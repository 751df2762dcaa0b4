"""The Text page's controls under the prompt: model, sampling, length, candidates, random seed; stop rules and
repetition control in the Advanced expander. Each control's default is put into session state once
(``common.DEFAULTS``) and kept for the session; its range is the one the page's links are checked against."""

import streamlit as st

from app.text.common import (
    KEEP,
    LENGTH,
    MAX_SEED_VALUE,
    MAX_SHOWN_CANDIDATES,
    PENALTY,
    TEMPERATURE,
    TOP_K,
    TOP_P,
    model_radio,
    roll_seed,
)
from genmodels.infer.decoding import Settings
from genmodels.infer.repetition import MAX_NGRAM
from genmodels.infer.stopping import MAX_SENTENCES
from genmodels.infer.text_rows import TextSteering


def read_settings(models: list) -> dict:
    """Every control under the prompt: {model, compare, length, steering, adapt, settings}."""
    model, temperature, top_k, top_p = sampling_row(models)
    length, n, seed, compare = request_row(models, model)
    return {
        "model": model,
        "compare": compare,
        "length": int(length),
        "steering": read_steering(),
        "adapt": st.session_state.get("t_adapt", False),
        "settings": Settings(
            temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), seed=int(seed), n=int(n)
        ),
    }


def sampling_row(models: list) -> tuple:
    """Model, temperature, top-k and top-p."""
    c1, c2, c3, c4 = st.columns(4)
    model = model_radio(c1, models)
    temperature = c2.slider(
        "Temperature", *TEMPERATURE, None, 0.05, key="t_temp", persist_state=KEEP,
        help="0 = greedy (always the most likely token); higher = more surprising.",
    )  # fmt: skip
    top_k = c3.number_input(
        "Top-k", *TOP_K, "min", 1, key="t_topk", persist_state=KEEP,
        help="Sample only among the k most likely tokens; 0 = off.",
    )  # fmt: skip
    top_p = c4.slider(
        "Top-p", *TOP_P, None, 0.05, key="t_topp", persist_state=KEEP,
        help="Sample only among the most likely tokens that together reach this probability; 1 = off.",
    )  # fmt: skip
    return model, temperature, top_k, top_p


def request_row(models: list, model: str) -> tuple:
    """Length, candidates, random seed (with a button that draws a new one) and the model to compare ``model``
    with (None when not comparing)."""
    d1, d2, d3, d4 = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
    length = d1.slider(
        "Length (tokens)", *LENGTH, None, 10, key="t_len", persist_state=KEEP,
        help="A token is a word or a piece of one (about 3-4 characters on average). At the limit the text "
        "finishes the word it is in (up to 12 more tokens).",
    )  # fmt: skip
    n = d2.number_input(
        "Candidates", 1, MAX_SHOWN_CANDIDATES, "min", 1, key="t_n", persist_state=KEEP,
        help="Several continuations of the same prompt, shown side by side. Candidate i depends only on the "
        "random seed and i: asking for more candidates keeps the first ones as they were.",
    )  # fmt: skip
    with d3:
        s1, s2 = st.columns([3, 1], vertical_alignment="bottom")
        seed = s1.number_input(
            "Random seed", 0, MAX_SEED_VALUE, step=1, key="t_seed", persist_state=KEEP,
            help="The same random seed and settings always give the same text.",
        )  # fmt: skip
        s2.button(":material/casino:", key="t_roll", on_click=roll_seed, help="Draw a new random seed")
    return length, n, seed, compare_with(d4, models, model)


def compare_with(where, models: list, model: str) -> str | None:
    """A second model to run on the same prompt and settings (any model but ``model``, the mixture too)."""
    others = [m.label for m in models if m.label != model]
    compare = where.checkbox(
        "Compare with another model", key="t_compare", disabled=not others, persist_state=KEEP,
        help="Run the chosen model and a second one on the same prompt and settings, side by side.",
    )  # fmt: skip
    if not (compare and others):
        return None
    if st.session_state.get("t_compare_with") not in others:  # e.g. it just became the first model
        st.session_state.pop("t_compare_with", None)
    return where.selectbox("Second model", others, key="t_compare_with", persist_state=KEEP)


def read_steering() -> TextSteering:
    """Stop rules and repetition control, in the Advanced expander (and whether to adapt to the prompt)."""
    with st.expander("Advanced: where to stop, repetition", icon=":material/tune:"):
        a1, a2, a3 = st.columns(3)
        eol = a1.checkbox("Stop at the end of the line", key="t_eol", persist_state=KEEP)
        eos = a1.checkbox(
            "Stop at the end of the speech", key="t_eos", persist_state=KEEP,
            help="A blank line or the next speaker's name ends a speech.",
        )  # fmt: skip
        sentences = a2.number_input(
            "Stop after N sentences", 0, MAX_SENTENCES, "min", 1, key="t_sentences", persist_state=KEEP, help="0 = off."
        )
        penalty = a3.slider(
            "Repetition penalty", *PENALTY, None, 0.05, key="t_rep", persist_state=KEEP,
            help="Makes tokens already in the text less likely; 1 = off.",
        )  # fmt: skip
        ngram = a3.number_input(
            "No-repeat n-gram size", 0, MAX_NGRAM, "min", 1, key="t_ngram", persist_state=KEEP,
            help="Never repeat a run of this many tokens; 0 = off.",
        )  # fmt: skip
        st.checkbox(
            "Adapt to my text", key="t_adapt", persist_state=KEEP,
            help="Before generating, a private copy of the model takes small learning steps on your prompt "
            "(its last 1,024 tokens), so its names and words become likelier. The shared model never changes; "
            "it takes about a second.",
        )  # fmt: skip
    return TextSteering(
        end_of_line=bool(eol),
        end_of_speech=bool(eos),
        sentences=int(sentences),
        repetition_penalty=float(penalty),
        no_repeat_ngram=int(ngram),
    )
