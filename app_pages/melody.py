"""Melody page: a seed (note names, a MIDI file or a corpus tune) continued by an LSTM or a GRU,
shown as a piano roll, played through the General MIDI soundfont and offered as .mid files.

Every control, the uploaded file and the history last for the session, also while the user is on another page
(``persist_state="session"``; the file's bytes in session state). The settings column is a fragment: moving a
slider reruns only that column.
"""

import dataclasses
import io
import os
import re
import time
from pathlib import Path

import pretty_midi
import streamlit as st

from app_support import (
    ROOT,
    get_generator,
    key_label,
    new_seed,
    piano_roll,
    require_models,
    sanitise_filename,
)
from genmodels.audio import wav_bytes
from genmodels.errors import GenmodelsError, MidiError, SeedError
from genmodels.melody import (
    MAX_MIDI_BYTES,
    MAX_PROMPT_TOKENS,
    MODES,
    SUPPORTED_METERS,
    format_notes,
    midi_bytes,
    parse_note_prompt,
    read_midi,
)
from genmodels.sampling import CONTEXT_BARS, Settings

DEFAULT_NOTES = "E4 D4 C4 D4 E4 E4 E4*2"
NOTE_HELP = (
    "Note names with octave (C4 = middle C), `#` or `b` (or `♯` `♭`) for sharps and flats, `r` for a rest. "
    "A note lasts one quarter unless followed by `/n` (divide: `A4/2` is an eighth) or `*a` / `*a/b` "
    "(multiply: `G4*2` is a half note, `G4*3/2` a dotted quarter). `|` marks a bar line and must come "
    "where a bar is complete (a pickup starts with rests: `r*3 G4 | C5`). Rests at the end are kept."
)
SRC_NOTES, SRC_FILE, SRC_CORPUS = "Note names", "MIDI file", "Corpus tune"
CORPUS_DIR = Path(os.environ.get("GENMODELS_MELODY_DATA") or ROOT / "data" / "melody") / "test"
MAX_HISTORY = 20
MAX_SEED_VALUE = 2**31 - 1
METERS = [f"{n}/{d}" for n, d in SUPPORTED_METERS]
SEED_KEY = "as the seed"
KEYS = [SEED_KEY] + [(t, m) for m in MODES for t in range(12)]
KEEP = "session"  # widget values survive a visit to another page

# Set by the callbacks below as well as by the user, so initialised here and not through ``value=``.
st.session_state.setdefault("m_seed", new_seed())
st.session_state.setdefault("m_notes", DEFAULT_NOTES)
st.session_state.setdefault("m_meter", "4/4")
st.session_state.setdefault("m_source", SRC_NOTES)
st.session_state.setdefault("m_history", [])


# -- cached pure helpers (library calls) ---------------------------------------------------------
@st.cache_data(max_entries=64, show_spinner=False)
def parse_notes(text: str, meter: str):
    n, d = meter.split("/")
    return parse_note_prompt(text, meter=(int(n), int(d)))


@st.cache_data(max_entries=16, show_spinner=False)
def parse_midi(data: bytes):
    return read_midi(data)


def melody_from_upload(data: bytes):
    """A seed Melody from uploaded bytes (never written to disk); MidiError with a clear message otherwise."""
    if len(data) > MAX_MIDI_BYTES:
        raise MidiError(f"The file is {len(data) / 1e6:.1f} MB; the limit is {MAX_MIDI_BYTES / 1e6:.0f} MB")
    if not data:
        raise MidiError("The file is empty")
    return parse_midi(bytes(data))


@st.cache_data(max_entries=24, show_spinner="Rendering audio…")
def render_wav(midi: bytes) -> bytes:
    return wav_bytes(pretty_midi.PrettyMIDI(io.BytesIO(midi)))


def instrument_name(p: int) -> str:
    return f"{p}: {pretty_midi.program_to_instrument_name(p)}"


def roll_seed() -> None:
    st.session_state.m_seed = new_seed()


def store_upload() -> None:
    """Keep the uploaded bytes and name for the session: the uploader itself forgets them on another page."""
    up = st.session_state.get("m_upload")
    if up is not None:
        st.session_state.m_file = {"name": up.name, "data": up.getvalue()}


def clear_upload() -> None:
    st.session_state.pop("m_file", None)


