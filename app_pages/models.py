"""Models page: the model cards of the checkpoints found on disk, and how to train your own.

Cards are read from each checkpoint's JSON files; no weights are loaded to show them.
"""

import altair as alt
import pandas as pd
import streamlit as st

from app_support import ModelCard, available_models, checkpoints_root, read_model_card
from genmodels.card import RESULTS, split_results
from genmodels.domains import DOMAINS, get_domain
from genmodels.errors import GenmodelsError

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
command line with `python -m genmodels generate checkpoints/my-text-model --seed-text "To be"`.
See `python -m genmodels train --help` for model size, learning rate and the rest.
"""


def show_value(label: str, v) -> None:
    """Numbers as metrics, dicts as tables, lists of text as quotes, the rest as JSON."""
    if isinstance(v, bool) or v is None:
        st.markdown(f"**{label}:** {v}")
    elif isinstance(v, (int, float)):
        st.metric(label, f"{v:,.4g}" if isinstance(v, float) else f"{v:,}")
    elif isinstance(v, dict):
        st.markdown(f"**{label}**")
        flat = {k: (x if isinstance(x, (int, float, str, bool)) else str(x)) for k, x in v.items()}
        st.dataframe(
            pd.DataFrame({"field": list(flat.keys()), "value": [str(x) for x in flat.values()]}),
            hide_index=True,
            width="stretch",
        )
    elif isinstance(v, list) and all(isinstance(x, str) for x in v):
        st.markdown(f"**{label}**")
        for x in v:
            st.text(x)
    else:
        st.markdown(f"**{label}**")
        st.json(v, expanded=False)


def metric_name(m: str) -> str:
    return (m or "loss").replace("_per_", "/").replace("_", " ")


def show_data(data: dict) -> None:
    """The corpus of a card: its folder and a table of the splits (documents counted, sizes)."""
    split = data.get("split")
    if not isinstance(split, dict) or not all(isinstance(v, dict) for v in split.values()):
        show_value("Data", data)
        return
    st.markdown("**Data**")
    rest = {k: v for k, v in data.items() if k != "split" and isinstance(v, (str, int, float))}
    if rest:
        st.caption(" · ".join(f"{k}: {v}" for k, v in rest.items()))
    rows = []
    for name, info in split.items():
        row = {"split": name}
        for k, v in info.items():
            row[k] = len(v) if isinstance(v, list) else v if isinstance(v, (int, float, str)) else str(v)
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for name, info in split.items():
        docs = info.get("documents")
        if isinstance(docs, list) and name != "train" and docs:
            st.caption(f"{name}: " + ", ".join(map(str, docs[:40])) + (" …" if len(docs) > 40 else ""))


def show_stale(stale: dict) -> None:
    """Results measured on earlier weights than the card's: said so, and kept out of the way."""
    when = f" (step {stale['steps']}, validation {stale.get('valid')})" if stale.get("steps") is not None else ""
    st.warning(f"The test results, samples and statistics of this card were measured on earlier weights{when}, "
               "not on these. Rerun `python -m genmodels eval CHECKPOINT --update-card` to measure these weights.")
    with st.expander("Stale results (earlier weights)"):
        for key, label in (("test", "Test"), ("baseline", "Baseline"), ("samples", "Samples")):
            if key in stale:
                show_value(f"{label} (stale)", stale[key])


def show_history(history, metric: str) -> None:
    """The validation score during training, as a line chart."""
    if not history:
        return
    hist = pd.DataFrame(history)
    if {"step", "valid"} <= set(hist.columns) and len(hist) >= 2:
        st.markdown(f"**Validation {metric_name(metric)} during training**")
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


def show_card(info: ModelCard) -> None:
    fresh, stale = split_results(info.card)
    card = {k: v for k, v in info.card.items() if k not in RESULTS}
    card.update(fresh)  # results of other weights are never shown as these weights' own
    cfg = info.config.get("model", {})
    params = info.parameters
    metric = card.get("metric", "")
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{params / 1e6:.2f} M" if params >= 1e5 else f"{params:,}")
    cols[1].metric("Network", f"{cfg.get('cell', '?').upper()} {cfg.get('layers', '?')}×{cfg.get('hidden', '?')}")
    for col, key, label in ((cols[2], "valid", "validation"), (cols[3], "test", "test")):
        v = card.get(key)
        if isinstance(v, (int, float)):
            col.metric(f"{metric_name(metric)} ({label})", f"{v:.4g}")
        elif isinstance(v, dict) and isinstance(v.get("value"), (int, float)):
            col.metric(f"{metric_name(v.get('metric', metric))} ({label})", f"{v['value']:.4g}")
    if metric:
        st.caption(
            f"Metric: {metric_name(metric)} (lower is better). "
            + get_domain(info.domain).metric_note
        )
    if "baseline" in card:
        show_value("Baseline", card["baseline"])
    if isinstance(card.get("test"), dict):
        show_value("Test", card["test"])
    show_history(card.get("history"), metric)
    if "samples" in card:
        show_value("Samples", card["samples"])
    if "music_stats" in card:
        show_value("Musical statistics (generated vs held-out tunes)", card["music_stats"])
    if isinstance(card.get("data"), dict):
        show_data(card["data"])
    facts = {k: card[k] for k in ("steps", "wall_time_s", "hardware") if k in card}
    if facts:
        st.caption(" · ".join(f"{k.replace('_', ' ')}: {v}" for k, v in facts.items()))
    if stale:
        show_stale(stale)
    if card.get("command"):
        st.markdown("**Trained with**")
        st.code(card["command"], language="bash", wrap_lines=True)
    with st.expander("Hyperparameters and configuration"):
        st.json({"hyperparameters": card.get("hyperparameters", {}), "config": info.config}, expanded=False)
    if not card:
        st.info("This checkpoint has no model card (card.json) yet.")


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
    for tab, (_, m) in zip(tabs, found, strict=True):
        with tab:
            try:
                show_card(read_model_card(m.path))
            except GenmodelsError as e:
                st.error(f"{m.name} could not be loaded: {e}")

st.header("Train your own")
st.markdown(TRAIN_HELP)
