"""Melody: header and bar-event tokens with a grammar, tunes from MIDI files, nats per note.

Training streams are re-drawn each epoch with every tune transposed by a random interval (seeded by
the epoch, so resuming reproduces them exactly).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genmodels.data import (
    CACHE_DIR,
    TokenData,
    melody_files,
    read_melodies,
    recorded_path,
    token_stream,
)
from genmodels.domains.base import Domain
from genmodels.errors import CheckpointError, DataError, GenmodelsError, SettingsError
from genmodels.options import option
from genmodels.util import atomic_write_json, hash_split

SPLITS = ("train", "valid", "test")
BENCH_PROMPT = "E4 G4 A4/2 B4/2 A4 G4"  # the benchmark's request continues this
END_TO_END_BARS = 64
MUSIC_TUNES = 200


def _split_files(folder: Path) -> dict[str, list[Path]]:
    """The MIDI files of each split: train/valid/test subfolders, else a split by file name (small
    folders: the last files by name, so valid and test are never empty)."""
    if all((folder / s).is_dir() for s in SPLITS):
        return {s: melody_files(folder / s) for s in SPLITS}
    files: dict[str, list[Path]] = {s: [] for s in SPLITS}
    for f in melody_files(folder):
        files[hash_split(f.name)].append(f)
    if not files["valid"] or not files["test"]:
        allf = melody_files(folder)
        if len(allf) < 3:
            raise DataError(f"{folder} needs at least 3 readable .mid/.midi files to train on (found {len(allf)})")
        n = max(1, len(allf) // 10)
        files = {"train": allf[: -2 * n], "valid": allf[-2 * n : -n], "test": allf[-n:]}
    return files


def _encode_all(tok, tunes: list) -> tuple[torch.Tensor, int]:
    seqs = [tok.encode(m) for _, m in tunes]
    return token_stream(seqs), sum(tok.count_notes(s) for s in seqs)


def _transposed_stream(tok, tunes: list, seed: int, epoch: int) -> torch.Tensor:
    """The train split for ``epoch``: every tune moved by a random interval, in a shuffled order."""
    from genmodels.melody import MidiError

    rng = random.Random(seed * 100_003 + epoch)
    seqs = []
    for _, m in tunes:
        k = rng.randint(-5, 6)
        try:
            t = m.transpose(k) if k else m
        except MidiError:  # a note would leave the pitch range: keep the tune as it is
            t = m
        seqs.append(tok.encode(t))
    order = list(range(len(seqs)))
    rng.shuffle(order)
    return token_stream([seqs[i] for i in order])


def melody_data(
    folder: str | Path, augment: bool = True, seed: int = 0, cache_dir: str | Path | None = None, tokenizer: Any = None
) -> TokenData:
    """Melodies from ``folder`` (train/valid/test subfolders, or any .mid/.midi files split by name);
    ``cache_dir``: where parsed tunes are kept (default: the repository's data/cache)."""
    from genmodels.melody import MelodyTokenizer

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"MIDI folder not found: {folder}")
    files = _split_files(folder)
    tunes = {s: read_melodies(fs, cache_dir or CACHE_DIR) for s, fs in files.items()}
    if not tunes["train"] or not tunes["valid"]:
        raise DataError(
            f"No readable melodies in {folder} (train: {len(tunes['train'])}, valid: {len(tunes['valid'])})"
        )
    if not tunes["test"]:
        tunes["test"] = tunes["valid"]
    tok = tokenizer or MelodyTokenizer()
    base_train, _ = _encode_all(tok, tunes["train"])
    valid, valid_notes = _encode_all(tok, tunes["valid"])
    test, test_notes = _encode_all(tok, tunes["test"])
    info = {
        "data": recorded_path(folder),
        "split": {s: {"tunes": len(tunes[s]), "files": len(files[s])} for s in SPLITS},
        "augment": "random transposition -5..+6 semitones per tune per epoch" if augment else "none",
    }
    # The range the corpus uses (before augmentation): sampling never leaves it.
    pitches = [n.pitch for _, m in tunes["train"] for n in m.notes]
    info["pitch_range"] = [min(pitches), max(pitches)]
    info["split"]["valid"]["notes"] = valid_notes
    info["split"]["test"]["notes"] = test_notes

    def train_stream(epoch: int) -> torch.Tensor:
        return _transposed_stream(tok, tunes["train"], seed, epoch) if augment else base_train

    return TokenData(MELODY, tok, train_stream, valid, valid_notes, test, test_notes, info)


