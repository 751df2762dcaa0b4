"""The melody page's Harmonise section: alto, tenor and bass under the picked version of the melody.

A harmony model (``harmony-lstm`` / ``harmony-gru``, trained on Bach's four-part chorales) reads the melody as
the soprano and writes the three lower voices. The result is engraved on two staves with chord symbols, played
with a chosen set of instruments, downloaded as MIDI (four tracks) or MusicXML (four parts), and one lower voice
can be written again while the others stay. No model logic lives here: the calls go to
``genmodels.harmony.adapt`` (the melody as a soprano), ``genmodels.infer.harmonise`` (the harmoniser) and
``genmodels.harmony.export``.

Every harmony belongs to the melody version it was made from (``h["harmonies"]`` in the melody's history entry),
so going back to an earlier melody brings back its harmonies; the controls persist for the session like the
melody page's.
"""

from __future__ import annotations

import dataclasses
import time

import pretty_midi
import streamlit as st

from app.components.harmony_views import (
    Progress,
    show_audio_and_downloads,
    show_score,
)
from app.links import HARMONY_LINK_SETTINGS, HARMONY_MARK, melody_link_params, new_seed
from app.model_cache import available_models, checkpoint_stamp
from app.render import plain
from genmodels.core.errors import GenmodelsError
from genmodels.harmony import export
from genmodels.harmony.adapt import in_melody_key, key_shift_back, soprano_from_melody
from genmodels.infer.harmonise import HarmonySettings, harmonise, regenerate_voice
from genmodels.io.checkpoint import load_checkpoint
from genmodels.music.scales import key_name

KEEP = "session"
# adapt's chord_rate (also chords.chord_symbols' ``every``) -> its words.
RATES = {"beat": "every beat", "half-bar": "every half bar"}
VOICE_LABELS = {1: "alto", 2: "tenor", 3: "bass"}
MAX_CANDIDATES = 8
MAX_HARMONIES = 12  # per melody version
MAX_SEED = 2**31 - 1


@st.cache_resource(max_entries=4, show_spinner="Loading the harmony model (once per server)…")
def _load_harmony_checkpoint(path: str, stamp: tuple):

    return load_checkpoint(path)


def harmony_checkpoint(path):
    """The process-wide loaded harmony checkpoint for ``path``; reloaded when a file of it changes."""
    return _load_harmony_checkpoint(str(path), checkpoint_stamp(path))


def instruments_label(name: str) -> str:
    progs = export.INSTRUMENT_SETS[name]
    names = [pretty_midi.program_to_instrument_name(p) for p in progs]
    return f"{name} ({', '.join(names)})" if len(set(progs)) > 1 else f"{name} ({names[0]})"


def key_text(chorale) -> str:
    try:
        return key_name(chorale.tonic, chorale.mode)
    except GenmodelsError:
        return f"{chorale.tonic} {chorale.mode}"


def roll_seed() -> None:
    st.session_state.hz_seed = new_seed()


def link_choices() -> dict:
    """What a link's harmony settings may hold (``app.links.parse_melody_link``'s ``harmony``)."""
    models = [m.label for m in available_models("harmony")]
    return {
        "models": models,
        "instruments": list(export.INSTRUMENT_SETS),
        "rates": list(RATES),
        "candidates": MAX_CANDIDATES,
    }


def settings():

    ss = st.session_state
    return HarmonySettings(
        temperature=float(ss.get("hz_temp", 0.8)),
        top_k=0,
        seed=int(ss.hz_seed),
        candidates=int(ss.get("hz_candidates", 4)),
        voice_leading=bool(ss.get("hz_voice_leading", True)),
    )


def controls(models: dict) -> None:
    c1, c2, c3 = st.columns([2, 3, 2])
    c1.radio("Harmony model", list(models), key="hz_model", horizontal=True, persist_state=KEEP)
    c2.selectbox(
        "Instruments",
        list(export.INSTRUMENT_SETS),
        key="hz_instruments",
        persist_state=KEEP,
        format_func=instruments_label,
        help="General MIDI instruments for soprano, alto, tenor and bass: the audio and the MIDI download.",
    )
    c3.radio(
        "Chord rate",
        list(RATES),
        key="hz_rate",
        format_func=RATES.get,
        persist_state=KEEP,
        help="How often chord symbols are named over the score, and where chords are taken to change when the "
        "melody is simplified for the harmoniser: short notes between those points count as passing notes. "
        "Every half bar suits fast tunes (reels, jigs).",
    )
    t1, t2, t3, t4 = st.columns([3, 3, 3, 1], vertical_alignment="bottom")
    t1.slider(
        "Temperature",
        0.0,
        2.0,
        0.8,
        0.05,
        key="hz_temp",
        persist_state=KEEP,
        help="0 = the model's most likely harmony (one candidate); higher = bolder chords and more movement.",
    )
    t2.slider(
        "Candidates",
        1,
        MAX_CANDIDATES,
        4,
        key="hz_candidates",
        persist_state=KEEP,
        help="Harmonies written at once; the one the model finds most likely is kept.",
    )
    t3.number_input(
        "Random seed", 0, MAX_SEED, step=1, key="hz_seed", persist_state=KEEP, help="The same seed, same harmony."
    )
    t4.button(":material/casino:", key="hz_roll", on_click=roll_seed, help="Draw a new random seed")
    rules_toggle()


