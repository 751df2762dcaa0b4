"""Objects shared by every session of a server (cached models, piece tables, prefix caches) give the same
answers when many threads use them at once as when one thread does, and never raise."""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from genmodels.infer.decoding import Settings
from genmodels.infer.healing import MAX_CACHED_MASKS, PieceTable, table_for
from genmodels.infer.sampling import Sampler
from genmodels.infer.suggest import suggest

ROOT = Path(__file__).resolve().parents[1]
TEXT, MELODY, HARMONY = (ROOT / "checkpoints" / n for n in ("text-gru", "melody-gru", "harmony-gru"))


@pytest.fixture
def busy_switching():
    """Switch threads as often as the interpreter allows, so a missing lock shows up in a short test."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


class SlowLookups(OrderedDict):
    """The table's own cache, with a thread switch after each lookup: the moment at which another thread's
    eviction would hit, made certain instead of rare."""

    def get(self, key, default=None):
        value = super().get(key, default)
        time.sleep(0.0002)
        return value


def test_piece_table_masks_under_many_threads(busy_switching):
    """The shared mask cache kept full: readers look up its keys oldest first (each one about to be evicted)
    while another thread inserts new keys (each evicting the oldest). No KeyError, every mask right."""
    table = PieceTable([b"a", b"b", b"ab", b"ba"])
    keys = [f"k{i}".encode() for i in range(MAX_CACHED_MASKS)]
    for k in keys:
        table.allowed(k)
    table._masks = SlowLookups(table._masks)
    errors: list[BaseException] = []
    done = threading.Event()

    def reader(offset: int) -> None:
        try:
            i = offset
            while not done.is_set():
                assert not table.allowed(keys[i % len(keys)]).any()  # no piece starts with "k"
                i += 1
        except BaseException as e:  # collected: an exception in a thread would not fail the test by itself
            errors.append(e)

    def writer() -> None:
        try:
            for j in range(3_000):
                table.allowed(f"w{j}".encode())
        except BaseException as e:
            errors.append(e)
        done.set()

    threads = [threading.Thread(target=reader, args=(o,)) for o in (0, 1000, 2000)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert table.allowed(b"a").tolist() == [True, False, True, False]


def test_one_piece_table_per_tokenizer_across_threads(tiny_text_ckpt):
    tok = Sampler(tiny_text_ckpt).tok
    with ThreadPoolExecutor(8) as pool:
        tables = list(pool.map(lambda _: table_for(tok), range(16)))
    assert all(t is tables[0] for t in tables)


needs_shipped = pytest.mark.skipif(
    not all(p.is_dir() for p in (TEXT, MELODY, HARMONY)), reason="the shipped checkpoints are not here"
)


@needs_shipped
def test_suggest_generate_and_harmonise_from_many_threads_match_one_thread():
    """What several users do at once on one server, each with the shared (cached) model objects."""
    from genmodels.harmony.adapt import soprano_from_melody
    from genmodels.infer.harmonise import HarmonySettings, harmonise
    from genmodels.music import parse_note_prompt

    text, melody = Sampler(TEXT), Sampler(MELODY)
    harmony = Sampler(HARMONY).ckpt
    tune = parse_note_prompt("E4 D4 C4 D4 | E4 E4 E4*2 | D4 D4 D4*2 | E4 G4 G4*2")
    prompts = ["To be, or not to b", "ROMEO.\nBut soft, what light through yon", "Now is the winter of our dis"]

    def suggestions(p: str):
        words, ghost = suggest(text.model, text.tok, p)
        return [(w.word, round(w.prob, 5)) for w in words], ghost

    def continuation(seed: int):
        return text.complete("HAMLET.\n", 40, Settings(temperature=1.0, seed=seed))[0].continuation

    def tune_out(seed: int):
        r = melody.generate_melody(tune, bars=4, settings=Settings(temperature=1.0, seed=seed))[0]
        return [(n.pitch, n.start, n.duration) for n in r.full.notes]

    def harmony_out(seed: int):
        soprano = soprano_from_melody(tune).chorale
        return harmonise(harmony, soprano, HarmonySettings(seed=seed)).chorale.voices

    jobs = [(suggestions, p) for p in prompts] + [(continuation, s) for s in (1, 2, 3)]
    jobs += [(tune_out, s) for s in (1, 2)] + [(harmony_out, s) for s in (1, 2)]
    alone = [f(a) for f, a in jobs]
    with ThreadPoolExecutor(6) as pool:
        for _ in range(2):
            together = list(pool.map(lambda job: job[0](job[1]), jobs * 2))
            assert together == alone * 2
