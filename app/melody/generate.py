"""The settings column (model, bars, temperature, steering) and Generate: a new version of the melody in the
session's history."""

import dataclasses
import time

import streamlit as st

from app.links import AUTO_STYLE, melody_link_params
from app.melody.common import KEEP, MAX_HISTORY, MAX_SEED_VALUE, SRC_FILE, key_text, program_label, roll_seed
from app.model_cache import shared_sampler
from app.render import plain, sanitise_filename
from genmodels.core.errors import GenmodelsError
from genmodels.infer.constraints import KEY_STRENGTHS, MelodySteering
from genmodels.infer.decoding import Settings
from genmodels.infer.melody_rows import continuation_of
from genmodels.learn.melody_data import tune_style
from genmodels.music.form import PART_BARS, Form
from genmodels.tokenizers.melody import STYLE_NAMES, STYLES

FORM_SHAPES = ("free", "AABB", "AB", "ABAC")


# -- the settings (right column): a fragment, so a change reruns only this part --------------------
def keep_a_strength() -> None:
    """A click on the selected segment clears a segmented control: the choice shown before comes back."""
    if st.session_state.get("m_stay") is None:
        st.session_state.m_stay = st.session_state.get("m_stay_shown", "gentle")


def steering_controls() -> None:
    # One control a row: the settings column is narrow, and side by side their labels were cut off.
    shown = st.segmented_control(
        "Stay in key",
        KEY_STRENGTHS,
        key="m_stay",
        persist_state=KEEP,
        default="gentle",  # measured: scale consistency 0.996, pitch-class entropy within 0.03 bits of real tunes
        on_change=keep_a_strength,
        help="Off: the model's own choice. Gentle: notes outside the scale are made much less likely. Strict: "
        "notes outside the scale are never chosen.",
    )
    if shown is not None:
        st.session_state.m_stay_shown = shown
    st.toggle(
        "End on tonic",
        key="m_end",
        persist_state=KEEP,
        help="The last bar is complete and its last note is the tonic, an ending the model chooses among "
        "those that do this.",
    )


@st.fragment
def settings_column(prompt, link, no_link: str, by_label: dict) -> None:
    st.subheader("Settings")
    st.radio("Model", list(by_label), key="m_model", horizontal=True, persist_state=KEEP)
    st.selectbox(
        "Instrument (General MIDI)", list(range(128)), key="m_program", persist_state=KEEP, format_func=program_label
    )
    sampling_controls()
    form_controls()
    steering_controls()
    msg = st.container()
    go = st.button("Generate melody", type="primary", key="m_go", icon=":material/music_note:", width="stretch")
    keep = st.button(
        "Use the prompt as it is", key="m_keep", icon=":material/check:", width="stretch",
        help="No continuation: the prompt becomes the melody below, to harmonise, play, rework or download.",
    )  # fmt: skip
    if (go and generate(prompt, link, no_link, by_label, msg)) or (keep and keep_prompt(prompt, by_label, msg)):
        st.rerun()  # the new melody is shown below, outside this fragment


def sampling_controls() -> None:
    """Temperature, length, top-p, top-k and the random seed."""
    t1, t2 = st.columns(2)
    t1.slider(
        "Temperature", 0.0, 2.0, 1.0, 0.05, key="m_temp", persist_state=KEEP,
        help="0 = always the most likely note (greedy: the melody soon drones on one note); higher = more adventurous.",
    )  # fmt: skip
    t2.slider(
        "Length (bars)", 1, 32, 8, 1, key="m_bars", persist_state=KEEP,
        disabled=st.session_state.get("m_form", "free") != "free",
        help="Bars added after the prompt (a form sets the length itself).",
    )  # fmt: skip
    t3, t4 = st.columns(2)
    t3.slider(
        "Top-p", 0.05, 1.0, 1.0, 0.05, key="m_topp", persist_state=KEEP,
        help="Sample only among the most likely notes that together reach this probability; 1 = off.",
    )  # fmt: skip
    t4.number_input(
        "Top-k",
        0,
        200,
        0,
        1,
        key="m_topk",
        persist_state=KEEP,
        help="Sample only among the k most likely tokens; 0 = off.",
    )
    b1, b2 = st.columns([4, 1], vertical_alignment="bottom")
    b1.number_input(
        "Random seed", 0, MAX_SEED_VALUE, step=1, key="m_seed", persist_state=KEEP,
        help="Only the random number generator's seed: the same prompt, settings and random seed always give "
        "the same melody.",
    )  # fmt: skip
    b2.button(":material/casino:", key="m_roll", on_click=roll_seed, help="Draw a new random seed")