def md_text(s: str) -> str:
    """``s`` shown literally in markdown (a file name may hold * or _)."""
    return re.sub(r"([\\`*_{}\[\]()<>#|~$!])", r"\\\1", s)


def use_as_seed(text: str, meter: str) -> None:
    st.session_state.m_source = SRC_NOTES
    st.session_state.m_notes = text
    st.session_state.m_meter = meter


# -- the prompt (left column): a change here reruns the page ---------------------------------------
def seed_from_notes():
    """The seed typed as note names, or None after a message."""
    c1, c2 = st.columns([4, 1])
    notes_text = c1.text_input(
        "Notes",
        key="m_notes",
        max_chars=6000,
        help=NOTE_HELP,
        persist_state=KEEP,
        placeholder="e.g. E4 G4 A4/2 A4/2 G4*2",
    )
    meter = c2.selectbox("Meter", METERS, key="m_meter", persist_state=KEEP)
    notes_msg = st.container()
    st.caption(NOTE_HELP)
    if not notes_text.strip():
        notes_msg.error("Write a few notes to start from, e.g. `E4 G4 A4/2 A4/2 G4*2`.")
        return None
    try:
        return parse_notes(notes_text, meter)
    except GenmodelsError as e:
        notes_msg.error(str(e))
        return None


def seed_from_upload():
    """(seed or None, file name): the file uploaded in this session, kept until the user clears it."""
    stored = st.session_state.get("m_file")
    if stored is None:
        st.file_uploader(
            f"MIDI file (.mid or .midi, at most {MAX_MIDI_BYTES / 1e6:.0f} MB)",
            type=["mid", "midi"],
            key="m_upload",
            on_change=store_upload,
            help="The melody is taken from the instrument with the most notes (highest note when "
            "several sound together); drums are ignored.",
        )
        st.caption("Upload a file to see the melody extracted from it.")
        return None, ""
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.caption(f"Using uploaded file {md_text(stored['name'])} ({len(stored['data']):,} bytes)")
    c2.button(
        "Clear",
        key="m_clear_upload",
        on_click=clear_upload,
        icon=":material/close:",
        help="Forget this file and upload another one.",
    )
    try:
        return melody_from_upload(stored["data"]), stored["name"]
    except GenmodelsError as e:
        st.error(f"{stored['name']}: {e}")
        return None, stored["name"]


def seed_from_corpus(corpus: list[Path]):
    """(seed or None, tune name): a tune of the held-out test set."""
    pick = st.selectbox(
        "Tune from the held-out test set", corpus, key="m_corpus", persist_state=KEEP, format_func=lambda p: p.stem
    )
    try:
        return parse_midi(Path(pick).read_bytes()), Path(pick).stem
    except (OSError, GenmodelsError) as e:
        st.error(f"{Path(pick).name}: {e}")
        return None, ""


def bars_to_use(seed, origin: str):
    """A file's or tune's first bars (the user chooses how many); None when they hold no notes."""
    n_bars = max(1, seed.n_bars)
    if n_bars > 1:
        use = st.slider(
            "Bars of it to use as the seed",
            1,
            min(n_bars, 32),
            min(n_bars, 4),
            persist_state=KEEP,
            key=f"m_sbars_{origin}_{len(seed.notes)}_{n_bars}",
        )
        seed = seed.slice_bars(0, use)
    if not seed.notes:
        st.error("These bars hold no notes: use more bars.")
        return None
    return seed


def show_seed(seed, source: str) -> None:
    if source != SRC_NOTES:  # show what was extracted from the file, in the note-name syntax
        try:
            st.code(format_notes(seed), language=None, wrap_lines=True)
        except SeedError:
            pass
    st.caption(
        f"{len(seed.notes)} notes · {seed.n_bars} bar(s) · {seed.meter[0]}/{seed.meter[1]} · "
        f"key {key_label(seed.key)}" + ("" if source == SRC_NOTES else f" · {seed.tempo:g} BPM in the file")
    )
    st.altair_chart(piano_roll(seed, height=150), width="stretch")
    if seed.n_bars > CONTEXT_BARS:
        st.info(f"The seed has {seed.n_bars} bars; the model continues from its last {CONTEXT_BARS} bars.")


