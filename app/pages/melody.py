"""Melody page: write a tune with the model. A prompt (note names, a track of a MIDI file or a corpus tune) in a
chosen key and mode is continued by an LSTM or a GRU; the result is engraved as a score, played, and can be
reworked: regenerate some bars, keep the rhythm with new pitches, transpose. Every version stays in the
session's history (undo); MIDI, ABC and MusicXML downloads; a link holds the prompt and settings.

Every control, the uploaded file and the history last for the session, also while the user is on another page
(``persist_state="session"``; the file's bytes in session state). The settings column is a fragment: moving a
slider reruns only that column.
"""

import dataclasses
import io
import os
import time
from pathlib import Path
from urllib.parse import urlencode

import pretty_midi
import streamlit as st

from app.charts import piano_roll
from app.components.harmony import harmony_section, link_choices, shown_harmony
from app.corpus import corpus_tunes, tune_title
from app.links import MAX_URL_NOTES, bad_link_message, melody_link_params, new_seed, parse_melody_link
from app.model_cache import ROOT, require_models, shared_sampler
from app.render import plain, sanitise_filename, score_html
from genmodels.core.errors import GenmodelsError, MidiError, NotationError, SeedError
from genmodels.infer.constraints import KEY_STRENGTHS, MelodySteering
from genmodels.infer.sampling import CONTEXT_BARS, Settings
from genmodels.music import (
    MAX_MIDI_BYTES,
    MAX_PROMPT_TOKENS,
    MODES,
    SUPPORTED_METERS,
    format_notes,
    midi_bytes,
    parse_note_prompt,
)
from genmodels.music import midi as midi_io
from genmodels.music.abc import to_abc
from genmodels.music.audio import wav_bytes
from genmodels.music.engrave import render_svg
from genmodels.music.musicxml import musicxml_bytes
from genmodels.music.scales import key_name, to_key, transpose

DEFAULT_NOTES = "E4 D4 C4 D4 E4 E4 E4*2"
NOTE_HELP = (
    "Note names with octave (C4 = middle C), `#` or `b` (or `♯` `♭`) for sharps and flats, `r` for a rest. "
    "A note lasts one quarter unless followed by `/n` (divide: `A4/2` is an eighth) or `*a` / `*a/b` "
    "(multiply: `G4*2` is a half note, `G4*3/2` a dotted quarter). `|` marks a bar line and must come "
    "where a bar is complete (a pickup starts with rests: `r*3 G4 | C5`). Rests at the end are kept."
)
SRC_NOTES, SRC_FILE, SRC_CORPUS = "Note names", "MIDI file", "Corpus tune"
MELODY_DATA = Path(os.environ.get("GENMODELS_MELODY_DATA") or ROOT / "data" / "melody")
CORPUS_DIR = MELODY_DATA / "test"
MAX_HISTORY = 30
MAX_SEED_VALUE = 2**31 - 1
METERS = [f"{n}/{d}" for n, d in SUPPORTED_METERS]
AS_PROMPT = "as the prompt"
TONICS = [AS_PROMPT, *range(12)]
MODE_CHOICES = [AS_PROMPT, *MODES]
TEMPO_RANGE = (20, 400)
CANDIDATE_PASSAGES = 8
KEEP = "session"  # widget values survive a visit to another page


# Set by the callbacks below as well as by the user, so initialised here and not through ``value=``.
st.session_state.setdefault("m_seed", new_seed())
st.session_state.setdefault("m_notes", DEFAULT_NOTES)
st.session_state.setdefault("m_meter", "4/4")
st.session_state.setdefault("m_source", SRC_NOTES)
st.session_state.setdefault("m_tempo", 120)
st.session_state.setdefault("m_tonic", AS_PROMPT)
st.session_state.setdefault("m_mode", AS_PROMPT)
st.session_state.setdefault("m_history", [])


# -- cached pure helpers (library calls) ---------------------------------------------------------
@st.cache_data(max_entries=64, show_spinner=False)
def parse_notes(text: str, meter: str):
    n, d = meter.split("/")
    return parse_note_prompt(text, meter=(int(n), int(d)))


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


def instrument_name(p: int) -> str:
    return f"{p}: {pretty_midi.program_to_instrument_name(p)}"


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


