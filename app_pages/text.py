"""Text page: continue a seed with an LSTM or a GRU, several candidates, why-this-word, comparison."""

import re
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # the repo root, also when a page runs alone (AppTest)
    sys.path.insert(0, _ROOT)

import streamlit as st

from app_support import (PROB_LEGEND, require_models, get_generator, keep_state, new_seed,
                         next_token_chart, text_html, tokens_html)
from genmodels.errors import GenmodelsError, SettingsError
from genmodels.sampling import CONTEXT_TOKENS, MAX_PROMPT_CHARS, Settings

DEFAULT_SEED = "ROMEO.\nBut soft, what light through yonder window breaks?\n"
EMPTY_SEED = "Type a few words to start from"
MAX_SHOWN_CANDIDATES = 8
MAX_SEED_VALUE = 2**31 - 1

keep_state("t_seed_text", "t_model", "t_temp", "t_topk", "t_topp", "t_len", "t_n", "t_seed", "t_compare", "t_colour")
st.session_state.setdefault("t_seed_text", DEFAULT_SEED)
st.session_state.setdefault("t_seed", new_seed())


def md_escape(s: str) -> str:
    """Plain text → markdown that shows exactly that text (for st.write_stream, which renders markdown)."""
    s = re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$&=:])", r"\\\1", s)
    return s.replace("  ", "\u00a0\u00a0").replace("\n", "  \n")


def roll_seed() -> None:
    st.session_state.t_seed = new_seed()


def keep_candidate(text: str) -> None:
    st.session_state.t_seed_text = text[-MAX_PROMPT_CHARS:]
    st.session_state.t_results = None
    st.session_state.t_kept = True


st.title("Write with an LSTM or a GRU")
st.caption("Recurrent language models trained on Shakespeare's plays and poems. Type a beginning, choose a "
           "model and how adventurous it may be, and press **Generate**.")

by_label = require_models("text")
models = list(by_label.values())

if st.session_state.pop("t_kept", False):
    st.toast("The candidate is now your seed. Press **Generate** to continue from it.")

seed_text = st.text_area("Seed text", key="t_seed_text", height=140, max_chars=MAX_PROMPT_CHARS,
                         help="The model continues this text. Newlines and spaces count.")
seed_msg = st.container()

c1, c2, c3, c4 = st.columns(4)
model_label = c1.radio("Model", list(by_label), key="t_model", horizontal=True,
                       help="LSTM and GRU: two kinds of recurrent network, trained the same way.")
temperature = c2.slider("Temperature", 0.0, 2.0, 0.8, 0.05, key="t_temp",
                        help="0 = greedy (always the most likely token); higher = more surprising.")
top_k = c3.number_input("Top-k", 0, 10_000, 0, 1, key="t_topk",
                        help="Sample only among the k most likely tokens; 0 = off.")
top_p = c4.slider("Top-p", 0.05, 1.0, 1.0, 0.05, key="t_topp",
                  help="Sample only among the most likely tokens that together reach this probability; 1 = off.")

d1, d2, d3, d4 = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
length = d1.slider("Length (tokens)", 10, 1000, 200, 10, key="t_len",
                   help="A token is a word or a piece of one (about 3-4 characters on average).")
n = d2.number_input("Candidates", 1, MAX_SHOWN_CANDIDATES, 1, 1, key="t_n",
                    help="Several continuations of the same seed, shown side by side.")
with d3:
    s1, s2 = st.columns([3, 1], vertical_alignment="bottom")
    seed = s1.number_input("Random seed", 0, MAX_SEED_VALUE, step=1, key="t_seed",
                           help="The same seed and settings always give the same text.")
    s2.button(":material/casino:", key="t_roll", on_click=roll_seed, help="Draw a new random seed")
compare_possible = len(models) >= 2
compare = d4.checkbox(f"Compare {models[0].label} and {models[1].label}" if compare_possible else "Compare models",
                      key="t_compare", disabled=not compare_possible,
                      help="Run both models on the same seed and settings, side by side.")
settings_msg = st.container()

go = st.button("Generate", type="primary", key="t_go", icon=":material/auto_awesome:")
stream_box = st.empty()

chosen = [models[0], models[1]] if compare and compare_possible else [by_label.get(model_label, models[0])]

# The seed note: the library reads only the last CONTEXT_TOKENS tokens of a long seed.
try:
    first_gen = get_generator(chosen[0].path)
except GenmodelsError as e:
    seed_msg.error(f"The model {chosen[0].name} could not be loaded: {e}")
    st.stop()
