"""Time the melody page's Harmonise and "New alto" as a user meets them (AppTest, the whole page run), and
optionally show where the time goes (cProfile, cumulative).

    python scripts/harmonise_page_timing.py --bars 32 10 --profile 25

A melody of each length is generated (random seed 42), then Harmonise is pressed, then "New alto"; each press
is one page run, timed from the click to the end of the run. The library's own harmonise() on the same
melody is timed too, for comparison.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402


def page_with_melody(bars: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).run()
    at.switch_page("app/pages/melody.py").run()
    at.session_state["m_bars"] = bars
    at.session_state["m_seed"] = 42
    at.button(key="m_go").click().run()
    assert not at.exception, at.exception
    for key, value in {"hz_seed": 5, "hz_candidates": 4, "hz_temp": 0.8}.items():
        at.session_state[key] = value
    return at


def timed(label: str, run, profile: int) -> float:
    """Seconds of one page run; with ``profile``, a cProfile of the thread the page runs in."""
    profs: list[cProfile.Profile] = []

    def start_in_thread(frame, event, arg):  # AppTest runs the page in a thread of its own
        profs.append(cProfile.Profile())
        profs[-1].enable()

    if profile:
        threading.setprofile(start_in_thread)
    t0 = time.perf_counter()
    at = run()
    dt = time.perf_counter() - t0
    threading.setprofile(None)
    assert not at.exception, [e.value for e in at.exception]
    print(f"{label}: {dt:.2f} s")
    for prof in profs:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(profile)
    return dt


def library_time(at: AppTest) -> float:
    from app.components.harmony import harmony_checkpoint
    from app.model_cache import available_models
    from genmodels.harmony.adapt import soprano_from_melody
    from genmodels.infer.harmonise import HarmonySettings, harmonise

    h = at.session_state["m_history"][-1]
    ck = harmony_checkpoint(available_models("harmony")[0].path)
    adapted = soprano_from_melody(h["full"], chord_rate="beat")
    s = HarmonySettings(temperature=0.8, top_k=0, seed=5, candidates=4, voice_leading=True)
    t0 = time.perf_counter()
    harmonise(ck, adapted.chorale, s)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bars", type=int, nargs="+", default=[32, 10])
    ap.add_argument("--profile", type=int, default=0, help="print this many functions of a cProfile (0: none)")
    a = ap.parse_args()
    for bars in a.bars:
        at = page_with_melody(bars)
        n = at.session_state["m_history"][-1]["full"].n_bars
        timed(f"{n} bars: Harmonise (page run)", lambda at=at: at.button(key="hz_go").click().run(), a.profile)
        timed(f"{n} bars: New alto (page run)", lambda at=at: at.button(key="hz_regen_1").click().run(), a.profile)
        print(f"{n} bars: harmonise() in the library: {library_time(at):.2f} s")


if __name__ == "__main__":
    main()