def use_as_prompt(text: str, meter: str) -> None:
    st.session_state.m_source = SRC_NOTES
    st.session_state.m_notes = text
    st.session_state.m_meter = meter
    st.session_state.m_tonic = st.session_state.m_mode = AS_PROMPT
    st.toast("This melody is now your prompt. Press **Generate melody** to continue it.")  # once, from here


# -- a link that reproduces a melody -------------------------------------------------------------
def apply_link(models: list[str], corpus_ids: list[str]) -> None:
    """Once per session: the prompt and settings of the page's URL go into the controls, and the melody is
    generated again (same random seed, same melody); then its harmony, when the link holds one."""
    if st.session_state.get("m_link_read"):
        return
    st.session_state.m_link_read = True
    params = {k: st.query_params[k] for k in st.query_params}
    values = parse_melody_link(params, models, MODES, METERS, AS_PROMPT, harmony=link_choices())
    if bad := values.pop("m_link_bad", None):
        st.session_state.m_link_bad = bad
    kind = values.pop("m_source_kind", None)
    if kind is None:
        return
    tune, tune_bars = values.pop("m_tune_id", None), values.pop("m_tune_bars", None)
    if kind == "tune":
        if tune not in corpus_ids:
            st.session_state.m_link_error = f"The link names corpus tune {tune!r}, which is not in this corpus."
            return
        st.session_state.m_source, st.session_state.m_corpus = SRC_CORPUS, tune
        st.session_state.m_link_pbars = tune_bars
        st.session_state.m_tempo_from = f"tune:{tune}"  # the link's tempo, not the tune's
    else:
        st.session_state.m_source = SRC_NOTES
    st.session_state.update(values)
    st.session_state.m_autogen = True


def show_link(h: dict, harmony: dict | None = None) -> None:
    """The picked version's link in the address bar, with the settings of its ``harmony`` on show (as first made)
    when it has one, and a note of what a link cannot hold."""
    if h.get("link") is None:
        st.query_params.clear()
        st.caption(h.get("link_note", "This version has no link."))
        return
    harmony_link = (harmony or {}).get("link") or {}
    st.query_params.from_dict(h["link"] | harmony_link)
    note = " It makes the melody as first generated; later changes (regenerate, new pitches, transpose) are not in it."
    note = note if h.get("derived") else ""
    if harmony_link and harmony.get("derived"):
        note += " It makes the harmony as first harmonised; new alto, tenor or bass voices are not in it."
    what = "melody and its harmony" if harmony_link else "melody"
    query = urlencode(st.query_params.to_dict())  # as the address bar holds it (spaces, "/" and "#" escaped)
    st.caption(
        f"The address bar now holds a link to this melody: opening it makes the same {what} again.{note} "
        f"({len(query):,} characters)"
    )


# -- the prompt (left column): a change here reruns the page ---------------------------------------
def prompt_from_notes():
    """(prompt or None, link source): the prompt typed as note names."""
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
        return None, None
    try:
        prompt = parse_notes(notes_text, meter)
    except GenmodelsError as e:
        notes_msg.error(plain(e))
        return None, None
    link = {"src": "notes", "notes": notes_text, "meter": meter} if len(notes_text) <= MAX_URL_NOTES else None
    return prompt, link


def track_label(t) -> str:
    lo, hi = (pretty_midi.note_number_to_name(p) for p in (t.lowest, t.highest))
    name = f"“{t.name}”" if t.name else "(no name)"
    voices = "one note at a time" if t.max_polyphony <= 1 else f"up to {t.max_polyphony} notes at once"
    return f"Track {t.index + 1}: {name} · {t.instrument} · {t.n_notes} notes · {lo}–{hi} · {voices}"


