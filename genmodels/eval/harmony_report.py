"""``python -m genmodels eval`` for a harmony checkpoint.

- Likelihood: nats per lower-voice note on the valid and test chorales (the training metric).
- Harmonies: the model harmonises the soprano of every test chorale (greedy, so the figures are
  reproducible); ``metrics.harmony_report`` compares them with Bach's: bass and chord agreement at the
  beats, voice-leading faults per 100 beats beside Bach's own. Twice: as shipped (sampling with the
  voice-leading mask, ``guard.py``: its faults are those the mask cannot prevent) and without the mask
  (the model alone).
- ``folk``: the fault rate of its harmonies of that many held-out folk tunes of the melody corpus
  (through ``adapt.soprano_from_melody``, as the app harmonises any melody).
- With ``update_card``: all of it, the baselines' figures and the eval command go into the card.
"""

from __future__ import annotations

from pathlib import Path

from genmodels.core.errors import GenmodelsError
from genmodels.core.paths import repo_path
from genmodels.eval.harmony_baselines import baseline_report
from genmodels.harmony.adapt import soprano_from_melody
from genmodels.harmony.grid import Chorale
from genmodels.harmony.metrics import harmony_report
from genmodels.harmony.voice_leading import fault_report_many
from genmodels.infer.harmonise import HarmonySettings, card_sample, harmonise
from genmodels.io.card import write_card
from genmodels.learn.harmony_trainer import harmony_nll, read_split
from genmodels.learn.melody_data import held_out_tunes

GREEDY = HarmonySettings(temperature=0.0, seed=0, candidates=1)
UNMASKED = HarmonySettings(temperature=0.0, seed=0, candidates=1, voice_leading=False)  # the model alone
FOLK_DATA = "data/melody"


def _folder(c, data: str | None) -> Path:
    recorded = (c.card.get("data") or {}).get("data")
    return Path(data) if data else repo_path(recorded or c.domain.data_folder)


def likelihood(c, folder: Path) -> dict:
    """Nats per lower-voice note on the valid and test splits."""
    d = c.domain.load_data(folder, tokenizer=c.tokenizer, augment=False)
    out = {}
    for split, items in (("valid", d.valid), ("test", d.test)):
        r = harmony_nll(c.model, items, c.domain)
        out[split] = {
            "metric": c.domain.metric,
            "value": round(r["value"], 4),
            "units": r["units"],
            "tokens": r["tokens"],
        }
    out["test"]["source"] = f"{folder} (test split)"
    return out


def harmonise_all(c, sopranos: list[Chorale], settings: HarmonySettings = GREEDY) -> list[Chorale]:
    return [harmonise(c, s, settings).chorale for s in sopranos]


def test_harmonies(c, folder: Path, settings: HarmonySettings = GREEDY) -> dict:
    """The model's harmonies of the test chorales' sopranos against Bach's (``metrics.harmony_report``)."""

    reference = read_split(folder, "test")
    return _rounded(harmony_report(harmonise_all(c, reference, settings), reference))


def folk_faults(c, n: int, data: str | Path = FOLK_DATA, settings: HarmonySettings = GREEDY) -> dict:
    """Voice-leading faults per 100 beats of the model's harmonies of the first ``n`` test tunes of the
    melody corpus (tunes the adapter refuses are counted, not harmonised)."""

    harmonies, refused = [], 0
    for melody in held_out_tunes(repo_path(data))[:n]:
        try:
            soprano = soprano_from_melody(melody).chorale
        except GenmodelsError:
            refused += 1
            continue
        harmonies.append(harmonise(c, soprano, settings).chorale)
    report = fault_report_many(harmonies)
    rates = {k: v["per_100_beats"] for k, v in report.items() if k != "beats"}
    return {
        "tunes": len(harmonies),
        "refused": refused,
        "beats": round(report["beats"], 1),
        "faults_per_100_beats": rates,
    }


def _rounded(x):
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    return x


def baseline_figures(folder: Path, folk: int = 0) -> dict:
    """The per-beat lookup and the chord HMM on the same test split (``baselines.baseline_report``),
    in short: what the card shows beside the model."""

    b = baseline_report(folder, folk=folk)
    out = {"model": b["model"], "value": round(b["value"], 4), "units": b["units"]}
    for name in ("lookup", "hmm"):
        r = b[name]
        out[name] = _rounded(
            {
                "nats_per_note": r["nats_per_lower_note"],
                "bass_agreement": r["bass_agreement"],
                "chord_agreement": r["chord_agreement"],
                "faults_per_100_beats": r["faults_per_100_beats"]["total"],
                **({"folk_faults_per_100_beats": r["folk"]["faults_per_100_beats"]["total"]} if "folk" in r else {}),
            }
        )
    flags = f" --folk {folk}" if folk else ""
    out["command"] = f"python -m scripts.harmony_baselines {folder}{flags}"
    return out


def eval_harmony(c, data: str | None = None, samples: bool = False, update_card: bool = False, folk: int = 0) -> dict:
    """The report of ``python -m genmodels eval CK`` for a harmony checkpoint ``c`` (loaded)."""
    folder = _folder(c, data)
    lik = likelihood(c, folder)
    report = {"checkpoint": str(c.path), "domain": c.domain.name, "valid": lik["valid"], "test": lik["test"]}
    report["harmonies"] = test_harmonies(c, folder)
    report["harmonies_unmasked"] = test_harmonies(c, folder, UNMASKED)
    if folk:
        report["folk"] = folk_faults(c, folk)
        report["folk_unmasked"] = folk_faults(c, folk, settings=UNMASKED)
    if samples or update_card:
        report["sample"] = card_sample(c)
    if update_card:
        report["baseline"] = baseline_figures(folder, folk)
        _update_card(c, report, data, folk)
    return report


def _update_card(c, report: dict, data: str | None, folk: int) -> None:
    card = dict(c.card)
    card["test"] = report["test"]
    card["harmony"] = {
        k: report[k] for k in ("harmonies", "harmonies_unmasked", "folk", "folk_unmasked") if k in report
    }
    card["samples"] = [report["sample"]]
    card["baseline"] = report["baseline"]
    flags = (f" --data {data}" if data else "") + (f" --folk {folk}" if folk else "")
    card["eval_command"] = f"python -m genmodels eval {c.path}{flags} --update-card"
    card["results_weights"] = c.weights_id
    card.setdefault("weights", c.weights_id)
    card.pop("stale_results", None)
    write_card(Path(c.path), card)
