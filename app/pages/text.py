"""Text page: continue a prompt with an LSTM or a GRU, several candidates, why-this-word, comparison.

Every control keeps its value for the whole session (``persist_state="session"``), also while the user is on
another page. The prompt box reruns the page; the controls below it live in a fragment, so moving a slider
reruns only that part (the prompt is not tokenised again).
"""

import streamlit as st

from app.charts import next_token_chart
from app.components.typing import typing_view
from app.links import bad_link_message, flag, float_in, int_in, new_seed, one_of, read_link, text_up_to
from app.model_cache import model_summary, prompt_was_cut, require_models, shared_sampler
from app.render import PROB_LEGEND, plain, text_html, tokens_html
from genmodels.core.errors import GenmodelsError, SettingsError
from genmodels.infer.repetition import MAX_NGRAM, MAX_PENALTY
from genmodels.infer.sampling import CONTEXT_TOKENS, MAX_PROMPT_CHARS, Settings, TextSteering
from genmodels.infer.stopping import MAX_SENTENCES

DEFAULT_PROMPT = "ROMEO.\nBut soft, what light through yonder window breaks?\n"
EMPTY_PROMPT = "Type a few words to start from"
MAX_SHOWN_CANDIDATES = 8
MAX_SEED_VALUE = 2**31 - 1
KEEP = "session"  # widget values survive a visit to another page
TYPE_MODE, GENERATE_MODE = "Type with suggestions", "Generate a continuation"
MAX_LINK_PROMPT = 2000  # characters of the prompt that go into a link (URLs get unwieldy beyond)
# Each control's range: the widget's bounds and the link's check are the same numbers.
TEMPERATURE = (0.0, 2.0)
TOP_K = (0, 10_000)
TOP_P = (0.05, 1.0)
LENGTH = (10, 1000)
PENALTY = (1.0, min(MAX_PENALTY, 3.0))


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
    }


# Set by the callbacks below as well as by the user, so initialised here and not through ``value=``.
st.session_state.setdefault("t_prompt_text", DEFAULT_PROMPT)
st.session_state.setdefault("t_seed", new_seed())


def roll_seed() -> None:
    st.session_state.t_seed = new_seed()


def cut_long_prompt() -> None:
    """A prompt over the limit keeps its first MAX_PROMPT_CHARS characters (the browser would drop it all)."""
    prompt = st.session_state.t_prompt_text
    if len(prompt) > MAX_PROMPT_CHARS:
        st.session_state.t_prompt_text = prompt[:MAX_PROMPT_CHARS]
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
    }
    params = {k: str(v) for k, v in values.items()}
    st.session_state.t_link_applied = params  # the page's own link: not applied again
    st.query_params.from_dict(params)


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
    default=TYPE_MODE,
    key="t_mode",
    persist_state=KEEP,
    label_visibility="collapsed",
)


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
    if st.session_state.pop("t_autogo", False):
        go = True  # opened from a link
    if go:
        st.session_state.t_results = generate(prompt, chosen, settings, prompt_msg, settings_msg, stream_box)
        if st.session_state.t_results:
            write_link(prompt, chosen[0].label, settings)
            if len(prompt) > MAX_LINK_PROMPT:
                st.session_state.t_results["link_cut"] = len(prompt)
    show_results(st.session_state.get("t_results"))


def read_settings(models: list) -> dict:
    """The controls under the prompt, each with its default set once (``value=``) and kept for the session."""
    c1, c2, c3, c4 = st.columns(4)
    model = model_radio(c1, models)
    temperature = c2.slider(
        "Temperature",
        *TEMPERATURE,
        0.8,
        0.05,
        key="t_temp",
        persist_state=KEEP,
        help="0 = greedy (always the most likely token); higher = more surprising.",
    )
    top_k = c3.number_input(
        "Top-k",
        *TOP_K,
        0,
        1,
        key="t_topk",
        persist_state=KEEP,
        help="Sample only among the k most likely tokens; 0 = off.",
    )
    top_p = c4.slider(
        "Top-p",
        *TOP_P,
        1.0,
        0.05,
        key="t_topp",
        persist_state=KEEP,
        help="Sample only among the most likely tokens that together reach this probability; 1 = off.",
    )
    d1, d2, d3, d4 = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
    length = d1.slider(
        "Length (tokens)",
        *LENGTH,
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
        "steering": read_steering(),
        "adapt": st.session_state.get("t_adapt", False),
        "settings": Settings(
            temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), seed=int(seed), n=int(n)
        ),
    }


