"""Text page: continue a prompt with an LSTM or a GRU, several candidates, why-this-word, comparison.

Every control keeps its value for the whole session (``persist_state="session"``), also while the user is on
another page. The prompt box reruns the page; the controls below it live in a fragment, so moving a slider
reruns only that part (the prompt is not tokenised again).
"""

import re

import streamlit as st

from app_support import (
    PROB_LEGEND,
    get_generator,
    new_seed,
    next_token_chart,
    prompt_was_cut,
    require_models,
    text_html,
    tokens_html,
)
from genmodels.errors import GenmodelsError, SettingsError
from genmodels.sampling import CONTEXT_TOKENS, MAX_PROMPT_CHARS, Settings

DEFAULT_PROMPT = "ROMEO.\nBut soft, what light through yonder window breaks?\n"
EMPTY_PROMPT = "Type a few words to start from"
MAX_SHOWN_CANDIDATES = 8
MAX_SEED_VALUE = 2**31 - 1
KEEP = "session"  # widget values survive a visit to another page

# Set by the callbacks below as well as by the user, so initialised here and not through ``value=``.
st.session_state.setdefault("t_seed_text", DEFAULT_PROMPT)
st.session_state.setdefault("t_seed", new_seed())


def md_escape(s: str) -> str:
    """Plain text → markdown that shows exactly that text (for st.write_stream, which renders markdown)."""
    s = re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$&=:])", r"\\\1", s)
    return s.replace("  ", "\u00a0\u00a0").replace("\n", "  \n")


def roll_seed() -> None:
    st.session_state.t_seed = new_seed()


def cut_long_prompt() -> None:
    """A prompt over the limit keeps its first MAX_PROMPT_CHARS characters (the browser would drop it all)."""
    prompt = st.session_state.t_seed_text
    if len(prompt) > MAX_PROMPT_CHARS:
        st.session_state.t_seed_text = prompt[:MAX_PROMPT_CHARS]
        st.session_state.t_prompt_cut = len(prompt)


def keep_candidate(text: str) -> None:
    st.session_state.t_seed_text = text[-MAX_PROMPT_CHARS:]
    st.session_state.t_results = None
    st.session_state.t_kept = True
    st.session_state.t_rerun_app = True  # the click reran only the fragment: redraw the prompt box too


st.title("Write with an LSTM or a GRU")
st.caption(
    "Recurrent language models trained on Shakespeare's plays and poems. Type a beginning, choose a "
    "model and how adventurous it may be, and press **Generate**."
)

by_label = require_models("text")

if st.session_state.pop("t_kept", False):
    st.toast("The candidate is now your prompt. Press **Generate** to continue from it.")