def held_out_tunes(data: str | Path, split: str = "test") -> list:
    folder = Path(data) / split
    files = melody_files(folder)
    if not files:
        raise DataError(f"No held-out tunes in {folder}; run python -m genmodels prepare melody")
    return [m for _, m in read_melodies(files)]


def model_key(tok: Any, key: tuple[int, str]) -> tuple[int, str]:
    """``key`` if the model's tokenizer knows its mode, else the same tonic in major or minor (by the
    mode's third): older models know only those two."""
    from genmodels.melody.scales import MODE_STEPS

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
    from genmodels.constraints import MelodySteering
    from genmodels.sampling import MAX_CANDIDATES, Settings

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
    from genmodels import music_stats
    from genmodels.constraints import MelodySteering

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
    from genmodels import music_stats

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
    import dataclasses

    from genmodels.sampling import Settings

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


@dataclass(frozen=True)
class MelodyGenerateOptions:
    """The melody options of ``python -m genmodels generate`` (library callers use the Sampler)."""

    key: str = option(
        "",
        'melody: tonic and mode to write in, e.g. "A dorian"; the prompt is moved there by scale degree',
        shown="the prompt's",
    )
    stay_in_key: str = option(
        "off",
        "melody: pitches outside the key's scale: off, gentle (penalised) or strict (never)",
        choices=("off", "gentle", "strict"),
    )
    end_on_tonic: bool = option(False, "melody: the last bar is complete and its last note is the tonic")
    regenerate_bars: str = option(
        "",
        'melody: regenerate these bars of --prompt-midi/--prompt-notes, e.g. "3-4", keeping the others',
        shown="none",
    )
    keep_rhythm: str = option(
        "",
        "melody: a MIDI file whose rhythm (durations, rests, bar lines) is kept; only pitches are sampled",
        shown="none",
    )
    transpose: int = option(0, "melody: move the result by this many semitones")
    abc: str = option("", "melody: also write the result as ABC to this file", shown="none")
    musicxml: str = option("", "melody: also write the result as MusicXML to this file", shown="none")
    tempo: float = option(0.0, "melody: tempo in quarter notes per minute", shown="the prompt's, else 120")


def parse_bar_range(text: str) -> tuple[int, int]:
    """'3-4' -> (3, 4); '5' -> (5, 5). SettingsError otherwise."""
    parts = str(text).replace(" ", "").split("-")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2):
        raise SettingsError(f'Bars to regenerate are written "3-4" or "5"; got {text!r}')
    return nums[0], nums[-1]


def _prompt_from_args(args: argparse.Namespace, required: bool = True):
    from genmodels.melody import Melody, parse_note_prompt, read_midi

    meter = tuple(int(x) for x in args.meter.split("/"))
    if args.prompt_midi:
        return read_midi(args.prompt_midi, track=getattr(args, "track", None))
    if args.prompt_notes:
        return parse_note_prompt(args.prompt_notes, meter=meter)
    if not required:
        return Melody([], meter)
    raise GenmodelsError("A melody model needs --prompt-notes or --prompt-midi")


def _melody_options(args: argparse.Namespace) -> MelodyGenerateOptions:
    import dataclasses

    from genmodels.options import from_flat

    names = [f.name for f in dataclasses.fields(MelodyGenerateOptions)]
    return from_flat(MelodyGenerateOptions, {k: getattr(args, k) for k in names if getattr(args, k, None) is not None})


