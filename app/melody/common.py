"""The Melody page's constants and small helpers: the note-name help, the sources, cached parsing of notes
and MIDI, audio rendering, upload storage, key and instrument names."""

import io

import pretty_midi
import streamlit as st

from app.links import new_seed
from app.model_cache import require_models
from genmodels.core.errors import MidiError
from genmodels.infer.constraints import MelodySteering
from genmodels.music import (
    MAX_MIDI_BYTES,
    MODES,
    SUPPORTED_METERS,
    parse_note_prompt,
)
from genmodels.music import midi as midi_io
from genmodels.music.audio import wav_bytes
from genmodels.music.instruments import instrument_name
from genmodels.music.scales import key_name
from genmodels.tokenizers.melody import STYLE_NAMES

SRC_NOTES, SRC_FILE, SRC_CORPUS = "Note names", "MIDI file", "Corpus tune"
DEFAULT_NOTES = "E4 D4 C4 D4 E4 E4 E4*2"


NOTE_HELP = (
    "Note names with octave (C4 = middle C), `#` or `b` (or `♯` `♭`) for sharps and flats, `r` for a rest. "
    "A note lasts one quarter unless followed by `/n` (divide: `A4/2` is an eighth) or `*a` / `*a/b` "
    "(multiply: `G4*2` is a half note, `G4*3/2` a dotted quarter). `|` marks a bar line and must come "
    "where a bar is complete (a pickup starts with rests: `r*3 G4 | C5`). Rests at the end are kept."
)


MAX_HISTORY = 30


MAX_SEED_VALUE = 2**31 - 1


METERS = [f"{n}/{d}" for n, d in SUPPORTED_METERS]


AS_PROMPT = "as the prompt"


TONICS = [AS_PROMPT, *range(12)]


MODE_CHOICES = [AS_PROMPT, *MODES]


TEMPO_RANGE = (20, 400)


CANDIDATE_PASSAGES = 8


KEEP = "session"  # widget values survive a visit to another page


# -- cached pure helpers (library calls) ---------------------------------------------------------
@st.cache_data(max_entries=64, show_spinner=False)
def parse_notes(text: str, meter: str, key: tuple[int, str] | None = None):
    """The note-name prompt in ``meter``; in ``key`` when given, else in the key its notes suggest."""
    n, d = meter.split("/")
    return parse_note_prompt(text, meter=(int(n), int(d)), key=key)


@st.cache_data(max_entries=16, show_spinner=False)
def parse_midi(data: bytes, track: int | None = None):
    return midi_io.read_midi(data) if track is None else midi_io.read_midi(data, track=track)


@st.cache_data(max_entries=16, show_spinner=False)
def midi_tracks(data: bytes) -> list:
    return list(midi_io.list_tracks(data))


def check_upload(data: bytes) -> bytes:
    """The bytes, or MidiError with a clear message (they are never written to disk)."""
    if len(data) > MAX_MIDI_BYTES:
        raise MidiError(f"The file is {len(data) / 1e6:.1f} MB; the limit is {MAX_MIDI_BYTES / 1e6:.0f} MB")
    if not data:
        raise MidiError("The file is empty")
    return bytes(data)


@st.cache_data(max_entries=24, show_spinner="Rendering audio…")
def render_wav(midi: bytes) -> bytes:
    return wav_bytes(pretty_midi.PrettyMIDI(io.BytesIO(midi)))


def program_label(p: int) -> str:
    """'73: Flute' (the General MIDI number the select box lists by)."""
    return f"{p}: {instrument_name(p)}"


def roll_seed() -> None:
    st.session_state.m_seed = new_seed()


def store_upload(widget: str, target: str) -> None:
    """Keep an upload's bytes and name for the session: the uploader itself forgets them on another page."""
    up = st.session_state.get(widget)
    if up is not None:
        st.session_state[target] = {"name": up.name, "data": up.getvalue()}


def forget(*keys: str) -> None:
    for k in keys:
        st.session_state.pop(k, None)


def key_text(key) -> str:
    return key_name(key[0] % 12, key[1])


def steering_text(steering: MelodySteering, style: str | None = None) -> str:
    """The steering in words; ``style``: the kind of tune the model wrote (chosen, or drawn given the prompt)."""
    parts = [f"written as a {STYLE_NAMES[style]}"] if style in STYLE_NAMES else []
    parts += [f"stay in key: {steering.stay_in_key}"] if steering.stay_in_key != "off" else []
    form = steering.form
    if not form.free:
        parts.append(f"form {form.shape}, {form.part_bars}-bar parts" + (", 1st/2nd endings" if form.endings else ""))
    return " · ".join(parts + (["ends on the tonic"] if steering.end_on_tonic else []))


def model_of(h: dict):
    by_label_now = {m.label: m for m in require_models("melody").values()}
    return by_label_now.get(st.session_state.get("m_model")) or by_label_now.get(h["model"])