def seed_column(sources: list[str], corpus: list[Path]):
    """The left column: where the seed comes from, and the seed as it was read."""
    st.subheader("Seed")
    source = st.radio("Start from", sources, key="m_source", horizontal=True, persist_state=KEEP)
    if not corpus:
        st.caption("Tunes from the training corpus appear here after `python -m genmodels prepare melody`.")
    if source == SRC_NOTES:
        seed = seed_from_notes()
    else:
        seed, origin = seed_from_upload() if source == SRC_FILE else seed_from_corpus(corpus)
        if seed is not None:
            seed = bars_to_use(seed, origin)
    if seed is not None:
        show_seed(seed, source)
    return seed, source


# -- the settings (right column): a fragment, so a change reruns only this part --------------------
@st.fragment
def settings_column(seed, source: str, by_label: dict) -> None:
    st.subheader("Settings")
    model_label = st.radio("Model", list(by_label), key="m_model", horizontal=True, persist_state=KEEP)
    k1, k2 = st.columns(2)
    key_choice = k1.selectbox(
        "Key",
        KEYS,
        key="m_key",
        persist_state=KEEP,
        format_func=lambda k: k if k == SEED_KEY else key_label(k),
        help="The seed is moved to this key (by the smallest interval) and the model continues in it.",
    )
    tempo = k2.slider("Tempo (BPM)", 40, 240, 120, 4, key="m_tempo", persist_state=KEEP)
    program = st.selectbox(
        "Instrument (General MIDI)", list(range(128)), key="m_program", persist_state=KEEP, format_func=instrument_name
    )
    t1, t2 = st.columns(2)
    temperature = t1.slider(
        "Temperature",
        0.0,
        2.0,
        0.9,
        0.05,
        key="m_temp",
        persist_state=KEEP,
        help="0 = always the most likely note; higher = more adventurous.",
    )
    bars = t2.slider("Length (bars)", 1, 32, 8, 1, key="m_bars", persist_state=KEEP, help="Bars added after the seed.")
    t3, t4 = st.columns(2)
    top_p = t3.slider(
        "Top-p",
        0.05,
        1.0,
        1.0,
        0.05,
        key="m_topp",
        persist_state=KEEP,
        help="Sample only among the most likely notes that together reach this probability; 1 = off.",
    )
    top_k = t4.number_input(
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
    rseed = b1.number_input(
        "Random seed",
        0,
        MAX_SEED_VALUE,
        step=1,
        key="m_seed",
        persist_state=KEEP,
        help="The same random seed and settings always give the same melody.",
    )
    b2.button(":material/casino:", key="m_roll", on_click=roll_seed, help="Draw a new random seed")
    msg = st.container()
    if not st.button("Generate melody", type="primary", key="m_go", icon=":material/music_note:", width="stretch"):
        return
    if seed is None:
        no_file = source == SRC_FILE and st.session_state.get("m_file") is None
        msg.error("Upload a MIDI file first." if no_file else "Fix the seed first: see the message on the left.")
        return
    settings = Settings(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), seed=int(rseed))
    model = by_label[model_label]
    if generate(model, seed, key_choice, int(tempo), int(program), int(bars), settings, msg):
        st.rerun()  # the new melody is shown below, outside this fragment


def generate(model, seed, key_choice, tempo: int, program: int, bars: int, settings: Settings, msg) -> bool:
    """Continue ``seed`` (in the chosen key and tempo) and add the result to the history; False after a message."""
    try:
        if key_choice != SEED_KEY:
            seed = seed.to_key(*key_choice)
        seed = dataclasses.replace(seed, tempo=float(tempo))
        gen = get_generator(model.path)
        with st.spinner(f"{model.label} is composing {bars} bars…"):
            result = gen.generate_melody(seed, bars=bars, settings=settings)[0]
    except GenmodelsError as e:
        msg.error(str(e))
        return False
    name = sanitise_filename(
        f"{model.name}-{seed.meter[0]}-{seed.meter[1]}-"
        f"{key_label(seed.key).replace(' ', '')}-t{settings.temperature:g}-seed{settings.seed}"
    )
    hist = st.session_state.m_history
    hist.append(
        {
            "n": hist[-1]["n"] + 1 if hist else 1,
            "time": time.strftime("%H:%M:%S"),
            "model": model.label,
            "model_name": model.name,
            "seed": result.prompt,
            "full": result.full,
            "cont": result.continuation,
            "program": program,
            "settings": settings,
            "bars": bars,
            "name": name,
        }
    )
    del hist[:-MAX_HISTORY]
    st.session_state.m_pick = hist[-1]["n"]
    return True