def pick_track(data: bytes, origin: str):
    """The user's choice among the file's tracks (index), defaulting to the most monophonic one; None when the
    file has no melodic track (reading it then says what is wrong)."""
    tracks = [t for t in midi_tracks(data) if not t.is_drum]
    if not tracks:
        return None  # read_midi says what is wrong (drums only, no notes)
    by_index = {t.index: t for t in tracks}
    key = f"m_track_{origin}"
    if st.session_state.get(key) not in by_index:  # a new file: the library's default (the melody, not chords)
        st.session_state[key] = midi_io.default_track(tracks)
    chosen = st.selectbox(
        "Melody track",
        list(by_index),
        key=key,
        format_func=lambda i: track_label(by_index[i]),
        help="The track the prompt is taken from. By default the one that plays the fewest notes at once "
        "(a melody), not the one with the most notes (often the chords).",
    )
    if chosen in by_index and by_index[chosen].max_polyphony > 1:
        st.info(
            f"This track plays up to {by_index[chosen].max_polyphony} notes at once: the melody is its top line "
            "(the highest note at each moment), for generating and for harmonising alike."
        )
    return chosen


def prompt_from_upload():
    """(prompt or None, origin): the file uploaded in this session, kept until the user clears it."""
    stored = st.session_state.get("m_file")
    if stored is None:
        st.file_uploader(
            f"MIDI file (.mid or .midi, at most {MAX_MIDI_BYTES / 1e6:.0f} MB)",
            type=["mid", "midi"],
            key="m_upload",
            on_change=store_upload,
            args=("m_upload", "m_file"),
            help="You choose the melody track; drums are ignored; when several notes sound together the "
            "highest is kept.",
        )
        st.caption("Upload a file to see the melody taken from it.")
        return None, ""
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.caption(f"Using uploaded file {plain(stored['name'])} ({len(stored['data']):,} bytes)")
    c2.button(
        "Clear",
        key="m_clear_upload",
        on_click=forget,
        args=("m_file",),
        icon=":material/close:",
        help="Forget this file and upload another one.",
    )
    origin = f"file:{sanitise_filename(stored['name'])}:{len(stored['data'])}"
    try:
        data = check_upload(stored["data"])
        track = pick_track(data, origin)
        return parse_midi(data, track), origin + ("" if track is None else f":{track}")
    except GenmodelsError as e:
        st.error(plain(f"{stored['name']}: {e}"))
        return None, origin


def tune_label(tune_id: str, tunes: dict) -> str:
    t = tunes.get(tune_id)
    if t is None:
        return tune_id
    key = f" · {key_name(t['key'][0], t['key'][1])}" if isinstance(t.get("key"), list) else ""
    return f"{tune_title(tune_id, t.get('collection', ''))} · {t.get('collection', '')} · {t.get('meter', '')}{key}"


def prompt_from_corpus(corpus: list[str]):
    """(prompt or None, tune id): a tune of the held-out test set."""
    tunes = corpus_tunes(str(MELODY_DATA / "manifest.json"))
    pick = st.selectbox(
        "Tune from the held-out test set",
        corpus,
        key="m_corpus",
        persist_state=KEEP,
        format_func=lambda i: tune_label(i, tunes),
        help="Title (from the source's name) · collection · meter · key",
    )
    try:
        return parse_midi((CORPUS_DIR / f"{pick}.mid").read_bytes()), pick
    except (OSError, GenmodelsError) as e:
        st.error(plain(f"{pick}: {e}"))
        return None, pick


def bars_to_use(prompt, origin: str):
    """(first bars of a file or tune, how many); the user chooses how many. None when they hold no notes."""
    n_bars = max(1, prompt.n_bars)
    use = n_bars
    if n_bars > 1:
        key = f"m_pbars_{origin}_{len(prompt.notes)}_{n_bars}"
        pending = st.session_state.pop("m_link_pbars", None)
        if pending is not None:
            st.session_state[key] = min(pending, n_bars, 32)
        use = st.slider("Bars of it to use as the prompt", 1, min(n_bars, 32), min(n_bars, 4), key=key)
        prompt = prompt.slice_bars(0, use)
    if not prompt.notes:
        st.error("These bars hold no notes: use more bars.")
        return None, use
    return prompt, use


