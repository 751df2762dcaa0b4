"""What is shown of a harmony (the engraved score, the MIDI, the MusicXML, the audio), made once and kept
with the harmony, and the progress shown while a harmony is written and those are made.

Writing the voices is most of the time; engraving (music21, then Verovio) and the MusicXML follow. All of it
runs under one ``st.status`` with a progress bar, so a long tune shows what is being done instead of a spinner.
"""

from __future__ import annotations

import io

import pretty_midi
import streamlit as st

from genmodels.core.errors import GenmodelsError
from genmodels.harmony import export
from genmodels.music.audio import wav_bytes


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
