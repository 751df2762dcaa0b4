"""Generating on the Text page and showing the results: streamed text, candidates side by side, the comparison
of two models, and why a token was chosen."""

import streamlit as st

from app.charts import next_word_chart
from app.model_cache import prompt_was_cut, shared_sampler
from app.render import PROB_LEGEND, plain, text_html, tokens_html
from app.text.common import EMPTY_PROMPT, KEEP, MAX_LINK_PROMPT, keep_candidate
from genmodels.core.errors import GenmodelsError, SettingsError
from genmodels.infer.decoding import CONTEXT_TOKENS, Settings
from genmodels.infer.suggest import word_distribution
from genmodels.infer.text_rows import TextSteering


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
    adapted = bool(controls.get("adapt"))
    return {"prompt": prompt, "settings": settings, "length": controls["length"], "runs": runs, "adapted": adapted}


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
    words = word_distribution(g.model, g.tok, prompt, k=12)
    return {"label": m.label, "name": m.name, "results": results, "next": words}


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
                f"{res['length']} tokens, then to the word's end",
                f"random seed {s.seed}",
                *(["adapted to your prompt"] if res.get("adapted") else []),
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
    show_next_word_charts(res["runs"])


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


def show_next_word_charts(runs: list[dict]) -> None:
    with st.expander(
        "Why this word? The model's top guesses for the next word after your prompt", icon=":material/bar_chart:"
    ):
        for col, run in zip(st.columns(len(runs)), runs, strict=True):
            with col:
                if len(runs) > 1:
                    st.markdown(f"**{run['label']}**")
                chart = next_word_chart(run["next"])
                st.altair_chart(chart, width="stretch", height=24 * len(run["next"]) + 60)
        st.caption(
            "Whole words, spelled out from the model's word pieces; when the prompt ends inside a word they "
            "complete it, given the letters typed. Sampling draws one piece at a time from the model's "
            "distribution (after temperature, top-k and top-p). Turn on *Colour by probability* above to "
            "see how likely each generated piece was."
        )
