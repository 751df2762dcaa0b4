"""Models page: the model cards of the checkpoints found on disk, and how to train your own.

Cards are read from each checkpoint's JSON files; no weights are loaded to show them.
"""

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app.cards import command_history, metric_name, music_caption, music_table, split_rows, summary, total_steps
from app.charts import piano_roll
from app.model_cache import ModelCard, available_models, checkpoints_root, read_model_card
from app.render import plain
from genmodels.core.errors import GenmodelsError
from genmodels.domains import DOMAINS, get_domain
from genmodels.io.card import RESULTS, split_results
from genmodels.music import melody_to_midi, parse_note_prompt
from genmodels.music.audio import wav_bytes

ROOT = Path(__file__).resolve().parents[1]
TRAIN_HELP = """
Every folder under `checkpoints/` that holds a `config.json` and a `model.safetensors` shows up in the app
(set `GENMODELS_CHECKPOINTS` to use another folder). Restart is not needed: reload the page.

**Text** (the default corpus is Shakespeare; or a folder of your own `.txt` files):
```bash
python -m genmodels prepare text                      # builds data/text/ (tokenizer + splits)
python -m genmodels train --domain text --cell lstm --out checkpoints/my-text-model
```

**Melodies** (the default corpus is music21's folk tunes and chorales; or a folder of your own MIDI files):
```bash
python -m genmodels prepare melody                    # builds data/melody/
python -m genmodels train --domain melody --cell gru --out checkpoints/my-melody-model
python -m genmodels train --domain melody --data path/to/my/midi --out checkpoints/my-tunes
```

Training shows a progress bar and validates as it goes; stop it with Ctrl-C and continue later with the same
command plus `--resume`. Several processes or machines: start the same command under `torchrun`.
Check a model on the test split with `python -m genmodels eval checkpoints/my-text-model`, and try it from the
command line with `python -m genmodels generate checkpoints/my-text-model --prompt "To be"`.
See `python -m genmodels train --help` for model size, learning rate and the rest.

**Mixtures**: two or more models with the same tokenizer, cell and width predict better together
(`python -m genmodels mix checkpoints/a checkpoints/b --out checkpoints/a-b-mix --fit-weights`).
"""


@st.cache_data(show_spinner=False, max_entries=16)
def sample_audio(text: str) -> bytes | None:
    """A melody sample (note names) played with the General MIDI soundfont, or None if it cannot be read."""

    try:
        return wav_bytes(melody_to_midi(parse_note_prompt(text)))
    except GenmodelsError:
        return None


def show_samples(samples: list) -> None:
    texts = [x for x in samples if isinstance(x, str) and x.strip()]
    if not texts:
        return

    st.markdown("**Samples**")
    melodies = []
    for x in texts:  # a sample written as note names is shown as music
        try:
            melodies.append(parse_note_prompt(x))
        except GenmodelsError:
            melodies.append(None)
    if not any(melodies):
        for x in texts:
            st.text(x)
        return
    st.caption("Generated at temperature 1.0; the card keeps the notes, not the meter, so bar lines are 4/4.")
    for i, (x, mel) in enumerate(zip(texts, melodies, strict=True), start=1):
        if mel is None:
            st.text(x)
            continue
        st.altair_chart(piano_roll(mel, labels=("sample", "sample")), width="stretch")
        wav = sample_audio(x)
        if wav:
            st.audio(wav, format="audio/wav")
        with st.expander(f"Sample {i} as note names"):
            st.text(x)


def show_stale(stale: dict) -> None:
    """Results measured on earlier weights than the card's: said so, and kept out of the way."""
    when = f" (step {stale['steps']}, validation {stale.get('valid')})" if stale.get("steps") is not None else ""
    st.warning(
        f"Some results in this card were measured on earlier weights{when}, not on these. Rerun "
        "`python -m genmodels eval CHECKPOINT --update-card` to measure these weights."
    )
    with st.expander("Stale results (earlier weights)"):
        st.json({k: v for k, v in stale.items() if k not in ("steps", "valid")}, expanded=False)


def network_label(cfg: dict) -> str:
    """The network in a few characters: GRU 2×512; for a mixture 3 × GRU (the summary above gives each shape)."""
    cell = str(cfg.get("cell", "?")).upper()
    members = cfg.get("mixture")
    if isinstance(members, list):
        return f"{len(members)} × {cell}"
    return f"{cell} {cfg.get('layers', '?')}×{cfg.get('hidden', '?')}"


def show_members(card: dict) -> None:
    """A mixture's members: share, figures and the commands that trained each."""
    st.markdown("**The models it mixes**, each trained on its own")
    for i, m in enumerate(card["members"], start=1):
        st.markdown(
            f"{i}. `{m.get('path', '?')}`: share {m.get('share', '?')}, validation {m.get('valid', '?')}, "
            f"test {m.get('test', '?')}; trained with:"
        )
        for command in m.get("trained_with") or []:
            st.code(command, language="bash", wrap_lines=True)


