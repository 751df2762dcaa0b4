"""Evaluation of a checkpoint: the test metric (bits per character or nats per note), on the default
test split or on any text file / MIDI folder, musical statistics of generated tunes against held-out
tunes, samples, and the model card (``card.json`` + a readable ``card.md``)."""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels import checkpoint as ckpt
from genmodels.card import write_card
from genmodels.data import _stream, load_data, melody_files, read_melodies, text_stream
from genmodels.errors import DataError
from genmodels.sampling import Generator, Settings
from genmodels.train import evaluate

TEXT_SAMPLE_SEED = "ROMEO:\n"
MUSIC_TUNES = 200


def _data_dir(c: ckpt.Checkpoint, data: str | None) -> str:
    if data:
        return data
    return (c.card.get("data") or {}).get("data") or ("data/text" if c.domain == "text" else "data/melody")


def test_metric(c: ckpt.Checkpoint, text_file: str | None = None, midi_dir: str | None = None,
                data: str | None = None) -> dict:
    """The domain metric on a text file, a MIDI folder, or the test split of the checkpoint's corpus."""
    bos = c.tokenizer.bos_id
    if c.domain == "text":
        if text_file:
            try:
                text = Path(text_file).read_text(encoding="utf-8", errors="replace")
            except OSError as e:
                raise DataError(f"Cannot read {text_file}: {e}") from e
            if not text:
                raise DataError(f"{text_file} is empty")
            stream, units, source = *text_stream(c.tokenizer, [text]), text_file
        else:
            d = load_data("text", _data_dir(c, data), tokenizer=c.tokenizer)
            stream, units, source = d.test, d.test_units, f"{_data_dir(c, data)} (test split)"
    else:
        if midi_dir:
            files = melody_files(Path(midi_dir))
            tunes = read_melodies(files, Path("data/cache")) if files else []
            if not tunes:
                raise DataError(f"No readable .mid/.midi files in {midi_dir}")
            seqs = [c.tokenizer.encode(m) for _, m in tunes]
            stream, units, source = _stream(seqs), sum(c.tokenizer.count_notes(s) for s in seqs), midi_dir
        else:
            d = load_data("melody", _data_dir(c, data), augment=False)
            stream, units, source = d.test, d.test_units, f"{_data_dir(c, data)} (test split)"
    r = evaluate(c.model, stream, units, c.domain, bos)
    metric = "bits_per_char" if c.domain == "text" else "nats_per_note"
    return {"metric": metric, "value": round(r["value"], 4), "units": units, "tokens": r["tokens"], "source": source}


def text_sample(g: Generator, seed: str = TEXT_SAMPLE_SEED, length: int = 200, temperature: float = 0.8) -> str:
    r = g.complete(seed, length=length, settings=Settings(temperature=temperature, seed=1))[0]
    return seed + r.continuation


def held_out_tunes(c: ckpt.Checkpoint, data: str | None = None, split: str = "test") -> list:
    folder = Path(_data_dir(c, data)) / split
    files = melody_files(folder)
    if not files:
        raise DataError(f"No held-out tunes in {folder}; run python -m genmodels prepare melody")
    return [m for _, m in read_melodies(files, Path("data/cache"))]


def generate_like(g: Generator, tunes: list, n: int = MUSIC_TUNES, temperature: float = 1.0, seed: int = 0) -> list:
    """One generated tune per held-out tune (cycled to ``n``): same meter, key and number of bars,
    generated from the header alone at ``temperature`` with a fixed random seed."""
    from genmodels.melody import Melody

    out = []
    for i in range(n):
        ref = tunes[i % len(tunes)]
        empty = Melody([], ref.meter, ref.key, ref.tempo)
        bars = max(1, min(ref.n_bars, 32))
        out.append(g.generate_melody(empty, bars=bars, settings=Settings(temperature=temperature, seed=seed + i))[0].full)
    return out


def music_report(c: ckpt.Checkpoint, data: str | None = None, n: int = MUSIC_TUNES) -> dict:
    from genmodels import music_stats

    tunes = held_out_tunes(c, data)
    gen = generate_like(Generator(c), tunes, n)
    index = music_stats.NoveltyIndex(held_out_tunes(c, data, "train"), max_n=16)  # novelty: runs shared with training tunes
    rows = music_stats.compare(gen, tunes, index=index)
    for r in rows:
        for k in ("generated", "held_out", "difference"):
            if isinstance(r.get(k), float):
                r[k] = round(r[k], 4)
    return {"tunes_generated": n, "held_out_tunes": len(tunes), "temperature": 1.0, "rows": rows}


def baseline_summary(domain: str, data: str | None = None) -> dict:
    """The n-gram floor on the same test split, as stored in a model card."""
    from genmodels.baselines import baseline_report

    b = baseline_report(domain, data=data)
    key = "test_bits_per_char" if domain == "text" else "test_nats_per_note"
    return {"model": b["model"], "order": b.get("order"), "value": round(b[key], 4),
            "command": f"python -m genmodels eval --baseline ngram --domain {domain}"
                       + (f" --data {data}" if data else "")}


def eval_checkpoint(path: str, text_file: str | None = None, midi_dir: str | None = None, data: str | None = None,
                    music: bool = False, samples: bool = False, update_card: bool = False) -> dict:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    c = ckpt.load_checkpoint(path)
    report = {"checkpoint": str(path), "domain": c.domain, "test": test_metric(c, text_file, midi_dir, data)}
    if c.card.get("test"):
        report["card_test"] = c.card["test"].get("value")
    g = None
    if samples:
        g = Generator(c)
        if c.domain == "text":
            report["sample"] = text_sample(g)
        else:
            from genmodels.melody import format_note_seed

            tunes = held_out_tunes(c, data)
            report["sample"] = format_note_seed(generate_like(g, tunes, 1)[0])
    if music and c.domain == "melody":
        report["music"] = music_report(c, data)
    if update_card and not (text_file or midi_dir):
        card = dict(c.card)
        card["test"] = report["test"]
        if "sample" in report:
            card["samples"] = [report["sample"]]
        if "music" in report:
            card["music_stats"] = report["music"]
        card["eval_command"] = f"python -m genmodels eval {path}"
        card["baseline"] = baseline_summary(c.domain, data)
        write_card(Path(path), card)
    return report
