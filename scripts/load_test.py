"""Load test: N browser sessions generating at the same time against one ``streamlit run app.py``.

Starts the app on a free port (127.0.0.1 only), starts ONE headless Chromium (/usr/bin/chromium, the end-to-end
test's launch arguments) and opens N independent browser contexts in it, one per thread (each thread has its own
Playwright, connected to that Chromium over the DevTools protocol). All sessions start together; each one
  1. opens the Text page, types its own seed text, presses Generate and waits for the result;
  2. opens the Melody page, generates from note names and waits for the audio player
     (skipped, with a note, when the page says that no melody model was found).
The random-seed field of each page keeps the value the app drew for that session (a different one per session);
the table shows it, so a run can be reproduced by hand.

Errors: a Streamlit exception box, an ``st.error`` alert after generating, a timeout (each wait has one, and the
whole run has one), an error in the page's console or an uncaught page error. A resource from another host that
fails to load (the machine is offline: Streamlit's favicon comes from fonts.gstatic.com) is printed as a note,
not counted. It prints a table per session and
the totals (median/max latency per page, wall time, the server's peak resident memory) and exits 0 when no
session had an error, 1 otherwise. The server and the browser are always stopped.

Usage (from the repository root): python -m scripts.load_test [--sessions 8] [--timeout 300] [--wait-timeout 90]
The steps are the end-to-end test's helpers (tests/test_e2e_browser.py), imported, not copied.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from tests import test_e2e_browser as e2e
from tests.test_e2e_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SEED_NOTES,
    generate_melody,
    generate_text,
    open_melody_page,
    streamlit_server,
)

TEXT_SEEDS = [
    "To be, or not to be",
    "ROMEO.\nBut soft, what light through yonder window breaks?\n",
    "Now is the winter of our discontent",
    "Friends, Romans, countrymen, lend me your ears;",
    "Shall I compare thee to a summer's day?",
    "The quality of mercy is not strain'd,",
    "All the world's a stage,",
    "If music be the food of love, play on;",
]
MELODY_SEEDS = [SEED_NOTES, "C4 D4 E4 F4 G4*2 G4*2", "A4 B4 C5 A4 E4*2 r", "D4 F#4 A4 D5/2 C#5/2 B4*2"]
NO_MELODY_MODEL = "No melody model was found"
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlert"]:has([data-testid="stAlertContentError"])'


@dataclass
class Session:
    n: int
    phase: str = "waiting"
    text_s: float | None = None
    melody_s: float | None = None
    text_seed: str = "-"
    melody_seed: str = "-"
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    done: bool = False
    finished_at: float | None = None
    closed: bool = False  # set when the overall limit is reached: what happens while stopping is not counted

    def error(self, text: str) -> None:
        if not self.closed and text not in self.errors:
            self.errors.append(text)


def one_line(s: str, limit: int = 240) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[:limit] + "…"


def page_errors(page, where: str) -> list[str]:
    """Streamlit exception boxes and st.error alerts now on the page (no waiting)."""
    found = [f"{where}: exception box: {one_line(t)}" for t in page.locator(EXCEPTION).all_inner_texts()]
    found += [f"{where}: error alert: {one_line(t)}" for t in page.locator(ERROR_ALERT).all_inner_texts()]
    return found


def random_seed_value(page) -> str:
    try:
        return page.get_by_role("spinbutton", name="Random seed").first.input_value(timeout=5_000)
    except Exception:  # informational only
        return "?"


def start_chromium(profile: Path, log_path: Path, timeout_s: float = 60.0) -> tuple[subprocess.Popen, str]:
    """One headless Chromium with a DevTools port; returns (process, ws endpoint)."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            CHROMIUM,
            *CHROMIUM_ARGS,
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    port_file = profile / "DevToolsActivePort"
    deadline = time.time() + timeout_s
    while True:
        if port_file.exists():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return proc, f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        if proc.poll() is not None or time.time() > deadline:
            stop_process_group(proc)
            raise RuntimeError(f"chromium did not start; see {log_path}")
        time.sleep(0.2)


def stop_process_group(proc: subprocess.Popen) -> None:
    """Stop a process started with start_new_session=True, and its children (its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def server_pid(port: int) -> int | None:
    """The pid of the ``streamlit run app.py --server.port <port>`` process."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in argv and b"app.py" in argv and str(port).encode() in argv:
            return int(d.name)
    return None


def proc_status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak_kb, self.stop = pid, every_s, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_kb = max(self.peak_kb, proc_status_kb(self.pid, "VmRSS") or 0)
            self.stop.wait(self.every_s)


