"""What is shown of a harmony (the engraved score, the MIDI, the MusicXML, the audio), made once and kept
with the harmony, and the progress shown while a harmony is written and those are made.

Writing the voices is most of the time; engraving (music21, then Verovio) and the MusicXML follow. All of it
runs under one ``st.status`` with a progress bar, so a long tune shows what is being done instead of a spinner.
"""

from __future__ import annotations

import io

import altair as alt
import pandas as pd
import pretty_midi
import streamlit as st

from app.render import plain, score_html
from genmodels.core.errors import GenmodelsError
from genmodels.harmony import export
from genmodels.music import note_name
from genmodels.music.audio import wav_bytes

VOICE_COLOURS = ("#b3135b", "#2a7ab0", "#3a9a5b", "#8a5a2b")  # soprano, alto, tenor, bass


@st.cache_data(max_entries=24, show_spinner="Rendering audio of the four voices…")
def wav(midi: bytes) -> bytes:
    return wav_bytes(pretty_midi.PrettyMIDI(io.BytesIO(midi)))


def ensure_svg(e: dict) -> None:
    if "svg" not in e:
        try:
            e["svg"], e["svg_error"] = export.score_svg(e["chorale"], every=e["rate"]), None
        except GenmodelsError as err:
            e["svg"], e["svg_error"] = None, str(err)


def ensure_midi(h: dict, e: dict, name: str) -> bytes:
    """The four-track MIDI with the instrument set ``name``, kept with the harmony (tests read it there)."""
    if name not in e["midi"]:
        programs = export.INSTRUMENT_SETS.get(name, export.INSTRUMENT_SETS["strings"])
        e["midi"][name] = export.midi_bytes(e["chorale"], programs, tempo=h["full"].tempo)
    return e["midi"][name]


def ensure_xml(h: dict, e: dict) -> None:
    if "xml" not in e:
        try:
            title = f"genmodels #{h['n']} harmony #{e['k']}"
            xml = export.to_musicxml(e["chorale"], title=title, tempo=h["full"].tempo, every=e["rate"])
            e["xml"], e["xml_error"] = xml, None
        except GenmodelsError as err:
            e["xml"], e["xml_error"] = None, str(err)


class Progress:
    """A status box with a progress bar: ``write`` for the model's sampling (its share done), then ``views``
    for the score, the MusicXML and the audio. ``done`` closes it."""

    def __init__(self, label: str):
        self.status = st.status(label, expanded=True)
        with self.status:
            self.bar = st.progress(0.0, text=label)
        self.label = label

    def write(self, share: float) -> None:
        self.bar.progress(min(0.7 * share, 0.7), text=f"{self.label} {share:.0%}")

    def views(self, h: dict, e: dict, instruments: str) -> None:
        """Make what the page shows of ``e`` now, step by step, each step named on the bar."""
        self.bar.progress(0.72, text="Engraving the score (chord symbols, notation, Verovio)…")
        ensure_svg(e)
        self.bar.progress(0.85, text="Writing the MusicXML…")
        ensure_xml(h, e)
        self.bar.progress(0.93, text="Rendering the audio of the four voices…")
        try:
            wav(ensure_midi(h, e, instruments))
        except GenmodelsError:
            pass  # said where the audio is shown
        self.bar.progress(1.0, text="Done")

    def done(self, ok: bool) -> None:
        self.status.update(label="Done" if ok else "Stopped", state="complete" if ok else "error", expanded=False)


def show_score(e: dict) -> None:
    with st.spinner("Engraving the score…"):  # made while the harmony was written, unless that was cut short
        ensure_svg(e)
    score, roll = st.tabs(["Score", "Piano roll"])
    with score:
        if e["svg"]:
            st.html(score_html(e["svg"], alt="harmony score"))
        else:
            st.warning(plain(f"The score could not be engraved: {e['svg_error']}"))
    with roll:
        st.altair_chart(voices_roll(e["chorale"]), width="stretch")


def voices_roll(chorale) -> alt.Chart:
    """The four voices as a piano roll, one colour per voice, with dashed bar lines."""

    lead = chorale.offset % chorale.bar_steps
    rows = [
        {"voice": export.VOICE_NAMES[v], "start": (lead + n.start) / 4, "end": (lead + n.end) / 4,
         "pitch": n.pitch - 0.42, "top": n.pitch + 0.42, "note": note_name(n.pitch)}
        for v in range(4) for n in chorale.notes(v)
    ]  # fmt: skip
    df = pd.DataFrame(rows, columns=["voice", "start", "end", "pitch", "top", "note"])
    end = (lead + chorale.steps) / 4
    bars = pd.DataFrame({"beat": [b * chorale.bar_steps / 4 for b in range(int(end * 4 // chorale.bar_steps) + 1)]})
    notes = (
        alt.Chart(df)
        .mark_rect(cornerRadius=2, stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X("start:Q", title="beats (quarter notes)", scale=alt.Scale(domain=[0, end], nice=False)),
            x2="end:Q",
            y=alt.Y(
                "pitch:Q",
                title=None,
                scale=alt.Scale(zero=False),
                axis=alt.Axis(values=list(range(24, 109, 12)), labelExpr="'C' + (floor(datum.value / 12) - 1)"),
            ),
            y2="top:Q",
            color=alt.Color(
                "voice:N",
                scale=alt.Scale(domain=list(export.VOICE_NAMES), range=list(VOICE_COLOURS)),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["voice", "note", alt.Tooltip("start:Q", title="beat")],
        )
    )
    lines = alt.Chart(bars).mark_rule(color="#999", strokeDash=[3, 3]).encode(x="beat:Q")
    return (lines + notes).properties(height=320)


def show_audio_and_downloads(h: dict, e: dict) -> None:
    name = st.session_state.get("hz_instruments") or "strings"
    try:
        midi = ensure_midi(h, e, name)
    except GenmodelsError as err:
        st.error(plain(f"No MIDI: {err}"))
        return
    try:
        st.audio(wav(midi), format="audio/wav")
    except GenmodelsError as err:  # too long to render: the downloads are still there
        st.error(plain(f"Audio could not be rendered: {err}"))
    with st.spinner("Writing the MusicXML…"):
        ensure_xml(h, e)
    base = f"{h['name']}-harmony{e['k']}"
    d1, d2 = st.columns(2)
    d1.download_button(
        "Download the four voices (.mid)", midi, file_name=f"{base}.mid", mime="audio/midi",
        key=f"hz_dl_mid_{h['n']}_{e['k']}", icon=":material/download:", width="stretch",
    )  # fmt: skip
    if e["xml"] is None:
        d2.warning(plain(f"No MusicXML: {e['xml_error']}"))
        return
    d2.download_button(
        "Download the score in four parts (.musicxml)", e["xml"], file_name=f"{base}.musicxml",
        mime="application/vnd.recordare.musicxml+xml", key=f"hz_dl_xml_{h['n']}_{e['k']}",
        icon=":material/download:", width="stretch",
    )  # fmt: skip
