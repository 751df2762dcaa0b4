"""The melody on show: its versions, score, piano roll, audio and downloads, and its notes as text."""

import streamlit as st

from app.charts import piano_roll
from app.components.harmony import harmony_section, shown_harmony
from app.melody.common import KEEP, SRC_NOTES, key_text, render_wav, steering_text
from app.melody.rework import range_warning, work_on_melody
from app.melody.sharing import show_link
from app.render import plain, score_html
from genmodels.core.errors import GenmodelsError, NotationError, SeedError
from genmodels.music import (
    MAX_PROMPT_TOKENS,
    format_notes,
    midi_bytes,
)
from genmodels.music.abc import to_abc
from genmodels.music.engrave import render_svg
from genmodels.music.instruments import instrument_name
from genmodels.music.musicxml import musicxml_bytes


def use_as_prompt(text: str, meter: str, key: tuple[int, str]) -> None:
    st.session_state.m_source = SRC_NOTES
    st.session_state.m_notes = text
    st.session_state.m_meter = meter
    # Note names carry no key: estimated again, a D dorian tune could come back as B minor. The notes keep
    # the melody's key for as long as their text is unchanged.
    st.session_state.m_notes_key = (text, (int(key[0]) % 12, key[1]))
    st.session_state.m_tonic, st.session_state.m_mode = int(key[0]) % 12, key[1]
    st.toast("This melody is now your prompt. Press **Generate melody** to continue it.")  # once, from here


# -- the current melody (below): score, piano roll, audio, downloads, and what can be done with it ----
def show_history(hist: list[dict]) -> None:
    st.divider()
    by_n = {h["n"]: h for h in hist}
    if "m_pick_next" in st.session_state:
        st.session_state.m_pick = st.session_state.pop("m_pick_next")
    if st.session_state.get("m_pick") not in by_n:
        st.session_state.m_pick = hist[-1]["n"]
    h1, h2 = st.columns([2, 3], vertical_alignment="bottom")
    h1.subheader("Your melody")
    pick = h2.selectbox(
        f"Versions in this session ({len(hist)}): pick an earlier one to go back to it",
        [h["n"] for h in reversed(hist)],
        key="m_pick",
        persist_state=KEEP,
        format_func=lambda n: (
            f"#{n} · {by_n[n]['time']} · {by_n[n]['action']} · {by_n[n]['model']} · "
            f"{key_text(by_n[n]['full'].key)} · {by_n[n]['full'].n_bars} bars"
        ),
    )
    h = by_n[pick]
    s, full = h["settings"], h["full"]
    steer = steering_text(h["steering"], h.get("style")) if h.get("steering") else ""
    overruled = f" · the model was overruled {h['overruled']} times" if h.get("overruled") else ""
    st.caption(
        f"{h['action']} · {h['model']} · {full.meter[0]}/{full.meter[1]} · key {key_text(full.key)} · "
        f"{full.tempo:g} BPM · {instrument_name(h['program'])} · temperature {s.temperature:g} · "
        f"top-k {s.top_k or 'off'} · top-p {s.top_p:g} · random seed {s.seed}"
        + (f" · {steer}" if steer else "")
        + overruled
    )
    show_link(h, shown_harmony(h))
    range_warning(h)
    show_music(h)
    show_audio_and_downloads(h)
    work_on_melody(h)
    show_notes_as_text(h)
    harmony_section(h)


def prompt_split(h: dict) -> int | None:
    """The tick where the continuation starts (None when the whole melody is one part)."""
    notes, k = h["full"].notes, h["prompt_notes"]
    return notes[k].start if 0 < k < len(notes) else None


