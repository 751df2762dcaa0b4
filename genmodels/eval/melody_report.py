"""Generated tunes measured against held-out ones: the musical statistics under each steering setting, and how
well regenerated passages fit what follows them (``eval --music``, ``eval --regenerate``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from genmodels.eval import music_stats
from genmodels.infer.constraints import MelodySteering
from genmodels.infer.decoding import MAX_CANDIDATES, Settings
from genmodels.learn.melody_data import held_out_tunes
from genmodels.music.scales import MODE_STEPS

MUSIC_TUNES = 200


def model_key(tok: Any, key: tuple[int, str]) -> tuple[int, str]:
    """``key`` if the model's tokenizer knows its mode, else the same tonic in major or minor (by the
    mode's third): older models know only those two."""

    if key[1] in tok.modes:
        return key
    return key[0], "minor" if MODE_STEPS[key[1]][2] == 3 else "major"


def generate_like(
    sampler: Any,
    tunes: list,
    n: int = MUSIC_TUNES,
    temperature: float = 1.0,
    seed: int = 0,
    steering: Any = None,
    with_counts: bool = False,
) -> list:
    """One generated tune per held-out tune (cycled to ``n``): same meter, key and number of bars
    (at most 32), generated from the header alone at ``temperature`` with a fixed random seed, in
    batches of 16 tunes. With ``with_counts``: (tune, overruled, events) triples."""

    steering = steering or MelodySteering()
    tok = sampler.tok
    out = []
    for lo in range(0, n, MAX_CANDIDATES):
        refs = [tunes[i % len(tunes)] for i in range(lo, min(n, lo + MAX_CANDIDATES))]
        keys = [model_key(tok, r.key) for r in refs]
        prefixes = [tok.header(r.meter, k) for r, k in zip(refs, keys, strict=True)]
        bars = [max(1, min(r.n_bars, 32)) for r in refs]
        s = Settings(temperature=temperature, seed=seed + lo, n=len(refs)).checked(sampler.vocab_size)
        seqs, overruled, events = sampler.sample_batch(prefixes, bars, s, steering, keys)
        for seq, r, o, e in zip(seqs, refs, overruled, events, strict=True):
            m = tok.decode(seq)
            m.tempo = r.tempo
            out.append((m, o, e) if with_counts else m)
    return out


def ends_on_tonic(m: Any) -> bool:
    """The last note's pitch class is the tonic of the melody's key."""
    return bool(m.notes) and m.notes[-1].pitch % 12 == m.key[0] % 12


# (stay in key, end on the tonic) settings of the --music table
STEERING_ROWS = (("off", False), ("gentle", False), ("strict", False), ("off", True), ("strict", True))


def steering_table(sampler: Any, tunes: list, n: int = MUSIC_TUNES, temperatures: tuple = (1.0,)) -> list[dict]:
    """For each temperature and steering setting: scale consistency, pitch-class entropy, overruled
    rate (overruled tokens per sampled pitch/rest event) and tonic-ending rate of ``n`` generated tunes;
    the held-out tunes' own figures first."""

    def stats(ms: list) -> dict:
        s = music_stats.summarize(ms)
        return {
            "scale_consistency": round(s["scale_consistency"], 4),
            "pitch_class_entropy": round(s["pitch_class_entropy"], 4),
            "tonic_ending_rate": round(sum(map(ends_on_tonic, ms)) / len(ms), 4),
        }

    rows = [
        {
            "source": "held-out",
            "temperature": None,
            "stay_in_key": None,
            "end_on_tonic": None,
            "tunes": len(tunes),
            **stats(tunes),
            "overruled_rate": None,
        }
    ]
    for t in temperatures:
        for key, tonic in STEERING_ROWS:
            got = generate_like(sampler, tunes, n, t, steering=MelodySteering(key, tonic), with_counts=True)
            ms = [m for m, _, _ in got]
            rate = sum(o for _, o, _ in got) / max(1, sum(e for _, _, e in got))
            rows.append(
                {
                    "source": "generated",
                    "temperature": t,
                    "stay_in_key": key,
                    "end_on_tonic": tonic,
                    "tunes": len(ms),
                    **stats(ms),
                    "overruled_rate": round(rate, 4),
                }
            )
    return rows