def rules_toggle() -> None:
    st.toggle(
        "Keep the voice-leading rules",
        key="hz_voice_leading",
        persist_state=KEEP,
        help="On: the harmoniser never writes parallel fifths or octaves, crossed voices, or upper voices more than "
        "an octave apart (Bach avoids them). Off: the model's own choices.",
    )


def add_harmony(h: dict, chorale, action: str, model, s, nll: float, **more) -> None:
    hs = h.setdefault("harmonies", [])
    entry = {
        "k": hs[-1]["k"] + 1 if hs else 1,
        "time": time.strftime("%H:%M:%S"),
        "action": action,
        "model": model.label,
        "chorale": chorale,
        "settings": s,
        "nll": nll,
        "rate": st.session_state.get("hz_rate", "beat"),
        "messages": [],
        "midi": {},
    }
    entry.update(more)
    hs.append(entry)
    del hs[:-MAX_HARMONIES]
    st.session_state[f"hz_pick_next_{h['n']}"] = entry["k"]


def harmonise_melody(h: dict, model, msg) -> bool:
    """The melody as a soprano, harmonised; a new harmony of ``h``. False after a message."""

    rate = st.session_state.get("hz_rate", "beat")
    progress = None
    try:
        s = settings()
        adapted = soprano_from_melody(h["full"], chord_rate=rate)
        checkpoint = harmony_checkpoint(model.path)
        progress = Progress(f"{model.label} is writing alto, tenor and bass…")
        # The model reads the simplified line adapt leaves in the chorale's meta; the result keeps the melody.
        result = harmonise(checkpoint, adapted.chorale, s, progress=progress.write)
    except GenmodelsError as e:
        if progress:
            progress.done(False)
        msg.error(plain(e))
        return False
    # Moved by semitones to fit the soprano range: the harmony goes back into the melody's key.
    chorale, moved = in_melody_key(result.chorale, adapted.transposed)
    if same := next((e for e in h.get("harmonies", []) if e["chorale"].voices == chorale.voices), None):
        msg.info(f"The harmoniser wrote the same harmony as #{same['k']} again (random seed {s.seed}): press again.")
        return False
    messages = list(adapted.messages) + list(getattr(result, "messages", [])) + ([moved] if moved else [])
    back = key_shift_back(adapted.transposed)
    # The settings that make this harmony again, for the melody's link.
    link = melody_link_params({HARMONY_MARK: "1"}, st.session_state, HARMONY_LINK_SETTINGS) | {"hm": model.label}
    add_harmony(
        h, chorale, "harmonised", model, s, result.nll,
        messages=messages, transposed=adapted.transposed + back, model_shift=-back, rate=rate, link=link,
    )  # fmt: skip
    progress.views(h, h["harmonies"][-1], st.session_state.get("hz_instruments") or "strings")
    progress.done(True)
    return True


def regenerate(h: dict, entry: dict, voice: int, model, msg) -> bool:

    progress = None
    try:
        # A new seed for every press (the seed above plus the number of harmonies so far): pressing "New bass"
        # again gives another bass, and the caption still names the seed that made it.
        base = settings()
        s = dataclasses.replace(base, seed=(base.seed + len(h["harmonies"])) % MAX_SEED)
        checkpoint = harmony_checkpoint(model.path)
        progress = Progress(f"{model.label} is writing a new {VOICE_LABELS[voice]}…")
        # In the key the model wrote it in (model_shift: semitones from the shown harmony), then back.
        shift = entry.get("model_shift", 0)
        result = regenerate_voice(checkpoint, entry["chorale"].transpose(shift), voice, s, progress=progress.write)
    except GenmodelsError as e:
        if progress:
            progress.done(False)
        msg.error(plain(e))
        return False
    new = result.chorale.transpose(-shift)
    if new.voices == entry["chorale"].voices:  # nothing new: say why rather than add a copy to the list
        why = (
            "at temperature 0 the harmoniser always writes its most likely voice; raise the temperature for another"
            if s.temperature == 0
            else "press again for another random seed, or raise the temperature"
        )
        progress.done(False)
        msg.info(f"The same {VOICE_LABELS[voice]} came out again: {why}.")
        return False
    action = f"new {VOICE_LABELS[voice]} (from #{entry['k']})"
    keep = {k: entry.get(k, 0) for k in ("messages", "transposed", "rate", "model_shift")}
    # The link still makes the harmony as first made (the new voice is not in it).
    add_harmony(h, new, action, model, s, result.nll, **keep, link=entry.get("link"), derived=True)
    progress.views(h, h["harmonies"][-1], st.session_state.get("hz_instruments") or "strings")
    progress.done(True)
    return True