def run_session(s: Session, ws: str, url: str, start: threading.Barrier, wait_ms: int, shots: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    page = None
    try:
        s.phase = "connect"
        with sync_playwright() as p:
            browser = p.chromium.connect_over_cdp(ws, timeout=wait_ms)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.set_default_timeout(wait_ms)
                page.on("console", lambda m: on_console(s, m, url))
                page.on("pageerror", lambda e: s.error(f"{s.phase}: page error: {one_line(e)}"))
                s.phase = "start"
                try:
                    start.wait(wait_ms / 1000)
                except threading.BrokenBarrierError:  # another session did not connect: start anyway
                    pass

                s.phase = "text"
                t0 = time.perf_counter()
                generate_text(page, url, TEXT_SEEDS[s.n % len(TEXT_SEEDS)] + f" ({s.n + 1})")
                s.text_s = time.perf_counter() - t0
                s.text_seed = random_seed_value(page)
                for e in page_errors(page, "text"):
                    s.error(e)

                s.phase = "melody page"
                open_melody_page(page)
                if page.get_by_text(NO_MELODY_MODEL).count():
                    s.notes.append("melody skipped: the page says no melody model was found")
                else:
                    s.phase = "melody"
                    t0 = time.perf_counter()
                    generate_melody(page, MELODY_SEEDS[s.n % len(MELODY_SEEDS)])
                    s.melody_s = time.perf_counter() - t0
                    s.melody_seed = random_seed_value(page)
                    for e in page_errors(page, "melody"):
                        s.error(e)
                s.phase = "done"
                if s.errors:
                    keep_evidence(page, s, shots)
                context.close()
            except Exception:
                if page is not None and not s.closed:
                    keep_evidence(page, s, shots)
                raise
            finally:
                browser.close()
    except PlaywrightTimeout as e:
        s.error(f"{s.phase}: timeout: {one_line(str(e).splitlines()[0])}")
    except Exception as e:  # a broken session is a finding, not a crash of the load test
        s.error(f"{s.phase}: {type(e).__name__}: {one_line(str(e).splitlines()[0] if str(e) else '')}")
    finally:
        s.finished_at = time.perf_counter()
        s.done = True


def keep_evidence(page, s: Session, shots: Path) -> None:
    """After a failure: the error boxes on the page now, and a screenshot."""
    try:
        for e in page_errors(page, s.phase):
            s.error(e)
        shot = shots / f"session-{s.n + 1}.png"
        page.screenshot(path=str(shot), full_page=True, timeout=10_000)
        s.notes.append(f"screenshot: {shot}")
    except Exception:  # the page may be gone
        pass


def on_console(s: Session, msg, app_url: str) -> None:
    """Every console error is an error, including a resource from another host: the app works offline."""
    if msg.type != "error":
        return
    where = msg.location.get("url", "") if isinstance(msg.location, dict) else ""
    s.error(f"{s.phase}: console error: {one_line(msg.text)}" + (f" [{where}]" if where else ""))


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def latency(name: str, xs: list[float]) -> str:
    if not xs:
        return f"{name:<16}-"
    return f"{name:<16}median {statistics.median(xs):.1f} s, max {max(xs):.1f} s ({len(xs)} done)"


def report(
    sessions: list[Session],
    wall_s: float,
    total_s: float,
    hwm_kb: int | None,
    rss_kb: int,
    base_kb: int | None,
    log: Path | None,
) -> int:
    print()
    print(f"{'session':>7}  {'text s':>7}  {'melody s':>8}  {'text seed':>9}  {'melody seed':>11}  errors")
    for s in sessions:
        print(
            f"{s.n + 1:>7}  {fmt_s(s.text_s):>7}  {fmt_s(s.melody_s):>8}  {s.text_seed:>9}  {s.melody_seed:>11}  "
            f"{len(s.errors)}"
        )
    shared = [note for note in sessions[0].notes if all(note in s.notes for s in sessions)] if sessions else []
    for note in shared:
        print(f"  every session, note: {note}")
    for s in sessions:
        for e in s.errors:
            print(f"  session {s.n + 1} error: {e}")
        for note in s.notes:
            if note not in shared:
                print(f"  session {s.n + 1} note: {note}")
    n_err = sum(len(s.errors) for s in sessions)
    bad = sum(1 for s in sessions if s.errors)
    mb = lambda kb: "?" if not kb else f"{kb / 1024:.0f} MiB"  # noqa: E731
    print()
    print(f"{'sessions':<16}{len(sessions)} ({sum(1 for s in sessions if s.done and not s.errors)} without error)")
    print(f"{'errors':<16}{n_err} (in {bad} session(s))")
    print(latency("text latency", [s.text_s for s in sessions if s.text_s is not None]))
    print(latency("melody latency", [s.melody_s for s in sessions if s.melody_s is not None]))
    print(f"{'wall time':<16}{wall_s:.1f} s for the sessions ({total_s:.1f} s in all, with server/browser start)")
    print(
        f"{'server memory':<16}peak RSS (VmHWM) {mb(hwm_kb)}; highest sampled VmRSS {mb(rss_kb)}; "
        f"VmRSS before the sessions {mb(base_kb)}"
    )
    if log is not None:
        print(f"{'server log':<16}{log}")
        if n_err and log.exists():
            tb = [
                ln
                for ln in log.read_text(errors="replace").splitlines()
                if "Error" in ln or "Exception" in ln or "Traceback" in ln
            ]
            for ln in tb[-20:]:
                print(f"  server: {one_line(ln)}")
    return 1 if n_err else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=8, help="browser sessions at the same time (default 8)")
    ap.add_argument("--timeout", type=float, default=300, help="overall limit in seconds (default 300)")
    ap.add_argument(
        "--wait-timeout",
        type=float,
        default=e2e.TIMEOUT_MS / 1000,
        help=f"limit for each wait in seconds (default {e2e.TIMEOUT_MS / 1000:g})",
    )
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: install Debian's chromium", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    deadline = time.time() + args.timeout
    wait_ms = int(args.wait_timeout * 1000)
    e2e.TIMEOUT_MS = wait_ms  # the helpers' own waits read this module global
    sessions = [Session(i) for i in range(args.sessions)]
    tmp = Path(tempfile.mkdtemp(prefix="load-test-"))
    chromium = None
    sampler = None
    log = None
    hwm_kb = base_kb = None
    wall_s = 0.0
    threads: list[threading.Thread] = []
    try:
        with streamlit_server(startup_s=min(90.0, args.timeout)) as url:
            port = urlparse(url).port
            log = Path(os.environ.get("TMPDIR", "/tmp")) / f"streamlit-e2e-{port}.log"
            pid = server_pid(port)
            print(
                f"app at {url} (server pid {pid}); {args.sessions} session(s); limits: {args.timeout:g} s "
                f"overall, {args.wait_timeout:g} s per wait",
                flush=True,
            )
            if pid:
                base_kb = proc_status_kb(pid, "VmRSS")
                sampler = RssSampler(pid)
                sampler.start()
            chromium, ws = start_chromium(tmp / "profile", tmp / "chromium.log")
            start = threading.Barrier(args.sessions + 1)
            threads = [
                threading.Thread(
                    target=run_session, args=(s, ws, url, start, wait_ms, tmp), name=f"session-{s.n + 1}", daemon=True
                )
                for s in sessions
            ]
            for t in threads:
                t.start()
            try:
                start.wait(max(1.0, min(args.wait_timeout, deadline - time.time())))
            except threading.BrokenBarrierError:
                print("not every session connected in time; going on with those that did", flush=True)
            t0 = time.perf_counter()
            for t in threads:
                t.join(max(0.0, deadline - time.time()))
            for s in sessions:
                if not s.done:
                    s.error(f"{s.phase}: timeout: the overall limit of {args.timeout:g} s was reached")
                s.closed = True
            ends = [s.finished_at for s in sessions if s.finished_at is not None]
            wall_s = (max(ends) if len(ends) == len(sessions) else time.perf_counter()) - t0
            if pid:
                hwm_kb = proc_status_kb(pid, "VmHWM")
            stop_process_group(chromium)  # the browser goes first, while the server still answers
    except Exception as e:
        print(f"load test failed: {type(e).__name__}: {e}", file=sys.stderr)
        for s in sessions:
            if not s.done:
                s.error(f"{s.phase}: not run: {type(e).__name__}: {one_line(str(e))}")
            s.closed = True
    finally:
        if sampler is not None:
            sampler.stop.set()
        if chromium is not None:
            stop_process_group(chromium)
        shutil.rmtree(tmp / "profile", ignore_errors=True)  # the rest is kept for a failed run
    code = report(
        sessions, wall_s, time.perf_counter() - t_start, hwm_kb, sampler.peak_kb if sampler else 0, base_kb, log
    )
    if code == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"{'browser files':<16}{tmp} (chromium.log, screenshots of failed sessions)")
    sys.stdout.flush()
    if any(t.is_alive() for t in threads):  # sessions stuck past the overall limit: do not wait for them
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