# -- page -----------------------------------------------------------------------------------------
st.title("Continue a melody")
st.caption(
    "Give the start of a tune; an LSTM or a GRU trained on folk tunes and chorale melodies writes "
    "the next bars in your meter and key. Listen, look at the piano roll, download the MIDI."
)

by_label = require_models("melody")
corpus = sorted(CORPUS_DIR.glob("*.mid"))[:500] if CORPUS_DIR.is_dir() else []
sources = [SRC_NOTES, SRC_FILE] + ([SRC_CORPUS] if corpus else [])
if st.session_state.m_source not in sources:
    st.session_state.m_source = SRC_NOTES

left, right = st.columns([5, 4], gap="large")
with left:
    seed, source = seed_column(sources, corpus)
with right:
    settings_column(seed, source, by_label)


# -- the history (below): every melody of this session -------------------------------------------
def show_history(hist: list[dict]) -> None:
    st.divider()
    by_n = {h["n"]: h for h in hist}
    if st.session_state.get("m_pick") not in by_n:
        st.session_state.m_pick = hist[-1]["n"]
    h1, h2 = st.columns([2, 3], vertical_alignment="bottom")
    h1.subheader("Your melody")
    pick = h2.selectbox(
        f"This session's melodies ({len(hist)})",
        [h["n"] for h in reversed(hist)],
        key="m_pick",
        persist_state=KEEP,
        format_func=lambda n: (
            f"#{n} · {by_n[n]['time']} · {by_n[n]['model']} · "
            f"{key_label(by_n[n]['full'].key)} · {by_n[n]['bars']} bars · "
            f"seed {by_n[n]['settings'].seed}"
        ),
    )
    h = by_n[pick]
    s, full = h["settings"], h["full"]
    st.caption(
        f"{h['model']} · {full.meter[0]}/{full.meter[1]} · {key_label(full.key)} · {full.tempo:g} BPM · "
        f"{instrument_name(h['program']).split(': ', 1)[1]} · temperature {s.temperature:g} · "
        f"top-k {s.top_k or 'off'} · top-p {s.top_p:g} · random seed {s.seed}"
    )
    st.altair_chart(piano_roll(full, split=h["seed"].end), width="stretch")
    show_audio_and_downloads(h)
    show_notes_as_text(h)


def show_audio_and_downloads(h: dict) -> None:
    a1, a2 = st.columns([3, 2], vertical_alignment="center")
    full_mid = midi_bytes(h["full"], program=h["program"])
    cont_mid = midi_bytes(h["cont"], program=h["program"]) if h["cont"].notes else None
    with a1:
        try:
            st.audio(render_wav(full_mid), format="audio/wav")
        except GenmodelsError as e:
            st.error(f"Audio could not be rendered: {e}")
    with a2:
        st.download_button(
            "Download seed + continuation (.mid)",
            full_mid,
            file_name=f"{h['name']}.mid",
            mime="audio/midi",
            key=f"m_dl_full_{h['n']}",
            icon=":material/download:",
            width="stretch",
        )
        if cont_mid is not None:
            st.download_button(
                "Download the continuation alone (.mid)",
                cont_mid,
                file_name=f"{h['name']}-continuation.mid",
                mime="audio/midi",
                key=f"m_dl_cont_{h['n']}",
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
        # A seed box holds at most 6,000 characters / MAX_PROMPT_TOKENS notes: reuse the last bars that fit.
        reuse, bars = text, full.n_bars
        while bars > 1 and (len(reuse) > 6000 or len(reuse.split()) > MAX_PROMPT_TOKENS):
            bars //= 2
            reuse = format_notes(full.slice_bars(full.n_bars - bars))
        label = "Use this melody as the new seed" if reuse == text else f"Use its last {bars} bars as the new seed"
        st.button(
            label,
            key=f"m_reuse_{h['n']}",
            on_click=use_as_seed,
            args=(reuse, f"{full.meter[0]}/{full.meter[1]}"),
            icon=":material/arrow_upward:",
        )


if st.session_state.m_history:
    show_history(st.session_state.m_history)