def run_melody_generate(sampler: Any, args: argparse.Namespace, length: int, settings: Any) -> list:
    """``generate`` for a melody model: continue, regenerate bars or keep a rhythm; transpose; write
    MIDI (and ABC / MusicXML when asked). Returns the results."""
    from genmodels.constraints import MelodySteering
    from genmodels.melody import PITCH_RANGE
    from genmodels.melody.scales import parse_abc_key, transpose

    o = _melody_options(args)
    steering = MelodySteering(o.stay_in_key, o.end_on_tonic)
    key = parse_abc_key(o.key) if o.key else None
    prompt = _keyed_prompt(_prompt_from_args(args, required=not o.keep_rhythm), key, o.tempo)
    results = _melody_results(sampler, o, prompt, key, length, settings, steering)
    if o.transpose:
        for r in results:
            r.full = transpose(r.full, o.transpose, *PITCH_RANGE)
    _write_melody_results(results, o, args, steering)
    return results


def _keyed_prompt(prompt: Any, key: tuple[int, str] | None, tempo: float | None) -> Any:
    """The prompt moved to ``key`` (by scale degree) and at ``tempo``, where given."""
    import dataclasses

    if key and prompt.notes:
        prompt = prompt.to_key(*key)
    elif key:
        prompt = dataclasses.replace(prompt, key=key)
    return dataclasses.replace(prompt, tempo=tempo) if tempo else prompt


def _melody_results(sampler: Any, o: Any, prompt: Any, key: Any, length: int, settings: Any, steering: Any) -> list:
    """Keep a rhythm, regenerate bars, or continue the prompt, as the options ask."""
    import dataclasses

    from genmodels.melody import read_midi

    if o.keep_rhythm:
        rhythm = read_midi(o.keep_rhythm)
        rhythm = dataclasses.replace(rhythm, key=key or rhythm.key, tempo=o.tempo or rhythm.tempo)
        return sampler.repitch(rhythm, settings, steering)
    if o.regenerate_bars:
        if not prompt.notes:
            raise SettingsError("--regenerate-bars needs the melody to edit: --prompt-midi or --prompt-notes")
        first, last = parse_bar_range(o.regenerate_bars)
        candidates = settings.n if settings.n > 1 else 8
        return [sampler.regenerate_bars(prompt, first, last, settings, steering, candidates=candidates)]
    return sampler.generate_melody(prompt, bars=length, settings=settings, steering=steering)


def _write_melody_results(results: list, o: Any, args: argparse.Namespace, steering: Any) -> None:
    """Each result as MIDI (and ABC / MusicXML when asked), NAME-1, NAME-2 ... for several; one line each."""
    from genmodels.melody import format_notes, write_midi
    from genmodels.melody.abc import to_abc
    from genmodels.melody.musicxml import musicxml_bytes
    from genmodels.melody.scales import key_name

    many = len(results) > 1

    def named(base: str | Path, i: int) -> Path:
        p = Path(base)
        return p.with_name(f"{p.stem}-{i + 1}{p.suffix}") if many else p

    out = Path(args.out or "generated.mid")
    for i, r in enumerate(results):
        write_midi(r.full, named(out, i), program=args.program)
        if o.abc:
            named(o.abc, i).write_text(to_abc(r.full, title=f"Generated in {key_name(*r.full.key)}"))
        if o.musicxml:
            named(o.musicxml, i).write_bytes(musicxml_bytes(r.full))
        rate = f"; constraints overruled {r.overruled} of {r.events} events" if steering.active else ""
        print(f"{named(out, i)} ({key_name(*r.full.key)}{rate}): {format_notes(r.full)}")


