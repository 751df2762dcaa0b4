"""Text page: continue a prompt with an LSTM or a GRU, several candidates, why-this-word, comparison.

Every control keeps its value for the whole session (``persist_state="session"``), also while the user is on
another page. The prompt box reruns the page; the controls below it live in a fragment, so moving a slider
reruns only that part (the prompt is not tokenised again).
"""

import streamlit as st

from app.components.typing import typing_view
from app.links import bad_link_message, new_seed
from app.model_cache import require_models
from app.text.common import (
    DEFAULT_PROMPT,
    DEFAULTS,
    GENERATE_MODE,
    KEEP,
    MAX_LINK_PROMPT,
    TYPE_MODE,
    apply_link,
    cut_long_prompt,
    model_radio,
    write_link,
)
from app.text.controls import read_settings
from app.text.results import generate, note_long_prompt, show_results
from genmodels.infer.decoding import MAX_PROMPT_CHARS

# Set by the callbacks below as well as by the user, so initialised here and not through ``value=``.
st.session_state.setdefault("t_prompt_text", DEFAULT_PROMPT)
st.session_state.setdefault("t_seed", new_seed())
for key, value in DEFAULTS.items():
    st.session_state.setdefault(key, value)
st.title("Write with an LSTM or a GRU")
st.caption(
    "Recurrent language models trained on Shakespeare's plays and poems. Type a beginning, choose a "
    "model and how adventurous it may be, and press **Generate**."
)
by_label = require_models("text")
apply_link(list(by_label))
if bad := st.session_state.pop("t_link_bad", None):
    st.warning(bad_link_message(bad))
mode = st.segmented_control(
    "Mode",
    [TYPE_MODE, GENERATE_MODE],
    key="t_mode",
    persist_state=KEEP,
    label_visibility="collapsed",
)


@st.fragment
def typing_mode() -> None:
    """The typing view: a keystroke reruns only this fragment."""
    models = list(by_label.values())
    label = model_radio(st, models)
    st.caption(
        "Type below: the three most likely next words appear above the text, and the most likely rest of the "
        "line in grey after the cursor. **Tab** takes the grey text; a click or **Alt+1..3** takes a word."
    )
    typing_view(by_label.get(label, models[0]).path)


if mode != GENERATE_MODE:
    typing_mode()
    st.stop()
if st.session_state.pop("t_kept", False):
    st.toast("The candidate is now your prompt. Press **Generate** to continue from it.")
prompt = st.text_area(
    "Prompt",
    key="t_prompt_text",
    height=140,
    on_change=cut_long_prompt,
    persist_state=KEEP,
    help=f"The model continues this text (at most {MAX_PROMPT_CHARS:,} characters). Newlines and spaces count.",
)
if cut_from := st.session_state.pop("t_prompt_cut", None):
    st.warning(
        f"Your text has {cut_from:,} characters; a prompt holds at most {MAX_PROMPT_CHARS:,}, so the first "
        f"{cut_from - MAX_PROMPT_CHARS:,} characters were dropped and the end is kept: the model continues "
        "from the end."
    )


@st.fragment
def controls_and_results(prompt: str) -> None:
    """Settings, Generate and the results: a change here reruns only this function."""
    if st.session_state.pop("t_rerun_app", False):
        st.rerun()  # a kept candidate changed the prompt box, which lives outside this fragment
    models = list(by_label.values())
    prompt_msg = st.container()
    settings = read_settings(models)
    settings_msg = st.container()
    go = st.button("Generate", type="primary", key="t_go", icon=":material/auto_awesome:")
    stream_box = st.empty()
    chosen = [by_label.get(settings["model"], models[0])]
    if settings["compare"]:
        chosen.append(by_label[settings["compare"]])
    if not note_long_prompt(prompt, chosen[0], prompt_msg):
        return
    if st.session_state.pop("t_autogo", False):
        go = True  # opened from a link
    if go:
        st.session_state.t_results = generate(prompt, chosen, settings, prompt_msg, settings_msg, stream_box)
        if st.session_state.t_results:
            write_link(prompt, chosen[0].label, settings)
            if len(prompt) > MAX_LINK_PROMPT:
                st.session_state.t_results["link_cut"] = len(prompt)
    show_results(st.session_state.get("t_results"))


controls_and_results(prompt)