def key_and_tempo(prompt, origin: str | None):
    """Key (tonic and mode) and tempo; a new file or tune sets the tempo to its own (issue 10.7)."""
    if prompt is not None and origin and st.session_state.get("m_tempo_from") != origin:
        st.session_state.m_tempo_from = origin
        st.session_state.m_tempo = int(min(max(round(prompt.tempo), TEMPO_RANGE[0]), TEMPO_RANGE[1]))
    c1, c2, c3 = st.columns([2, 3, 2])
    tonic = c1.selectbox(
        "Key",
        TONICS,
        key="m_tonic",
        persist_state=KEEP,
        format_func=lambda t: t if t == AS_PROMPT else key_name(t, "major").split()[0],
        help="The tonic. The prompt is moved to it (by the smallest interval) and the model continues in it.",
    )
    mode = c2.selectbox(
        "Mode",
        MODE_CHOICES,
        key="m_mode",
        persist_state=KEEP,
        help="A change of mode maps scale degrees: major to minor lowers the 3rd, 6th and 7th; dorian has a "
        "minor 3rd and a major 6th; mixolydian a major 3rd and a minor 7th.",
    )
    tempo = c3.number_input(
        "Tempo (BPM)",
        TEMPO_RANGE[0],
        TEMPO_RANGE[1],
        step=1,
        key="m_tempo",
        persist_state=KEEP,
        help="Any whole number. A MIDI file or corpus tune sets it to its own tempo.",
    )
    return tonic, mode, int(tempo)


def in_key(prompt, tonic, mode, tempo: int):
    """The prompt as it will be used: mapped to the chosen key and mode (PitchRangeError), at the tempo."""
    if tonic != AS_PROMPT or mode != AS_PROMPT:
        t = prompt.key[0] if tonic == AS_PROMPT else int(tonic)
        m = prompt.key[1] if mode == AS_PROMPT else mode
        if (t, m) != tuple(prompt.key):
            prompt = to_key(prompt, t, m)
    return dataclasses.replace(prompt, tempo=float(tempo))


def show_prompt(prompt, source: str, moved: bool) -> None:
    """What will be used: after a key or mode change the mapped notes and their true key (issue 10.1)."""
    if source != SRC_NOTES or moved:
        try:
            st.code(format_notes(prompt), language=None, wrap_lines=True)
        except SeedError:
            pass
    st.caption(
        f"{len(prompt.notes)} notes · {prompt.n_bars} bar(s) · {prompt.meter[0]}/{prompt.meter[1]} · "
        f"key {key_text(prompt.key)} · {prompt.tempo:g} BPM" + (" · moved to the chosen key" if moved else "")
    )
    st.altair_chart(piano_roll(prompt, height=150, labels=("prompt", "continuation")), width="stretch")
    if prompt.n_bars > CONTEXT_BARS:
        st.info(f"The prompt has {prompt.n_bars} bars; the model continues from its last {CONTEXT_BARS} bars.")


def prompt_column(sources: list[str], corpus: list[str]):
    """The left column: where the prompt comes from, its key and tempo, and the prompt as it will be used.
    Returns (prompt or None, what a link needs to make it again or None, why there is no link)."""
    st.subheader("Prompt")
    source = st.radio("Start from", sources, key="m_source", horizontal=True, persist_state=KEEP)
    if not corpus:
        st.caption("Tunes from the training corpus appear here after `python -m genmodels prepare melody`.")
    link, origin, no_link = None, None, ""
    if source == SRC_NOTES:
        prompt, link = prompt_from_notes()
        if prompt is not None and link is None:
            no_link = f"The prompt is longer than {MAX_URL_NOTES:,} characters: too long for a link."
    else:
        prompt, origin = prompt_from_upload() if source == SRC_FILE else prompt_from_corpus(corpus)
        if prompt is not None:
            prompt, used = bars_to_use(prompt, origin)
            if source == SRC_CORPUS:
                link = {"src": "tune", "tune": origin, "pbars": str(used)}
                origin = f"tune:{origin}"
        no_link = "An uploaded file cannot go in a link (a URL holds text, not files): this melody has no link."
    tonic, mode, tempo = key_and_tempo(prompt, origin)
    if prompt is None:
        return None, None, no_link
    try:
        used = in_key(prompt, tonic, mode, tempo)
    except GenmodelsError as e:
        st.error(plain(e))
        return None, None, no_link
    show_prompt(used, source, moved=used.notes != prompt.notes or used.key != prompt.key)
    return used, link, no_link


