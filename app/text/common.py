"""The Text page's constants, its controls' ranges (one set of numbers for the widgets and the link checks), the
link that makes a result again, and the callbacks that change the prompt."""

import streamlit as st

from app.links import flag, float_in, int_in, new_seed, one_of, read_link, text_up_to
from app.model_cache import model_summary
from genmodels.infer.decoding import MAX_PROMPT_CHARS, Settings
from genmodels.infer.repetition import MAX_NGRAM, MAX_PENALTY
from genmodels.infer.stopping import MAX_SENTENCES
from genmodels.infer.text_rows import TextSteering

TYPE_MODE, GENERATE_MODE = "Type with suggestions", "Generate a continuation"
DEFAULT_PROMPT = "ROMEO.\nBut soft, what light through yonder window breaks?\n"


EMPTY_PROMPT = "Type a few words to start from"


MAX_SHOWN_CANDIDATES = 8


MAX_SEED_VALUE = 2**31 - 1


KEEP = "session"  # widget values survive a visit to another page


MAX_LINK_PROMPT = 2000  # characters of the prompt that go into a link (URLs get unwieldy beyond)


# Each control's range: the widget's bounds and the link's check are the same numbers.
TEMPERATURE = (0.0, 2.0)


TOP_K = (0, 10_000)


TOP_P = (0.05, 1.0)


LENGTH = (10, 1000)


PENALTY = (1.0, min(MAX_PENALTY, 3.0))


# The controls' first values, put into session state once (not passed as ``value=``): a link writes its
# values there, and a widget given both makes Streamlit log a warning with a stack dump.
DEFAULTS = {
    "t_mode": TYPE_MODE,
    "t_temp": 0.8,
    "t_topk": 0,
    "t_topp": 1.0,
    "t_len": 200,
    "t_n": 1,
    "t_sentences": 0,
    "t_rep": 1.0,
    "t_ngram": 0,
}


def link_parsers(model_labels: list[str]) -> dict:
    """Query parameter → (session key, parser): the link that reproduces a Generate result. A parser raises
    ValueError on a malformed or out-of-range value (a link is input from strangers)."""
    return {
        "prompt": ("t_prompt_text", text_up_to(MAX_PROMPT_CHARS)),
        "model": ("t_model", one_of(model_labels)),
        "temperature": ("t_temp", float_in(*TEMPERATURE)),
        "top_k": ("t_topk", int_in(*TOP_K)),
        "top_p": ("t_topp", float_in(*TOP_P)),
        "length": ("t_len", int_in(*LENGTH)),
        "n": ("t_n", int_in(1, MAX_SHOWN_CANDIDATES)),
        "seed": ("t_seed", int_in(0, MAX_SEED_VALUE)),
        "end_of_line": ("t_eol", flag),
        "end_of_speech": ("t_eos", flag),
        "sentences": ("t_sentences", int_in(0, MAX_SENTENCES)),
        "repetition_penalty": ("t_rep", float_in(*PENALTY)),
        "no_repeat_ngram": ("t_ngram", int_in(0, MAX_NGRAM)),
        "adapt": ("t_adapt", flag),
        "compare": ("t_compare_with", one_of(model_labels)),
    }


def roll_seed() -> None:
    st.session_state.t_seed = new_seed()


def cut_long_prompt() -> None:
    """A prompt over the limit keeps its last MAX_PROMPT_CHARS characters: the model continues from the end."""
    prompt = st.session_state.t_prompt_text
    if len(prompt) > MAX_PROMPT_CHARS:
        st.session_state.t_prompt_text = prompt[-MAX_PROMPT_CHARS:]
        st.session_state.t_prompt_cut = len(prompt)


def keep_candidate(text: str) -> None:
    st.session_state.t_prompt_text = text[-MAX_PROMPT_CHARS:]
    st.session_state.t_results = None
    st.session_state.t_kept = True
    st.session_state.t_rerun_app = True  # the click reran only the fragment: redraw the prompt box too


def apply_link(model_labels: list[str]) -> None:
    """Opening a link made by this page: its prompt and settings go into the controls, and Generate runs
    once (same random seed, so the same continuation). Each distinct link is applied once per session; a
    value that is malformed or out of range is left out (its control keeps its default) and named."""
    params = st.query_params.to_dict()
    if "prompt" not in params or st.session_state.get("t_link_applied") == params:
        return
    st.session_state.t_link_applied = params
    values, bad = read_link(params, link_parsers(model_labels))
    values["t_compare"] = "t_compare_with" in values
    st.session_state.update(values)
    if bad:
        st.session_state.t_link_bad = bad
    st.session_state.t_mode = GENERATE_MODE
    st.session_state.t_autogo = True


def write_link(prompt: str, model: str, controls: dict) -> None:
    """Put the prompt (at most MAX_LINK_PROMPT characters) and settings of a result into the address bar."""
    s: Settings = controls["settings"]
    t: TextSteering = controls["steering"]
    values = {
        "prompt": prompt[:MAX_LINK_PROMPT],
        "model": model,
        "temperature": f"{s.temperature:g}",
        "top_k": s.top_k,
        "top_p": f"{s.top_p:g}",
        "length": controls["length"],
        "n": s.n,
        "seed": s.seed,
        "end_of_line": int(t.end_of_line),
        "end_of_speech": int(t.end_of_speech),
        "sentences": t.sentences,
        "repetition_penalty": f"{t.repetition_penalty:g}",
        "no_repeat_ngram": t.no_repeat_ngram,
        "adapt": int(bool(controls.get("adapt"))),
    }
    if controls.get("compare"):
        values["compare"] = controls["compare"]
    params = {k: str(v) for k, v in values.items()}
    st.session_state.t_link_applied = params  # the page's own link: not applied again
    st.query_params.from_dict(params)


def model_radio(where, models: list):
    """The model choice, shared by both modes (one key, so it is the same choice)."""
    return where.radio(
        "Model",
        [m.label for m in models],
        key="t_model",
        horizontal=True,
        persist_state=KEEP,
        help="The recurrent networks (a mixture averages several; the Models page has every card).  \n"
        + "  \n".join(model_summary(m.label, str(m.path)) for m in models),
    )