def show_history(card: dict) -> None:
    if isinstance(card.get("members"), list):
        show_members(card)
        return
    history = command_history(card)
    if not history:
        return
    st.markdown("**How it was trained**, every command in order")
    for i, h in enumerate(history, start=1):
        steps = f"steps {h['start']:,} to step {h['end']:,}" if h["start"] else f"to step {h['end']:,}"
        note = " (reconstructed from the saved configuration)" if h["reconstructed"] else ""
        st.markdown(f"{i}. {h['how'].capitalize()}, {steps}{note}:")
        st.code(h["command"], language="bash", wrap_lines=True)
    if len(history) > 1:
        st.caption(
            f"{total_steps(history):,} optimisation steps in all: "
            + " + ".join(f"{max(0, h['end'] - h['start']):,}" for h in history)
            + "."
        )


def show_card(info: ModelCard, name: str = "") -> None:
    fresh, stale = split_results(info.card)
    card = {k: v for k, v in info.card.items() if k not in RESULTS}
    card.update(fresh)  # results of other weights are never shown as these weights' own
    if not card:
        st.info("This checkpoint has no model card (card.json) yet.")
    text = summary(card, name)
    if text:
        st.markdown(text)
    show_figures(info, card)
    show_curve(card)
    show_history(card)
    rows = music_table({name or card.get("name", "generated"): card})
    if rows:
        st.markdown("**Musical statistics: generated vs held-out tunes**")
        st.caption(music_caption(card))
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    show_samples(card.get("samples") or [])
    show_data(card)
    if stale:
        show_stale(stale)
    with st.expander("Hyperparameters and configuration"):
        st.json({"hyperparameters": card.get("hyperparameters", {}), "config": info.config}, expanded=False)


def show_figures(info: ModelCard, card: dict) -> None:
    """Parameters, network, the validation and test figures, and what the metric means."""
    metric, params = card.get("metric", ""), info.parameters
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{params / 1e6:.2f} M" if params >= 1e5 else f"{params:,}")
    cols[1].metric("Network", network_label(info.config.get("model", {})))
    for col, key, label in ((cols[2], "valid", "validation"), (cols[3], "test", "test")):
        v = card.get(key)
        if isinstance(v, (int, float)):
            col.metric(f"{metric_name(metric)} ({label})", f"{v:.4g}")
        elif isinstance(v, dict) and isinstance(v.get("value"), (int, float)):
            col.metric(f"{metric_name(v.get('metric', metric))} ({label})", f"{v['value']:.4g}")
    if metric and info.domain:
        st.caption(get_domain(info.domain).metric_note)
    if card.get("note"):
        st.caption(str(card["note"]))


def show_curve(card: dict) -> None:
    """The validation figure during training."""
    hist = pd.DataFrame(card.get("history") or [])
    metric = card.get("metric", "")
    if not ({"step", "valid"} <= set(hist.columns) and len(hist) >= 2):
        return
    st.markdown(f"**Validation {metric_name(metric)} during training** (steps of each run's own count)")
    chart = (
        alt.Chart(hist)
        .mark_line(point=True, color="#b3135b")
        .encode(
            x=alt.X("step:Q", title="training step"),
            y=alt.Y("valid:Q", title=metric_name(metric), scale=alt.Scale(zero=False)),
            tooltip=["step", "valid"],
        )
        .properties(height=200)
    )
    st.altair_chart(chart, width="stretch")


def show_data(card: dict) -> None:
    """The corpus, its split and the held-out documents."""
    rows = split_rows(card, ROOT)
    if not rows:
        return
    data = card.get("data") or {}
    st.markdown("**Data**")
    rest = {k: v for k, v in data.items() if k not in ("split", "data") and isinstance(v, (str, int, float))}
    st.caption(" · ".join([f"corpus: {data.get('data', '?')}"] + [f"{k}: {v}" for k, v in rest.items()]))
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for split_name, split_info in (data.get("split") or {}).items():
        docs = split_info.get("documents") if isinstance(split_info, dict) else None
        if isinstance(docs, list) and split_name != "train" and docs:
            st.caption(f"{split_name}: " + ", ".join(map(str, docs[:40])) + (" …" if len(docs) > 40 else ""))


st.title("Models")
root = checkpoints_root()
st.caption(f"Checkpoints found in `{root}`.")

found = [(domain, m) for domain in DOMAINS for m in available_models(domain)]
if not found:
    st.warning("No checkpoint was found. See below to train one.")
else:
    st.dataframe(
        pd.DataFrame(
            {
                "name": [m.name for _, m in found],
                "domain": [d for d, _ in found],
                "shown as": [m.label for _, m in found],
                "folder": [str(m.path) for _, m in found],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    tabs = st.tabs([f"{m.name}" for _, m in found])
    melody_cards: dict[str, dict] = {}
    for tab, (_, m) in zip(tabs, found, strict=True):
        with tab:
            try:
                info = read_model_card(m.path)
            except GenmodelsError as e:
                st.error(plain(f"{m.name} could not be loaded: {e}"))
                continue
            show_card(info, m.name)
            if info.card.get("music_stats"):
                melody_cards[m.name] = info.card
    side_by_side = music_table(melody_cards)
    if len([c for c in melody_cards.values() if c.get("music_stats")]) > 1 and side_by_side:
        st.subheader("Melody models side by side")
        st.caption("Musical statistics of generated tunes against the held-out tunes, as in the README.")
        st.dataframe(pd.DataFrame(side_by_side), hide_index=True, width="stretch")

st.header("Train your own")
st.markdown(TRAIN_HELP)