def show_music(h: dict) -> None:
    score, roll = st.tabs(["Score", "Piano roll"])
    with score:
        if "svg" not in h:
            try:
                h["svg"] = render_svg(h["full"], prompt_notes=h["prompt_notes"] or None)
            except GenmodelsError as e:
                h["svg"] = None
                h["svg_error"] = str(e)
        if h["svg"]:
            st.html(score_html(h["svg"]))
            if h["prompt_notes"]:
                st.caption("Black: your prompt · red: the model's continuation.")
        else:
            st.warning(plain(f"The score could not be engraved: {h.get('svg_error')}"))
    with roll:
        split = prompt_split(h)
        labels = ("prompt", "continuation")
        st.altair_chart(piano_roll(h["full"], split=split, labels=labels), width="stretch")


def export_texts(h: dict) -> None:
    """ABC and MusicXML of a version, made once; an export that fails keeps its message."""
    if "abc" in h:
        return
    title = f"genmodels #{h['n']}"
    try:
        h["abc"], h["abc_error"] = to_abc(h["full"], title=title), None
    except NotationError as e:
        h["abc"], h["abc_error"] = None, str(e)
    try:
        h["xml"], h["xml_error"] = musicxml_bytes(h["full"], title=title), None
    except NotationError as e:
        h["xml"], h["xml_error"] = None, str(e)


def show_audio_and_downloads(h: dict) -> None:
    full_mid = midi_bytes(h["full"], program=h["program"])
    cont = h.get("cont")
    try:
        st.audio(render_wav(full_mid), format="audio/wav")
    except GenmodelsError as e:
        st.error(plain(f"Audio could not be rendered: {e}"))
    export_texts(h)
    d1, d2, d3, d4 = st.columns(4)
    d1.download_button(
        "Melody (.mid)",
        full_mid,
        file_name=f"{h['name']}.mid",
        mime="audio/midi",
        key=f"m_dl_full_{h['n']}",
        help="The whole melody: your prompt and the model's continuation." if cont is not None else None,
        icon=":material/download:",
        width="stretch",
    )
    if cont is not None and cont.notes:
        d2.download_button(
            "Continuation (.mid)",
            midi_bytes(cont, program=h["program"]),
            file_name=f"{h['name']}-continuation.mid",
            mime="audio/midi",
            key=f"m_dl_cont_{h['n']}",
            help="The model's continuation alone, without your prompt.",
            icon=":material/download:",
            width="stretch",
        )
    notation_download(d3, h, "abc", "ABC", "abc", "text/vnd.abc")
    notation_download(d4, h, "xml", "MusicXML", "musicxml", "application/vnd.recordare.musicxml+xml")


def notation_download(col, h: dict, field: str, label: str, ext: str, mime: str) -> None:
    """A download button for an export of the version ``h``, or why that export could not be written."""
    if h[field] is None:
        col.warning(plain(f"No {label}: {h[field + '_error']}"))
        return
    col.download_button(
        f"{label} (.{ext})",
        h[field],
        file_name=f"{h['name']}.{ext}",
        mime=mime,
        key=f"m_dl_{field}_{h['n']}",
        icon=":material/download:",
        width="stretch",
    )


def show_notes_as_text(h: dict) -> None:
    full = h["full"]
    with st.expander("Notes as text", icon=":material/notes:"):
        try:
            text = format_notes(full)
        except SeedError:
            return
        if not text:
            return
        st.code(text, language=None, wrap_lines=True)
        # A prompt box holds at most 6,000 characters / MAX_PROMPT_TOKENS notes: reuse the last bars that fit.
        reuse, bars = text, full.n_bars
        while bars > 1 and (len(reuse) > 6000 or len(reuse.split()) > MAX_PROMPT_TOKENS):
            bars //= 2
            reuse = format_notes(full.slice_bars(full.n_bars - bars))
        label = "Use this melody as the new prompt" if reuse == text else f"Use its last {bars} bars as the new prompt"
        st.button(
            label,
            key=f"m_reuse_{h['n']}",
            on_click=use_as_prompt,
            args=(reuse, f"{full.meter[0]}/{full.meter[1]}", tuple(full.key)),
            icon=":material/arrow_upward:",
        )