prompt = st.text_area(
    "Prompt",
    key="t_seed_text",
    height=140,
    on_change=cut_long_prompt,
    persist_state=KEEP,
    help=f"The model continues this text (at most {MAX_PROMPT_CHARS:,} characters). Newlines and spaces count.",
)
if cut_from := st.session_state.pop("t_prompt_cut", None):
    st.warning(
        f"Your text has {cut_from:,} characters; a prompt holds at most {MAX_PROMPT_CHARS:,}, so it was cut "
        f"after character {MAX_PROMPT_CHARS:,}. The model continues from the end of what is kept."
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
    chosen = [models[0], models[1]] if settings["compare"] else [by_label.get(settings["model"], models[0])]
    if not note_long_prompt(prompt, chosen[0], prompt_msg):
        return
    if go:
        st.session_state.t_results = generate(prompt, chosen, settings, prompt_msg, settings_msg, stream_box)
    show_results(st.session_state.get("t_results"))


def read_settings(models: list) -> dict:
    """The controls under the prompt, each with its default set once (``value=``) and kept for the session."""
    c1, c2, c3, c4 = st.columns(4)
    model = c1.radio(
        "Model",
        [m.label for m in models],
        key="t_model",
        horizontal=True,
        persist_state=KEEP,
        help="LSTM and GRU: two kinds of recurrent network, trained the same way.",
    )
    temperature = c2.slider(
        "Temperature",
        0.0,
        2.0,
        0.8,
        0.05,
        key="t_temp",
        persist_state=KEEP,
        help="0 = greedy (always the most likely token); higher = more surprising.",
    )
    top_k = c3.number_input(
        "Top-k",
        0,
        10_000,
        0,
        1,
        key="t_topk",
        persist_state=KEEP,
        help="Sample only among the k most likely tokens; 0 = off.",
    )
    top_p = c4.slider(
        "Top-p",
        0.05,
        1.0,
        1.0,
        0.05,
        key="t_topp",
        persist_state=KEEP,
        help="Sample only among the most likely tokens that together reach this probability; 1 = off.",
    )
    d1, d2, d3, d4 = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
    length = d1.slider(
        "Length (tokens)",
        10,
        1000,
        200,
        10,
        key="t_len",
        persist_state=KEEP,
        help="A token is a word or a piece of one (about 3-4 characters on average).",
    )
    n = d2.number_input(
        "Candidates",
        1,
        MAX_SHOWN_CANDIDATES,
        1,
        1,
        key="t_n",
        persist_state=KEEP,
        help="Several continuations of the same prompt, shown side by side. Candidate i depends only on the "
        "random seed and i: asking for more candidates keeps the first ones as they were.",
    )
    with d3:
        s1, s2 = st.columns([3, 1], vertical_alignment="bottom")
        seed = s1.number_input(
            "Random seed",
            0,
            MAX_SEED_VALUE,
            step=1,
            key="t_seed",
            persist_state=KEEP,
            help="The same random seed and settings always give the same text.",
        )
        s2.button(":material/casino:", key="t_roll", on_click=roll_seed, help="Draw a new random seed")
    compare_possible = len(models) >= 2
    compare = d4.checkbox(
        f"Compare {models[0].label} and {models[1].label}" if compare_possible else "Compare models",
        key="t_compare",
        disabled=not compare_possible,
        persist_state=KEEP,
        help="Run both models on the same prompt and settings, side by side.",
    )
    return {
        "model": model,
        "compare": compare and compare_possible,
        "length": int(length),
        "settings": Settings(
            temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), seed=int(seed), n=int(n)
        ),
    }


def note_long_prompt(prompt: str, model, prompt_msg) -> bool:
    """Say when the library reads only the last CONTEXT_TOKENS tokens; False when the model cannot load."""
    try:
        cut = bool(prompt.strip()) and prompt_was_cut(model.path, prompt)
    except GenmodelsError as e:
        prompt_msg.error(f"The model {model.name} could not be loaded: {e}")
        return False
    if cut:
        prompt_msg.info(
            f"Your prompt is long: the model reads only its last {CONTEXT_TOKENS:,} tokens "
            "(about the last few thousand characters). The rest is kept on the page but not used."
        )
    return True


def generate(prompt: str, chosen: list, controls: dict, prompt_msg, settings_msg, stream_box) -> dict | None:
    """Run each chosen model on the prompt; the results to show, or None after a message."""
    settings: Settings = controls["settings"]
    if not prompt.strip():
        prompt_msg.error(EMPTY_PROMPT)
        return None
    try:
        gens = [(m, get_generator(m.path)) for m in chosen]
        for _, g in gens:
            settings.checked(g.vocab_size)
    except SettingsError as e:
        settings_msg.error(str(e))
        return None
    except GenmodelsError as e:
        settings_msg.error(f"A model could not be loaded: {e}")
        return None
    try:
        stream_to = stream_box if len(gens) == 1 and settings.n == 1 else None
        runs = [run_model(m, g, prompt, controls["length"], settings, stream_to) for m, g in gens]
    except SettingsError as e:
        stream_box.empty()
        settings_msg.error(str(e))
        return None
    except GenmodelsError as e:
        stream_box.empty()
        prompt_msg.error(str(e))
        return None
    return {"seed": prompt, "settings": settings, "length": controls["length"], "runs": runs}


