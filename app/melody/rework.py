"""Working on the melody on show: regenerate bars, keep the rhythm with new pitches, transpose."""

import dataclasses

import streamlit as st

from app.melody.common import (
    AS_PROMPT,
    CANDIDATE_PASSAGES,
    check_upload,
    forget,
    key_text,
    model_of,
    parse_midi,
    roll_seed,
    store_upload,
)
from app.melody.generate import add_version, current_settings, current_steering, split_at
from app.model_cache import require_models, shared_sampler
from app.render import plain
from genmodels.core.errors import GenmodelsError
from genmodels.music import PITCH_RANGE, note_name
from genmodels.music.instruments import instrument_name, instrument_range, octave_shift_into
from genmodels.music.scales import transpose


def work_on_melody(h: dict) -> None:
    """Regenerate bars, keep the rhythm with new pitches, transpose: each adds a version to the history."""
    st.markdown("**Work on this melody** (with the model, temperature, random seed and key settings above)")
    c1, c2, c3 = st.columns(3, border=True)
    with c1:
        regenerate_box(h)
    with c2:
        repitch_box(h)
    with c3:
        transpose_box(h)


def bar_range_problem(first: int, last: int, n_bars: int) -> str | None:
    if first > last:
        return f"Bars {first} to {last} are reversed: the first bar must not come after the last."
    if first < 1 or last > n_bars:
        return f"Bars {first} to {last} are outside the melody: it has bars 1 to {n_bars}."
    return None


def regenerate_box(h: dict) -> None:
    full = h["full"]
    st.markdown("Regenerate bars")
    r1, r2 = st.columns(2)
    first = r1.number_input("From bar", 1, 999, min(3, full.n_bars), 1, key="m_rb_from")
    last = r2.number_input("To bar", 1, 999, min(4, full.n_bars), 1, key="m_rb_to")
    msg = st.container()
    go = st.button(
        "Regenerate these bars",
        key="m_regen",
        icon=":material/autorenew:",
        on_click=roll_seed,  # every press its own random seed: pressing again gives other bars
        help=f"The bars before and after stay. The model writes {CANDIDATE_PASSAGES} candidate passages and "
        "keeps the one that makes the following bars most likely. Each press draws a new random seed.",
    )
    if not go:
        return
    problem = bar_range_problem(int(first), int(last), full.n_bars)
    if problem:
        msg.error(problem)
        return
    if regenerate(h, int(first), int(last), msg):
        st.rerun()


def same_as_a_version(full) -> dict | None:
    """The version in the history with exactly these notes, if any: a copy is not stored twice."""
    return next((v for v in st.session_state.m_history if v["full"].notes == full.notes), None)


def regenerate(h: dict, first: int, last: int, msg) -> bool:
    """Bars ``first``..``last`` of ``h`` written again as a new version; False after a message."""
    model, settings, steering = model_of(h), current_settings(), current_steering()
    try:
        with st.spinner(f"Regenerating bars {first}–{last}…"):
            result = shared_sampler(model.path).regenerate_bars(
                h["full"], first, last, settings, steering, candidates=CANDIDATE_PASSAGES
            )
    except GenmodelsError as e:
        msg.error(plain(e))
        return False
    if (same := same_as_a_version(result.full)) is not None:
        again = "" if same is h else f" as in version #{same['n']}"
        msg.info(
            f"The model wrote the same bars again{again} (random seed {settings.seed}), so no version was added. "
            "Press again for another random seed, or raise the temperature."
        )
        return False
    prompt_notes, cont = split_at(result.full, h.get("prompt_end"))
    add_version(
        result.full,
        f"regenerated bars {first}–{last}",
        model,
        settings,
        steering,
        prompt_notes,
        parent=h,
        cont=cont,
        overruled=getattr(result, "overruled", None),
    )
    return True


def rhythm_source(h: dict):
    """The melody whose rhythm is kept: this one or an uploaded file (kept for the session)."""
    src = st.radio("Rhythm of", ["this melody", "an uploaded MIDI file"], key="m_rhythm_src", horizontal=True)
    if src == "this melody":
        return h["full"], "this melody"
    stored = st.session_state.get("m_rhythm_file")
    if stored is None:
        st.file_uploader(
            "MIDI file with the rhythm",
            type=["mid", "midi"],
            key="m_rhythm_upload",
            on_change=store_upload,
            args=("m_rhythm_upload", "m_rhythm_file"),
        )
        return None, ""
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.caption(f"Rhythm from {plain(stored['name'])}")
    c2.button("Clear", key="m_rhythm_clear", on_click=forget, args=("m_rhythm_file",))
    try:
        return parse_midi(check_upload(stored["data"])), stored["name"]
    except GenmodelsError as e:
        st.error(plain(f"{stored['name']}: {e}"))
        return None, stored["name"]