if seed_text.strip() and first_gen.prompt_was_cut(seed_text):
    seed_msg.info(f"Your seed is long: the model reads only its last {CONTEXT_TOKENS:,} tokens "
                  "(about the last few thousand characters). The rest is kept on the page but not used.")

if go:
    settings = Settings(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p),
                        seed=int(seed), n=int(n))
    if not seed_text.strip():
        seed_msg.error(EMPTY_SEED)
        st.session_state.t_results = None
    else:
        try:
            gens = [(m, get_generator(m.path)) for m in chosen]
            for _, g in gens:
                settings.checked(g.vocab_size)
        except SettingsError as e:
            settings_msg.error(str(e))
            gens = []
        except GenmodelsError as e:
            settings_msg.error(f"A model could not be loaded: {e}")
            gens = []
        runs = []
        try:
            for m, g in gens:
                if len(gens) == 1 and settings.n == 1:  # stream it in, then show it formatted
                    with stream_box.container(border=True):
                        st.caption(f"{m.label} is writing…")
                        stream = g.stream_text(seed_text, int(length), settings)
                        st.write_stream(md_escape(d[0]) for d in stream)
                    results = stream.results  # the streamed text, with each token's probability
                    stream_box.empty()
                else:
                    with st.spinner(f"{m.label} is writing {settings.n} candidate(s)…"):
                        results = g.complete(seed_text, int(length), settings)
                runs.append({"label": m.label, "name": m.name, "results": results,
                             "next": g.next_token_probs(seed_text, k=12)})
        except SettingsError as e:
            stream_box.empty()
            settings_msg.error(str(e))
            runs = []
        except GenmodelsError as e:
            stream_box.empty()
            seed_msg.error(str(e))
            runs = []
        st.session_state.t_results = {"seed": seed_text, "settings": settings, "length": int(length),
                                      "runs": runs} if runs else None

res = st.session_state.get("t_results")
if res:
    s: Settings = res["settings"]
    st.divider()
    head, tog = st.columns([2, 1], vertical_alignment="center")
    head.subheader("Result" if len(res["runs"]) == 1 and s.n == 1 else "Candidates")
    colour = tog.toggle("Colour by probability", key="t_colour")
    st.caption(" · ".join([
        " and ".join(run["label"] for run in res["runs"]),
        f"temperature {s.temperature:g}" + (" (greedy)" if s.temperature == 0 else ""),
        f"top-k {s.top_k or 'off'}", f"top-p {s.top_p:g}" if s.top_p < 1 else "top-p off",
        f"{res['length']} tokens", f"random seed {s.seed}"]))
    if colour:
        st.html(PROB_LEGEND)

    def card(run: dict, i: int, r) -> None:
        with st.container(border=True):
            if s.n > 1:
                st.caption(f"Candidate {i + 1}")
            st.html(tokens_html(r.prompt, r.tokens) if colour else text_html(r.prompt, r.continuation))
            st.button("Keep this and continue", key=f"t_keep_{run['name']}_{i}", on_click=keep_candidate,
                      args=(r.prompt + r.continuation,), icon=":material/arrow_forward:",
                      help="This text becomes the new seed.")

    if len(res["runs"]) > 1:
        for col, run in zip(st.columns(len(res["runs"])), res["runs"]):
            with col:
                st.markdown(f"**{run['label']}** (`{run['name']}`)")
                for i, r in enumerate(run["results"]):
                    card(run, i, r)
    else:
        run = res["runs"][0]
        per_row = min(len(run["results"]), 3 if s.n != 4 else 2)
        for start in range(0, len(run["results"]), per_row):
            cols = st.columns(per_row)
            for j, r in enumerate(run["results"][start:start + per_row]):
                with cols[j]:
                    card(run, start + j, r)

    with st.expander("Why this word? The model's top guesses for the next token after your seed",
                     icon=":material/bar_chart:"):
        cols = st.columns(len(res["runs"]))
        for col, run in zip(cols, res["runs"]):
            with col:
                if len(res["runs"]) > 1:
                    st.markdown(f"**{run['label']}**")
                chart = next_token_chart(run["next"])
                st.altair_chart(chart, width="stretch", height=24 * len(run["next"]) + 60)
        st.caption("· is a space and ⏎ a newline. Sampling draws from this distribution (after temperature, "
                   "top-k and top-p), one token at a time. Turn on *Colour by probability* above to "
                   "see how likely each generated token was.")