def format_steering_table(rows: list[dict]) -> str:
    """The steering table as aligned text (the README's layout)."""
    head = (
        "source",
        "T",
        "stay in key",
        "end on tonic",
        "tunes",
        "scale cons.",
        "pc entropy",
        "overruled",
        "tonic end",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["source"],
            "" if r["temperature"] is None else f"{r['temperature']:g}",
            r["stay_in_key"] or "",
            "" if r["end_on_tonic"] is None else ("yes" if r["end_on_tonic"] else "no"),
            str(r["tunes"]),
            f"{r['scale_consistency']:.3f}",
            f"{r['pitch_class_entropy']:.3f}",
            "" if r["overruled_rate"] is None else f"{r['overruled_rate']:.3f}",
            f"{r['tonic_ending_rate']:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def music_report(sampler: Any, data: str | Path, n: int = MUSIC_TUNES, temperatures: tuple = (1.0,)) -> dict:
    """Musical statistics of ``n`` generated tunes against the held-out tunes of ``data`` (at the first
    temperature, no constraints), and the steering table at each temperature."""

    tunes = held_out_tunes(data)
    generated = generate_like(sampler, tunes, n, temperatures[0])
    # novelty: the longest runs shared with training tunes
    index = music_stats.NoveltyIndex(held_out_tunes(data, "train"), max_n=16)
    rows = music_stats.compare(generated, tunes, index=index)
    for r in rows:
        for k in ("generated", "held_out", "difference"):
            if isinstance(r.get(k), float):
                r[k] = round(r[k], 4)
    steering = steering_table(sampler, tunes, n, temperatures)
    return {
        "tunes_generated": n,
        "held_out_tunes": len(tunes),
        "temperature": temperatures[0],
        "rows": rows,
        "steering": steering,
        "steering_table": format_steering_table(steering),
    }


REGENERATE_TUNES = 200


def regenerate_report(
    sampler: Any, tunes: list, n: int = REGENERATE_TUNES, candidates: int = 8, temperature: float = 1.0
) -> dict:
    """Regenerating a passage, measured: in each of ``n`` held-out tunes of at least 6 bars, the two
    bars in the middle are regenerated from ``candidates`` passages; the log-likelihood (nats) of the
    following bars after the chosen passage against after the first candidate (a plain continuation),
    and the fraction of tunes where the choice is better."""

    usable = [dataclasses.replace(t, key=model_key(sampler.tok, t.key)) for t in tunes if t.n_bars >= 6]
    chosen, plain, better, following_tokens = [], [], 0, 0
    for i in range(min(n, len(usable))):
        t = usable[i]
        first = t.n_bars // 2
        _, scores, best = sampler.regenerate_scored(
            t, first, first + 1, Settings(temperature=temperature, seed=i), candidates=candidates
        )
        chosen.append(scores[best])
        plain.append(scores[0])
        better += scores[best] > scores[0]
        following_tokens += len(sampler.tok.encode(t.slice_bars(first + 1), add_eos=False)) - 3
    k = len(chosen)
    return {
        "tunes": k,
        "candidates": candidates,
        "temperature": temperature,
        "bars_removed": 2,
        "mean_loglik_following_chosen": round(sum(chosen) / k, 4),
        "mean_loglik_following_plain": round(sum(plain) / k, 4),
        "mean_nats_per_token_chosen": round(-sum(chosen) / following_tokens, 4),
        "mean_nats_per_token_plain": round(-sum(plain) / following_tokens, 4),
        "fraction_better": round(better / k, 4),
    }