# -- the settings (right column): a fragment, so a change reruns only this part --------------------
def steering_controls() -> None:
    s1, s2 = st.columns([3, 2], vertical_alignment="bottom")
    s1.segmented_control(
        "Stay in key",
        KEY_STRENGTHS,
        key="m_stay",
        persist_state=KEEP,
        default="gentle",  # measured: scale consistency 0.996, pitch-class entropy within 0.03 bits of real tunes
        help="Off: the model's own choice. Gentle: notes outside the scale are made much less likely. Strict: "
        "notes outside the scale are never chosen.",
    )
    s2.toggle(
        "End on the tonic",
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
        "Instrument (General MIDI)", list(range(128)), key="m_program", persist_state=KEEP, format_func=instrument_name
    )
    t1, t2 = st.columns(2)
    t1.slider(
        "Temperature",
        0.0,
        2.0,
        1.0,  # with gentle stay-in-key: the pitch statistics nearest the held-out tunes' (README, eval --music)
        0.05,
        key="m_temp",
        persist_state=KEEP,
        help="0 = always the most likely note (greedy: the melody soon drones on one note); higher = more adventurous.",
    )
    t2.slider("Length (bars)", 1, 32, 8, 1, key="m_bars", persist_state=KEEP, help="Bars added after the prompt.")
    t3, t4 = st.columns(2)
    t3.slider(
        "Top-p",
        0.05,
        1.0,
        1.0,
        0.05,
        key="m_topp",
        persist_state=KEEP,
        help="Sample only among the most likely notes that together reach this probability; 1 = off.",
    )
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
        "Random seed",
        0,
        MAX_SEED_VALUE,
        step=1,
        key="m_seed",
        persist_state=KEEP,
        help="Only the random number generator's seed: the same prompt, settings and random seed always give "
        "the same melody.",
    )
    b2.button(":material/casino:", key="m_roll", on_click=roll_seed, help="Draw a new random seed")
    steering_controls()
    msg = st.container()
    go = st.button("Generate melody", type="primary", key="m_go", icon=":material/music_note:", width="stretch")
    keep = st.button(
        "Use the prompt as it is",
        key="m_keep",
        icon=":material/check:",
        width="stretch",
        help="No continuation: the prompt becomes the melody below, to harmonise, play, rework or download.",
    )
    if (go and generate(prompt, link, no_link, by_label, msg)) or (keep and keep_prompt(prompt, by_label, msg)):
        st.rerun()  # the new melody is shown below, outside this fragment


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
    return MelodySteering(stay_in_key=ss.get("m_stay") or "off", end_on_tonic=bool(ss.get("m_end", False)))


def steering_text(steering: MelodySteering) -> str:
    parts = [f"stay in key: {steering.stay_in_key}"] if steering.stay_in_key != "off" else []
    return " · ".join(parts + (["ends on the tonic"] if steering.end_on_tonic else []))


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
        with st.spinner(f"{model.label} is composing {bars} bars…"):
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
        cont=result.continuation,
        overruled=getattr(result, "overruled", None),
        link=None if link is None else melody_link_params(link, ss),
        link_note=no_link,
        bars=bars,
    )
    return True


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
        link_note="This version is the prompt itself: a link would make a continuation of it, so it has none.",
    )
    return True


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


# -- page -----------------------------------------------------------------------------------------
st.title("Write a melody")
st.caption(
    "Give the start of a tune; an LSTM or a GRU trained on folk tunes and chorale melodies writes the next bars "
    "in your meter, key and mode. Read the score, listen, regenerate bars you do not like, keep a rhythm with new "
    "pitches, transpose, harmonise it in four parts; download MIDI, ABC or MusicXML."
)

by_label = require_models("melody")
corpus = sorted(p.stem for p in CORPUS_DIR.glob("*.mid"))[:600] if CORPUS_DIR.is_dir() else []
apply_link(list(by_label), corpus)
sources = [SRC_NOTES, SRC_FILE] + ([SRC_CORPUS] if corpus else [])
if st.session_state.m_source not in sources:
    st.session_state.m_source = SRC_NOTES
if "m_link_error" in st.session_state:
    st.error(plain(st.session_state.pop("m_link_error")))
if bad := st.session_state.pop("m_link_bad", None):
    st.warning(bad_link_message(bad))

left, right = st.columns([5, 4], gap="large")
with left:
    prompt, link, no_link = prompt_column(sources, corpus)
with right:
    settings_column(prompt, link, no_link, by_label)