class MelodyDomain(Domain):
    name = "melody"
    metric = "nats_per_note"
    metric_unit = "note"
    metric_note = "Nats per note on held-out tunes; an n-gram model on the same tokens is the floor to beat."
    data_folder = "data/melody"
    default_length = 8
    length_unit = "bars"
    tokenizer_file = "tokenizer.json"
    sample_length = f"{END_TO_END_BARS} bars + MIDI + audio"

    def load_tokenizer(self, folder: Path):
        from genmodels.melody import MelodyTokenizer

        f = Path(folder) / self.tokenizer_file
        try:
            return MelodyTokenizer.from_config(json.loads(f.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{f}: not a readable melody tokenizer ({e})") from e

    def fine_tune_tokenizer(self, parent: Any) -> Any:
        from genmodels.melody import MelodyTokenizer

        newest = MelodyTokenizer()
        return newest if newest.vocab[: parent.vocab_size] == parent.vocab else parent

    def save_tokenizer(self, folder: Path, tokenizer: Any) -> None:
        atomic_write_json(Path(folder) / self.tokenizer_file, tokenizer.to_config())

    def load_data(
        self, folder: str | Path, *, tokenizer: Any = None, vocab_size: int = 2048, augment: bool = True, seed: int = 0
    ) -> TokenData:
        return melody_data(folder, augment=augment, seed=seed, tokenizer=tokenizer)  # the vocabulary is fixed

    def stream_from(self, source: str | Path, tokenizer: Any) -> tuple[torch.Tensor, int]:
        files = melody_files(Path(source))
        tunes = read_melodies(files) if files else []
        if not tunes:
            raise DataError(f"No readable .mid/.midi files in {source}")
        return _encode_all(tokenizer, tunes)

    def prepare(self, out: Path | None, workers: int) -> dict:
        from genmodels.corpus import DATA_README, write_readme_section
        from genmodels.melody.corpus import prepare_melody, write_data_readme_section

        stats = prepare_melody(out or self.default_data, workers=workers)
        write_readme_section(DATA_README, self.name, write_data_readme_section(stats))
        return stats

    def baseline(self, data: str | Path | None = None, order: int | None = None) -> dict:
        from genmodels.baselines import melody_baseline

        return melody_baseline(data or self.default_data, orders=range(2, 9) if order is None else [int(order)])

    def banned_tokens(self, tokenizer: Any, config: dict) -> torch.Tensor:
        # Pitches outside the training data's range: the model has no evidence for them.
        from genmodels.melody import PITCH_RANGE

        banned = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        if config.get("pitch_range"):
            lo, hi = config["pitch_range"]
            for p in range(PITCH_RANGE[0], PITCH_RANGE[1] + 1):
                if not lo <= p <= hi:
                    banned[tokenizer.pitch_id(p)] = True
        return banned

    def token_label(self, tokenizer: Any, token_id: int) -> str:
        return tokenizer.vocab[token_id]

    def run_generate(self, sampler: Any, args: argparse.Namespace, length: int, settings: Any) -> None:
        run_melody_generate(sampler, args, length, settings)

    def card_sample(self, sampler: Any, data: str | Path) -> str:
        from genmodels.melody import format_notes

        return format_notes(generate_like(sampler, held_out_tunes(data), 1)[0])

    def end_to_end(self, sampler: Any) -> None:
        from genmodels.audio import wav_bytes
        from genmodels.melody import melody_to_midi, midi_bytes, parse_note_prompt
        from genmodels.sampling import Settings

        prompt = parse_note_prompt(BENCH_PROMPT, meter=(4, 4))
        r = sampler.generate_melody(prompt, bars=END_TO_END_BARS, settings=Settings(temperature=1.0, seed=1))[0]
        midi_bytes(r.full)
        wav_bytes(melody_to_midi(r.full))

    def sample_statistics(self, checkpoint: Any, data: str | Path, temperatures: tuple = (1.0,)) -> dict:
        from genmodels.sampling import Sampler

        return music_report(Sampler(checkpoint), data, temperatures=tuple(temperatures))

    def passage_report(self, sampler: Any, data: str | Path) -> dict:
        return regenerate_report(sampler, held_out_tunes(data))


MELODY = MelodyDomain()