def read_steering() -> TextSteering:
    """Stop rules and repetition control, in the Advanced expander."""
    with st.expander("Advanced: where to stop, repetition", icon=":material/tune:"):
        a1, a2, a3 = st.columns(3)
        eol = a1.checkbox("Stop at the end of the line", key="t_eol", persist_state=KEEP)
        eos = a1.checkbox(
            "Stop at the end of the speech",
            key="t_eos",
            persist_state=KEEP,
            help="A blank line or the next speaker's name ends a speech.",
        )
        sentences = a2.number_input(
            "Stop after N sentences",
            0,
            MAX_SENTENCES,
            0,
            1,
            key="t_sentences",
            persist_state=KEEP,
            help="0 = off.",
        )
        penalty = a3.slider(
            "Repetition penalty",
            1.0,
            min(MAX_PENALTY, 3.0),
            1.0,
            0.05,
            key="t_rep",
            persist_state=KEEP,
            help="Makes tokens already in the text less likely; 1 = off.",
        )
        ngram = a3.number_input(
            "No-repeat n-gram size",
            0,
            MAX_NGRAM,
            0,
            1,
            key="t_ngram",
            persist_state=KEEP,
            help="Never repeat a run of this many tokens; 0 = off.",
        )
        st.checkbox(
            "Adapt to my text",
            key="t_adapt",
            persist_state=KEEP,
            help="Before generating, a private copy of the model takes small learning steps on your prompt "
            "(its last 1,024 tokens), so its names and words become likelier. The shared model never changes; "
            "it takes about a second.",
        )
    return TextSteering(
        end_of_line=bool(eol),
        end_of_speech=bool(eos),
        sentences=int(sentences),
        repetition_penalty=float(penalty),
        no_repeat_ngram=int(ngram),
    )


def note_long_prompt(prompt: str, model, prompt_msg) -> bool:
    """Say when the library reads only the last CONTEXT_TOKENS tokens; False when the model cannot load."""
    try:
        cut = bool(prompt.strip()) and prompt_was_cut(model.path, prompt)
    except GenmodelsError as e:
        prompt_msg.error(plain(f"The model {model.name} could not be loaded: {e}"))
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
        gens = [(m, shared_sampler(m.path)) for m in chosen]
        if controls.get("adapt"):
            with st.spinner("Adapting to your text…"):
                gens = [(m, g.adapted_to(prompt)) for m, g in gens]
        for _, g in gens:
            settings.checked(g.vocab_size)
        controls["steering"].checked()
    except SettingsError as e:
        settings_msg.error(plain(e))
        return None
    except GenmodelsError as e:
        settings_msg.error(plain(f"A model could not be loaded: {e}"))
        return None
    try:
        stream_to = stream_box if len(gens) == 1 and settings.n == 1 else None
        runs = [run_model(m, g, prompt, controls["length"], settings, stream_to, controls["steering"]) for m, g in gens]
    except SettingsError as e:
        stream_box.empty()
        settings_msg.error(plain(e))
        return None
    except GenmodelsError as e:
        stream_box.empty()
        prompt_msg.error(plain(e))
        return None
    return {"prompt": prompt, "settings": settings, "length": controls["length"], "runs": runs}


def run_model(m, g, prompt: str, length: int, settings: Settings, stream_box, steering: TextSteering) -> dict:
    """One model's candidates, streamed into ``stream_box`` as they are written when there is one."""
    if stream_box is not None:
        with stream_box.container(border=True):
            st.caption(f"{m.label} is writing…")
            stream = g.stream_text(prompt, length, settings, steering)
            st.write_stream(plain(d[0]) for d in stream)
        results = stream.results  # the streamed text, with each token's probability
        stream_box.empty()
    else:
        with st.spinner(f"{m.label} is writing {settings.n} candidate(s)…"):
            results = g.complete(prompt, length, settings, steering)
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
    st.caption(
        ":material/link: The address bar now holds a link that makes this result again (same prompt, settings "
        "and random seed)."
        + (
            f" Your prompt has {res['link_cut']:,} characters; the link holds only its first {MAX_LINK_PROMPT:,}, "
            "so it reproduces the result of that shorter prompt."
            if res.get("link_cut")
            else ""
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