link_harmony = st.session_state.pop("m_link_harmony", False)
if st.session_state.pop("m_autogen", False):  # opened from a link: make its melody (and below, its harmony)
    if generate(prompt, link, no_link, by_label, st.container()) and link_harmony:
        st.session_state.hz_autogen = True


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
    steer = steering_text(h["steering"]) if h.get("steering") else ""
    overruled = f" · the model was overruled {h['overruled']} times" if h.get("overruled") else ""
    st.caption(
        f"{h['action']} · {h['model']} · {full.meter[0]}/{full.meter[1]} · key {key_text(full.key)} · "
        f"{full.tempo:g} BPM · {instrument_name(h['program']).split(': ', 1)[1]} · temperature {s.temperature:g} · "
        f"top-k {s.top_k or 'off'} · top-p {s.top_p:g} · random seed {s.seed}"
        + (f" · {steer}" if steer else "")
        + overruled
    )
    show_link(h, shown_harmony(h))
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
    whole = "Download prompt + continuation" if h["prompt_notes"] and cont is not None else "Download the melody"
    d1.download_button(
        f"{whole} (.mid)",
        full_mid,
        file_name=f"{h['name']}.mid",
        mime="audio/midi",
        key=f"m_dl_full_{h['n']}",
        icon=":material/download:",
        width="stretch",
    )
    if cont is not None and cont.notes:
        d2.download_button(
            "Download the continuation alone (.mid)",
            midi_bytes(cont, program=h["program"]),
            file_name=f"{h['name']}-continuation.mid",
            mime="audio/midi",
            key=f"m_dl_cont_{h['n']}",
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
        f"Download {label} (.{ext})",
        h[field],
        file_name=f"{h['name']}.{ext}",
        mime=mime,
        key=f"m_dl_{field}_{h['n']}",
        icon=":material/download:",
        width="stretch",
    )


def model_of(h: dict):
    by_label_now = {m.label: m for m in by_label.values()}
    return by_label_now.get(st.session_state.get("m_model")) or by_label_now.get(h["model"])


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
        help=f"The bars before and after stay. The model writes {CANDIDATE_PASSAGES} candidate passages and "
        "keeps the one that makes the following bars most likely.",
    )
    if not go:
        return
    problem = bar_range_problem(int(first), int(last), full.n_bars)
    if problem:
        msg.error(problem)
        return
    model, settings, steering = model_of(h), current_settings(), current_steering()
    try:
        with st.spinner(f"Regenerating bars {first}–{last}…"):
            result = shared_sampler(model.path).regenerate_bars(
                full, int(first), int(last), settings, steering, candidates=CANDIDATE_PASSAGES
            )
    except GenmodelsError as e:
        msg.error(plain(e))
        return
    add_version(
        result.full,
        f"regenerated bars {first}–{last}",
        model,
        settings,
        steering,
        h["prompt_notes"],
        parent=h,
        overruled=getattr(result, "overruled", None),
    )
    st.rerun()


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
        add_version(result.full, "new pitches, same rhythm", model, settings, steering, 0, parent=h)
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


def transpose_box(h: dict) -> None:
    st.markdown("Transpose")
    n = st.number_input("Semitones (up +, down −)", -127, 127, 0, 1, key="m_transpose")
    msg = st.container()
    if not st.button("Transpose", key="m_transpose_go", icon=":material/swap_vert:"):
        return
    if int(n) == 0:
        msg.info("Transposing by 0 semitones changes nothing.")
        return
    try:
        moved = transpose(h["full"], int(n))
    except GenmodelsError as e:
        msg.error(plain(e))
        return
    entry_cont = h.get("cont")
    if entry_cont is not None:
        try:
            entry_cont = transpose(entry_cont, int(n))
        except GenmodelsError:
            entry_cont = None
    model = next((m for m in by_label.values() if m.name == h["model_name"]), model_of(h))
    add_version(
        moved,
        f"transposed {int(n):+d} to {key_text(moved.key)}",
        model,
        h["settings"],
        h.get("steering"),
        h["prompt_notes"],
        parent=h,
        cont=entry_cont,
    )
    st.rerun()


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
            args=(reuse, f"{full.meter[0]}/{full.meter[1]}"),
            icon=":material/arrow_upward:",
        )


if st.session_state.m_history:
    show_history(st.session_state.m_history)
