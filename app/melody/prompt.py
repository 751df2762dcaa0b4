"""The prompt column: where the prompt comes from (note names, a MIDI file with its melody track, a corpus
tune), how many of its bars, its key, mode and tempo, and the prompt as it will be used."""

import dataclasses

import pretty_midi
import streamlit as st

from app.charts import piano_roll
from app.corpus import MAX_LISTED
from app.links import MAX_PROMPT_BARS, MAX_URL_NOTES
from app.melody.common import (
    AS_PROMPT,
    KEEP,
    METERS,
    MODE_CHOICES,
    NOTE_HELP,
    SRC_CORPUS,
    SRC_FILE,
    SRC_NOTES,
    TEMPO_RANGE,
    TONICS,
    check_upload,
    forget,
    key_text,
    midi_tracks,
    parse_midi,
    parse_notes,
    store_upload,
)
from app.render import plain, sanitise_filename
from genmodels.core.errors import GenmodelsError, SeedError
from genmodels.infer.decoding import CONTEXT_BARS
from genmodels.music import (
    MAX_MIDI_BYTES,
    format_notes,
)
from genmodels.music import midi as midi_io
from genmodels.music.scales import key_name, to_key


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
        known = st.session_state.get("m_notes_key")  # a melody of this session used as the prompt: its own key
        key = tuple(known[1]) if known and known[0] == notes_text else None
        prompt = parse_notes(notes_text, meter, key)
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
    if chosen in by_index and st.session_state.get("m_program_from") != f"{origin}:{chosen}":
        # A new file or track plays on its own instrument (a flute track as a flute); the user may change it.
        st.session_state.m_program_from = f"{origin}:{chosen}"
        st.session_state.m_program = by_index[chosen].program
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


def prompt_from_corpus(cat):
    """(prompt or None, tune id): a tune of the tune book, found by title, collection, meter or key."""
    book = cat.book
    query = st.text_input(
        "Find a tune",
        key="m_find",
        max_chars=100,
        placeholder="a title, a collection, a meter or a key: greensleeves, 6/8, D dorian, O'Neill",
        persist_state=KEEP,
    )
    found = cat.find(query)
    current = st.session_state.get("m_corpus")
    if not found:
        st.caption(plain(f"No tune matches {query!r}; showing the tune picked before."))
        found = [book.entries[current]] if current in book else book.search()[:1]
    ids = [e.id for e in found[:MAX_LISTED]]
    if current in book and current not in ids and not query.strip():
        ids.insert(0, current)  # a tune from a link stays listed
    shown = f"the first {MAX_LISTED} of {len(found):,}: search to narrow" if len(found) > MAX_LISTED else ""
    pick = st.selectbox(
        f"Tune ({shown or f'{len(found):,} of {len(book):,}'})",
        ids,
        key="m_corpus",
        persist_state=KEEP,
        format_func=lambda i: cat.labels.get(i, i),
        help="Title · collection · meter · key. Tunes marked held out are from the test split: the models "
        "never saw them in training.",
    )
    try:
        return book.melody(pick), pick
    except GenmodelsError as e:
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
            st.session_state[key] = min(pending, n_bars, MAX_PROMPT_BARS)
        use = st.slider("Bars of it to use as the prompt", 1, min(n_bars, MAX_PROMPT_BARS), min(n_bars, 4), key=key)
        prompt = prompt.slice_bars(0, use)
    if not prompt.notes:
        st.error("These bars hold no notes: use more bars.")
        return None, use
    return prompt, use


def key_and_tempo(prompt, origin: str | None):
    """Key (tonic and mode) and tempo; a new file or tune sets the tempo to its own."""
    if prompt is not None and origin and st.session_state.get("m_tempo_from") != origin:
        st.session_state.m_tempo_from = origin
        st.session_state.m_tempo = int(min(max(round(prompt.tempo), TEMPO_RANGE[0]), TEMPO_RANGE[1]))
    c1, c2, c3 = st.columns([3, 3, 2])
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
    """What will be used: after a key or mode change the mapped notes and their true key."""
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


def prompt_column(sources: list[str], cat):
    """The left column: where the prompt comes from, its key and tempo, and the prompt as it will be used.
    Returns (prompt or None, what a link needs to make it again or None, why there is no link)."""
    st.subheader("Prompt")
    source = st.radio("Start from", sources, key="m_source", horizontal=True, persist_state=KEEP)
    if cat is None:
        st.caption("Corpus tunes appear here when the tune book data/tunes/tunebook.zip is present.")
    link, origin, no_link = None, None, ""
    if source == SRC_NOTES:
        prompt, link = prompt_from_notes()
        if prompt is not None and link is None:
            no_link = f"The prompt is longer than {MAX_URL_NOTES:,} characters: too long for a link."
    else:
        prompt, origin = prompt_from_upload() if source == SRC_FILE else prompt_from_corpus(cat)
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