def form_controls() -> None:
    """The tune's form: as the model writes it, or parts that repeat (AABB, AB, ABAC) of 4 or 8 bars."""
    shape = st.selectbox(
        "Form", FORM_SHAPES, key="m_form", persist_state=KEEP, format_func=form_label,
        help="As the model writes: it continues freely. AABB, AB, ABAC: parts of equal length, a repeated part "
        "played exactly again (with repeat signs in the score and the ABC), each part ending on a cadence and "
        "the tune on the tonic; the length then comes from the form, the prompt opens part A.",
    )  # fmt: skip
    fixed = shape != "free"
    f2, f3 = st.columns(2, vertical_alignment="bottom")
    f2.selectbox("Part bars", PART_BARS, index=1, key="m_part_bars", persist_state=KEEP, disabled=not fixed)
    f3.checkbox(
        "Endings", key="m_endings", persist_state=KEEP, disabled=not fixed,
        help="First and second endings: a repeated part ends once on a half cadence (first ending) and once on "
        "the tonic (second ending).",
    )  # fmt: skip
    st.selectbox(
        "Style", [AUTO_STYLE, *STYLES], key="m_style", persist_state=KEEP, format_func=style_label,
        help="The kind of tune the model writes. As the prompt suggests: a tune of the tune book goes on as the "
        "kind its collection is; other notes, the model weighs how likely they are as each kind and draws one. "
        "Fiddle tunes (Ryan's, O'Neill's and Aird's books) repeat their parts; folk songs (Essen) are sung "
        "through; chorales are Bach's.",
    )  # fmt: skip


def style_label(style: str) -> str:
    return "As the prompt suggests" if style == AUTO_STYLE else STYLE_NAMES[style].capitalize()


def form_label(shape: str) -> str:
    return "As the model writes" if shape == "free" else shape


def current_settings() -> Settings:
    ss = st.session_state
    return Settings(
        temperature=float(ss.get("m_temp", 0.9)),
        top_k=int(ss.get("m_topk", 0)),
        top_p=float(ss.get("m_topp", 1.0)),
        seed=int(ss.m_seed),
    )


def current_steering() -> MelodySteering:
    ss = st.session_state
    form = Form(ss.get("m_form") or "free", int(ss.get("m_part_bars", 8)), bool(ss.get("m_endings", False)))
    style = ss.get("m_style") or AUTO_STYLE
    return MelodySteering(
        stay_in_key=ss.get("m_stay") or "off",
        end_on_tonic=bool(ss.get("m_end", False)),
        form=form,
        style=None if style == AUTO_STYLE else style,
    )