def repitch_box(h: dict) -> None:
    st.markdown("Keep the rhythm, new pitches")
    rhythm, origin = rhythm_source(h)
    msg = st.container()
    go = st.button(
        "New pitches",
        key="m_repitch",
        icon=":material/shuffle:",
        help="Durations, rests and bar lines stay exactly; the model chooses every pitch, in the key above "
        "(stay in key and end on the tonic apply).",
    )
    if not go:
        return
    if rhythm is None:
        msg.error("Upload a MIDI file with the rhythm first.")
        return
    if not rhythm.notes:
        msg.error("The rhythm source has no notes.")
        return
    ss = st.session_state
    tonic = rhythm.key[0] if ss.m_tonic == AS_PROMPT else int(ss.m_tonic)
    mode = rhythm.key[1] if ss.m_mode == AS_PROMPT else ss.m_mode
    rhythm = dataclasses.replace(rhythm, key=(tonic, mode))
    model, settings, steering = model_of(h), current_settings(), current_steering()
    try:
        with st.spinner("Choosing new pitches…"):
            result = shared_sampler(model.path).repitch(rhythm, settings, steering)[0]
    except GenmodelsError as e:
        msg.error(plain(e))
        return
    if origin == "this melody":
        add_version(result.full, "new pitches, same rhythm", model, settings, steering, 0, parent=h, prompt_end=None)
    else:
        add_version(
            result.full,
            f"new pitches on the rhythm of {origin}",
            model,
            settings,
            steering,
            0,
            link_note="A melody on an uploaded rhythm cannot go in a link (a URL holds text, not files).",
        )
    st.rerun()


def transpose_bounds(full) -> tuple[int, int]:
    """The shifts that keep every note inside the pitch range the model and its tokenizer read."""
    if not full.notes:
        return 0, 0
    return PITCH_RANGE[0] - min(full.pitches), PITCH_RANGE[1] - max(full.pitches)


def transpose_box(h: dict) -> None:
    st.markdown("Transpose")
    lo, hi = transpose_bounds(h["full"])
    if not lo <= st.session_state.get("m_transpose", 0) <= hi:  # another version may allow less
        st.session_state.m_transpose = 0
    n = st.number_input(
        "Semitones (up +, down −)",
        lo,
        hi,
        0,
        1,
        key="m_transpose",
        help=f"From {lo:+d} to {hi:+d}: a shift in this range keeps every note from "
        f"{note_name(PITCH_RANGE[0])} to {note_name(PITCH_RANGE[1])}, the range the model writes and reads.",
    )
    st.caption(f"{lo:+d} to {hi:+d} keeps every note in the model's range.")
    msg = st.container()
    if not st.button("Transpose", key="m_transpose_go", icon=":material/swap_vert:"):
        return
    if int(n) == 0:
        msg.info("Transposing by 0 semitones changes nothing.")
        return
    if add_transposed(h, int(n), msg):
        st.rerun()


def add_transposed(h: dict, n: int, msg, why: str = "") -> bool:
    """Add ``h`` moved by ``n`` semitones as a new version (False, with a message in ``msg``, when it cannot)."""
    try:
        moved = transpose(h["full"], n, *PITCH_RANGE)
    except GenmodelsError as e:
        msg.error(plain(e))
        return False
    entry_cont = h.get("cont")
    if entry_cont is not None:
        try:
            entry_cont = transpose(entry_cont, n, *PITCH_RANGE)
        except GenmodelsError:
            entry_cont = None
    model = next((m for m in require_models("melody").values() if m.name == h["model_name"]), model_of(h))
    add_version(
        moved,
        f"transposed {n:+d} to {key_text(moved.key)}{why}",
        model,
        h["settings"],
        h.get("steering"),
        h["prompt_notes"],
        parent=h,
        cont=entry_cont,
    )
    return True


def range_warning(h: dict) -> None:
    """Notes the chosen instrument cannot play are said, with a button that moves the melody by octaves into
    its range when that is enough."""
    r = instrument_range(h["program"])
    pitches = h["full"].pitches
    if r is None or not r.outside(pitches):
        return
    name = instrument_name(h["program"]).lower()
    msg = st.container()
    msg.warning(
        f"{r.outside(pitches)} of {len(pitches)} notes lie outside the {name}'s range "
        f"({note_name(r.low)} to {note_name(r.high)}): this melody goes from {note_name(min(pitches))} to "
        f"{note_name(max(pitches))}."
    )
    shift = octave_shift_into(pitches, r)
    if shift is None or not PITCH_RANGE[0] <= min(pitches) + shift <= max(pitches) + shift <= PITCH_RANGE[1]:
        msg.caption(
            "No whole-octave move fits it in: use Transpose below, or regenerate the bars out of range, or pick "
            "an instrument with a wider range."
        )
        return
    octaves = abs(shift) // 12
    label = f"Move it {'up' if shift > 0 else 'down'} {octaves} octave{'s' if octaves > 1 else ''}"
    if msg.button(label, key=f"m_into_range_{h['n']}", icon=":material/swap_vert:"):
        if add_transposed(h, shift, msg, f" into the {name}'s range"):
            st.rerun()