def harmony_section(h: dict) -> None:
    """The Harmonise section under the melody version ``h``. Harmonises at once when the melody was just made
    from a link that holds a harmony (``hz_autogen``)."""
    auto = st.session_state.pop("hz_autogen", False)
    st.session_state.setdefault("hz_seed", new_seed())
    st.session_state.setdefault("hz_voice_leading", True)  # set here, not by value=: tests and links may set it
    st.divider()
    st.subheader("Harmonise")
    st.caption(
        "Alto, tenor and bass under this melody, written by an LSTM or a GRU trained on the four-part chorales of "
        "J. S. Bach. The melody is the soprano; chord symbols are named over it."
    )
    models = {m.label: m for m in available_models("harmony")}
    if not models:
        st.info(
            "No harmony model was found. Train one with `python -m genmodels prepare harmony` and "
            "`python -m genmodels train --domain harmony --out checkpoints/harmony-lstm`."
        )
        return
    controls(models)
    msg = st.container()
    model = models.get(st.session_state.get("hz_model")) or next(iter(models.values()))
    go = st.button(
        "Harmonise", type="primary", key="hz_go", icon=":material/queue_music:", width="stretch",
        on_click=lambda: h.get("harmonies") and roll_seed(),  # pressed again: another seed, another harmony
    )  # fmt: skip
    if (go or auto) and harmonise_melody(h, model, msg):
        st.rerun()
    if h.get("harmonies"):
        show_harmony(h, pick_harmony(h), model)


def shown_harmony(h: dict) -> dict | None:
    """The harmony of ``h`` on show: the one picked (or just made), else the latest; None without one."""
    hs = h.get("harmonies")
    if not hs:
        return None
    by_k = {e["k"]: e for e in hs}
    key = f"hz_pick_{h['n']}"
    if f"hz_pick_next_{h['n']}" in st.session_state:
        st.session_state[key] = st.session_state.pop(f"hz_pick_next_{h['n']}")
    if st.session_state.get(key) not in by_k:
        st.session_state[key] = hs[-1]["k"]
    return by_k[st.session_state[key]]


def pick_harmony(h: dict) -> dict:
    shown, hs = shown_harmony(h), h["harmonies"]  # the pick is settled before its selectbox is drawn
    if len(hs) == 1:
        return shown
    by_k = {e["k"]: e for e in hs}
    k = st.selectbox(
        f"Harmonies of this melody ({len(hs)}): pick an earlier one to go back to it",
        [e["k"] for e in reversed(hs)],
        key=f"hz_pick_{h['n']}",
        persist_state=KEEP,
        format_func=lambda k: f"#{k} · {by_k[k]['time']} · {by_k[k]['action']} · {by_k[k]['model']}",
    )
    return by_k[k]


def show_harmony(h: dict, e: dict, model) -> None:
    s = e["settings"]
    for line in e["messages"]:
        st.info(line, icon=":material/info:")
    rules = "" if getattr(s, "voice_leading", True) else "voice-leading rules off · "
    st.caption(
        f"#{e['k']} {e['action']} · {e['model']} · key {key_text(e['chorale'])} · "
        f"chords {RATES.get(e['rate'], e['rate'])} · temperature {s.temperature:g} · {s.candidates} candidates · "
        f"random seed {s.seed} · {rules}{e['nll']:.2f} nats per lower-voice note (the model's surprise: "
        "lower = more Bach-like to it)"
    )
    show_score(e)
    show_audio_and_downloads(h, e)
    regenerate_row(h, e, model)


def regenerate_row(h: dict, e: dict, model) -> None:
    st.markdown("**Write one voice again** (the other voices stay; with the model and settings above)")
    cols = st.columns(3)
    msg = st.container()
    for col, (voice, label) in zip(cols, VOICE_LABELS.items(), strict=True):
        if col.button(f"New {label}", key=f"hz_regen_{voice}", icon=":material/autorenew:", width="stretch"):
            if regenerate(h, e, voice, model, msg):
                st.rerun()