def generate(prompt, link, no_link: str, by_label: dict, msg) -> bool:
    """Continue ``prompt`` and add the result to the history; False after a message."""
    ss = st.session_state
    if prompt is None:
        no_file = ss.m_source == SRC_FILE and ss.get("m_file") is None
        msg.error("Upload a MIDI file first." if no_file else "Fix the prompt first: see the message on the left.")
        return False
    model = by_label.get(ss.get("m_model")) or next(iter(by_label.values()))
    settings, steering, bars = current_settings(), current_steering(), int(ss.get("m_bars", 8))
    try:
        gen = shared_sampler(model.path)
        steering = with_tune_style(steering, link, gen.tok)
        what = f"{steering.form.shape} tune" if not steering.form.free else f"{bars} bars"
        with st.spinner(f"{model.label} is composing {what}…"):
            result = gen.generate_melody(prompt, bars=bars, settings=settings, steering=steering)[0]
    except GenmodelsError as e:
        msg.error(plain(e))
        return False
    add_version(
        result.full,
        action="generated",
        model=model,
        settings=settings,
        steering=steering,
        prompt_notes=len(result.prompt.notes),
        prompt_end=result.prompt.end,
        cont=result.continuation,
        overruled=getattr(result, "overruled", None),
        style=result.style,
        link=None if link is None else melody_link_params(link, ss),
        link_note=no_link,
        bars=bars,
    )
    return True


def with_tune_style(steering: MelodySteering, link: dict | None, tok) -> MelodySteering:
    """Where the style is left to the prompt and the prompt is a tune of the tune book, the tune's own kind
    (its collection's style): two bars say less about it than where it comes from."""
    if steering.style is not None or not link or link.get("src") != "tune":
        return steering
    own = tune_style(tok, link.get("tune", ""))
    return dataclasses.replace(steering, style=own) if own else steering


def keep_prompt(prompt, by_label: dict, msg) -> bool:
    """The prompt itself as a new version of the melody (nothing generated); False after a message."""
    if prompt is None:
        no_file = st.session_state.m_source == SRC_FILE and st.session_state.get("m_file") is None
        msg.error("Upload a MIDI file first." if no_file else "Fix the prompt first: see the message on the left.")
        return False
    model = by_label.get(st.session_state.get("m_model")) or next(iter(by_label.values()))
    add_version(
        prompt,
        "your melody, as it is",
        model,
        current_settings(),
        None,
        len(prompt.notes),
        prompt_end=prompt.end,
        link_note="This version is the prompt itself: a link would make a continuation of it, so it has none.",
    )
    return True


def split_at(full, prompt_end: int | None) -> tuple[int, object | None]:
    """(how many notes of ``full`` belong to the prompt, the continuation alone or None) for a prompt that ends
    at tick ``prompt_end``: bars regenerated inside the prompt change how many notes it holds."""
    if not prompt_end:
        return 0, None
    k = sum(n.start < prompt_end for n in full.notes)
    return k, (continuation_of(full, prompt_end) if k < len(full.notes) else None)


def add_version(full, action: str, model, settings: Settings, steering, prompt_notes: int, parent=None, **more):
    """A new version of the melody at the end of the history, picked (the earlier ones stay: undo)."""
    hist = st.session_state.m_history
    program = parent["program"] if parent else int(st.session_state.get("m_program", 0))
    name = sanitise_filename(
        f"{model.name}-{full.meter[0]}-{full.meter[1]}-"
        f"{key_text(full.key).replace(' ', '')}-t{settings.temperature:g}-seed{settings.seed}"
    )
    entry = {
        "n": hist[-1]["n"] + 1 if hist else 1,
        "time": time.strftime("%H:%M:%S"),
        "action": action,
        "model": model.label,
        "model_name": model.name,
        "full": full,
        "prompt_notes": prompt_notes,
        "prompt_end": parent.get("prompt_end") if parent else None,
        "cont": None,
        "program": program,
        "settings": settings,
        "steering": steering,
        "bars": full.n_bars,
        "name": name,
        "link": parent.get("link") if parent else None,
        "link_note": parent.get("link_note", "") if parent else "",
        "derived": parent is not None,
    }
    entry.update(more)
    if parent is not None:
        entry["action"] = f"{action} (from #{parent['n']})"
    hist.append(entry)
    del hist[:-MAX_HISTORY]
    st.session_state.m_pick_next = entry["n"]  # picked on the next run: the picker may already be drawn