def run_model(m, g, prompt: str, length: int, settings: Settings, stream_box) -> dict:
    """One model's candidates, streamed into ``stream_box`` as they are written when there is one."""
    if stream_box is not None:
        with stream_box.container(border=True):
            st.caption(f"{m.label} is writing…")
            stream = g.stream_text(prompt, length, settings)
            st.write_stream(md_escape(d[0]) for d in stream)
        results = stream.results  # the streamed text, with each token's probability
        stream_box.empty()
    else:
        with st.spinner(f"{m.label} is writing {settings.n} candidate(s)…"):
            results = g.complete(prompt, length, settings)
    return {"label": m.label, "name": m.name, "results": results, "next": g.next_token_probs(prompt, k=12)}


def show_results(res: dict | None) -> None:
    """The last results, with the settings that made them (kept for the session like the controls)."""
    if not res:
        return
    s: Settings = res["settings"]
    st.divider()
    head, tog = st.columns([2, 1], vertical_alignment="center")
    head.subheader("Result" if len(res["runs"]) == 1 and s.n == 1 else "Candidates")
    colour = tog.toggle("Colour by probability", key="t_colour", persist_state=KEEP)
    st.caption(
        " · ".join(
            [
                " and ".join(run["label"] for run in res["runs"]),
                f"temperature {s.temperature:g}" + (" (greedy)" if s.temperature == 0 else ""),
                f"top-k {s.top_k or 'off'}",
                f"top-p {s.top_p:g}" if s.top_p < 1 else "top-p off",
                f"{res['length']} tokens",
                f"random seed {s.seed}",
            ]
        )
    )
    if colour:
        st.html(PROB_LEGEND)
    if len(res["runs"]) > 1:
        for col, run in zip(st.columns(len(res["runs"])), res["runs"], strict=True):
            with col:
                st.markdown(f"**{run['label']}** (`{run['name']}`)")
                for i, r in enumerate(run["results"]):
                    candidate_card(run, i, r, s.n, colour)
    else:
        run = res["runs"][0]
        per_row = min(len(run["results"]), 3 if s.n != 4 else 2)
        for start in range(0, len(run["results"]), per_row):
            cols = st.columns(per_row)
            for j, r in enumerate(run["results"][start : start + per_row]):
                with cols[j]:
                    candidate_card(run, start + j, r, s.n, colour)
    show_next_token_charts(res["runs"])


def candidate_card(run: dict, i: int, r, n: int, colour: bool) -> None:
    with st.container(border=True):
        if n > 1:
            st.caption(f"Candidate {i + 1}")
        st.html(tokens_html(r.prompt, r.tokens) if colour else text_html(r.prompt, r.continuation))
        st.button(
            "Keep this and continue",
            key=f"t_keep_{run['name']}_{i}",
            on_click=keep_candidate,
            args=(r.prompt + r.continuation,),
            icon=":material/arrow_forward:",
            help="This text becomes the new prompt.",
        )


def show_next_token_charts(runs: list[dict]) -> None:
    with st.expander(
        "Why this word? The model's top guesses for the next token after your prompt", icon=":material/bar_chart:"
    ):
        for col, run in zip(st.columns(len(runs)), runs, strict=True):
            with col:
                if len(runs) > 1:
                    st.markdown(f"**{run['label']}**")
                chart = next_token_chart(run["next"])
                st.altair_chart(chart, width="stretch", height=24 * len(run["next"]) + 60)
        st.caption(
            "· is a space and ⏎ a newline. Sampling draws from this distribution (after temperature, "
            "top-k and top-p), one token at a time. Turn on *Colour by probability* above to "
            "see how likely each generated token was."
        )


controls_and_results(prompt)
