"""End to end: ``streamlit run app.py`` driven by Debian's Chromium through Playwright.

Types a seed and generates text; on the melody page uploads a MIDI file, generates from note names, checks
that the <audio> element plays a fetchable WAV with a duration, downloads the .mid and reads it back; on the
Train page fine-tunes a model on an uploaded zip and writes with it on the Text page.
The helpers (server, browser) are reused by ``scripts/screenshots.py``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SEED_NOTES = "E4 G4 A4/2 A4/2 G4*2"
SEED_PITCHES = [64, 67, 69, 69, 67]
TIMEOUT_MS = 90_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict | None = None, startup_s: float = 90.0):
    """Start ``streamlit run app.py`` on a free port; yield its URL; stop it afterwards."""
    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"streamlit-e2e-{port}.log", "w+b")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.seek(0)
                raise RuntimeError(f"streamlit did not start:\n{log.read().decode(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) to run the "
            "browser test; .ci/run does this"
        )
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 800):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def wait_idle(page) -> None:
    """Wait until Streamlit has finished the current script run (the 'Running…' status is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=TIMEOUT_MS)


def generate_text(page, url: str, seed: str = "To be, or not to be", keep_settings: bool = False) -> str:
    """Type ``seed`` in the Text page and generate (reloading the app first unless ``keep_settings``)."""
    if not keep_settings:
        page.goto(url)
        generate_mode(page)
    box = page.get_by_role("textbox", name="Prompt")
    box.fill(seed)
    box.press("Control+Enter")  # commit the text area
    wait_idle(page)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function(
        "() => { const c = document.querySelector('.gm-cont'); return c && c.textContent.length > 0; }",
        timeout=TIMEOUT_MS,
    )
    wait_idle(page)
    return page.locator(".gm-cont").first.text_content()


def generate_mode(page) -> None:
    """The Text page opens on the typing view: switch to the Generate flow."""
    page.get_by_text("Generate a continuation", exact=True).click()
    page.get_by_role("textbox", name="Prompt").wait_for()
    wait_idle(page)


def typing_box(page):
    return page.locator("textarea.gm-input")


def suggested_words(page) -> list[str]:
    return [w.strip() for w in page.locator(".gm-word").evaluate_all("bs => bs.map(b => b.childNodes[1].textContent)")]


def wait_for_suggestions(page) -> list[str]:
    """Wait until the words shown are an answer for the text on screen (the component drops older ones)."""
    page.wait_for_function("() => document.querySelectorAll('.gm-word').length > 0", timeout=TIMEOUT_MS)
    return suggested_words(page)


def open_melody_page(page) -> None:
    open_page(page, "Melody", "Write a melody")


def open_page(page, link: str, heading: str) -> None:
    page.get_by_role("link", name=link).click()
    page.get_by_role("heading", name=heading, exact=True).wait_for()
    wait_idle(page)


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def generate_melody(page, notes: str = SEED_NOTES) -> None:
    page.get_by_role("radio", name="Note names").check(force=True)
    wait_idle(page)
    box = page.get_by_role("textbox", name="Notes", exact=True)
    box.fill(notes)
    box.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Generate melody").click()
    page.wait_for_selector("audio", timeout=TIMEOUT_MS)
    wait_idle(page)


def no_exception_on_page(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0


def midi_bytes_of(pitches) -> bytes:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0)
    for i, p in enumerate(pitches):
        inst.notes.append(pretty_midi.Note(velocity=90, pitch=p, start=i * 0.5, end=(i + 1) * 0.5))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def test_browser_text_and_melody(tmp_path):
    require_browser()
    from app.model_cache import available_models

    if not available_models("text"):
        pytest.skip("no text checkpoint found")
    import pretty_midi

    with streamlit_server() as url, browser_page() as page:
        # The app works offline: every request the page makes goes to the app's own server.
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
        page.goto(url)
        page.get_by_role("heading", name="Write with an LSTM or a GRU").wait_for()
        wait_idle(page)
        generate_mode(page)
        set_number(page, "Random seed", 99)
        continuation = generate_text(page, url, keep_settings=True)
        assert continuation.strip()
        assert "To be, or not to be" in page.locator(".gm-prompt").first.text_content()
        no_exception_on_page(page)

        # Settings and results survive a visit to another page.
        open_page(page, "Models", "Models")
        open_page(page, "Text", "Write with an LSTM or a GRU")
        page.get_by_role("spinbutton", name="Random seed").wait_for()
        assert page.get_by_role("spinbutton", name="Random seed").input_value() == "99"
        assert page.get_by_role("textbox", name="Prompt").input_value() == "To be, or not to be"
        assert page.locator(".gm-cont").first.text_content() == continuation
        page.get_by_text("random seed 99").first.wait_for()

        # A paste over the limit keeps its end (the model continues from there), with a message.
        box = page.get_by_role("textbox", name="Prompt")
        box.fill("x" * 100_000 + "y" * 20_000)
        box.press("Control+Enter")
        page.get_by_text("120,000 characters").first.wait_for()
        wait_idle(page)
        assert box.input_value() == "x" * 80_000 + "y" * 20_000

        assert not outside, f"requests outside the app: {outside}"
        if not available_models("melody"):
            pytest.skip("no melody checkpoint found (text part passed)")
        open_melody_page(page)

        # A real upload through the browser: the extracted melody is shown before generating.
        page.get_by_role("radio", name="MIDI file").check(force=True)
        wait_idle(page)
        page.locator('input[type="file"]').set_input_files(
            {"name": "tune.mid", "mimeType": "audio/midi", "buffer": midi_bytes_of([60, 62, 64, 65])}
        )
        page.get_by_text("C4 D4 E4 F4").first.wait_for()
        no_exception_on_page(page)
        # The uploaded file is still there after a visit to another page.
        open_page(page, "Models", "Models")
        open_melody_page(page)
        page.get_by_text("Using uploaded file tune.mid").first.wait_for()
        page.get_by_text("C4 D4 E4 F4").first.wait_for()

        generate_melody(page)
        no_exception_on_page(page)
        audio = page.locator("audio").first
        src = audio.get_attribute("src")
        assert src
        fetched = page.evaluate(
            "async (src) => { const r = await fetch(src); const b = await r.arrayBuffer();"
            " return [r.status, b.byteLength]; }",
            src,
        )
        assert fetched[0] == 200 and fetched[1] > 10_000
        duration = audio.evaluate("""async (el) => {
            if (el.readyState < 1) {
                await new Promise((ok, bad) => {
                    el.addEventListener('loadedmetadata', ok, {once: true});
                    el.addEventListener('error', () => bad(new Error('audio error')), {once: true});
                    el.load();
                });
            }
            return el.duration; }""")
        assert duration > 0

        midi = download(page, "Melody (.mid)", tmp_path)
        pm = pretty_midi.PrettyMIDI(str(midi))
        notes = sorted(pm.instruments[0].notes, key=lambda n: n.start)
        assert [n.pitch for n in notes[: len(SEED_PITCHES)]] == SEED_PITCHES
        assert len(notes) > len(SEED_PITCHES)
        check_score(page, written_note_count(midi))
        check_notation_downloads(page, tmp_path, written_note_count(midi))
        melody_coediting(page, tmp_path)

        # Settings survive a visit to another page.
        set_number(page, "Tempo (BPM)", 97)
        open_page(page, "Models", "Models")
        open_melody_page(page)
        assert page.get_by_role("spinbutton", name="Tempo (BPM)").input_value() == "97"
        assert not outside, f"requests outside the app: {outside}"


def download(page, button: str, folder: Path) -> Path:
    with page.expect_download() as dl:
        page.get_by_role("button", name=button).click()
    path = folder / dl.value.suggested_filename
    dl.value.save_as(path)
    return path


def written_note_count(midi: Path) -> int:
    """The notes of a downloaded MIDI file as a score writes them: the MIDI plays repeats out, the score and
    the ABC and MusicXML write a repeated part once (its form is in the file's text event)."""
    from genmodels.music import read_midi
    from genmodels.music.form import written_bars_with_signs

    m = read_midi(midi)
    shown = set(written_bars_with_signs(m.form, m.n_bars)[0])
    return sum(n.start // m.bar_ticks in shown for n in m.notes)


def check_score(page, n_notes: int) -> None:
    """The score is an SVG image in the page (no iframe), drawn by the browser; its written notes, less the
    ties, are the melody's notes."""
    from app.render import score_svg
    from genmodels.music.engrave import svg_note_count, svg_tie_count

    img = page.locator(".gm-score img").first
    img.wait_for()
    assert page.evaluate("i => i.complete && i.naturalWidth > 0", img.element_handle()), "the browser drew the score"
    svg = score_svg(f'src="{img.get_attribute("src")}"')
    assert svg_note_count(svg) - svg_tie_count(svg) == n_notes, n_notes


def check_notation_downloads(page, folder: Path, n_notes: int) -> None:
    from music21 import converter

    abc = converter.parse(str(download(page, "ABC (.abc)", folder)), format="abc")
    xml = converter.parse(str(download(page, "MusicXML (.musicxml)", folder)), format="musicxml")
    for score in (abc, xml):
        tied_on = [n for n in score.flatten().notes if n.tie is not None and n.tie.type != "start"]
        assert len(score.flatten().notes) - len(tied_on) == n_notes


def melody_coediting(page, folder: Path) -> None:
    """Strict key, then regenerate bars 3-4 (where the library has them): a new version, still a score."""
    from genmodels.infer.sampling import Sampler

    if "steering" in __import__("inspect").signature(Sampler.generate_melody).parameters:
        page.get_by_role("radio", name="strict").click()
        wait_idle(page)
        page.get_by_role("button", name="Generate melody").click()
        page.get_by_text("stay in key: strict").first.wait_for()
        wait_idle(page)
    if hasattr(Sampler, "regenerate_bars"):
        set_number(page, "From bar", 3)
        set_number(page, "To bar", 4)
        page.get_by_role("button", name="Regenerate these bars").click()
        page.get_by_text("regenerated bars 3–4").first.wait_for()
        wait_idle(page)
        no_exception_on_page(page)

        check_score(page, written_note_count(download(page, "Melody (.mid)", folder)))


def test_browser_typing_with_suggestions():
    """Type a sentence key by key: suggestions follow the text; a click takes a word, Tab the ghost text;
    keys faster than the answers never leave stale words; the text survives a visit to another page."""
    require_browser()
    from app.model_cache import available_models

    if not available_models("text"):
        pytest.skip("no text checkpoint found")
    with streamlit_server() as url, browser_page() as page:
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
        page.goto(url)
        box = typing_box(page)
        box.wait_for()
        wait_idle(page)
        seen = []
        for ch in "To be, or not to b":
            box.press_sequentially(ch, delay=0)
            if ch in "bt":  # after some keys, wait for the answer for exactly this text
                seen.append(wait_for_suggestions(page))
        assert len({tuple(w) for w in seen}) > 1, seen  # the suggestions changed as the text grew
        words = wait_for_suggestions(page)
        assert all(w.startswith("b") for w in words), words  # completions of the word being typed
        # a click takes the first word and a space: the next words are offered at once
        page.locator(".gm-word").first.click()
        page.wait_for_function("w => document.querySelector('textarea.gm-input').value.endsWith(w)", arg=words[0] + " ")
        wait_idle(page)
        assert not {w for w in wait_for_suggestions(page)} & set(words), "the word just taken is offered again"
        # Tab takes the grey ghost text after the cursor
        page.wait_for_function("() => document.querySelector('.gm-ghost').textContent.length > 0", timeout=TIMEOUT_MS)
        ghost = page.locator(".gm-ghost").text_content()
        before = box.input_value()
        box.press("Tab")
        assert box.input_value() == before + ghost
        # Alt+2 takes the second word of the next answer
        words = wait_for_suggestions(page)
        wait_idle(page)
        words = wait_for_suggestions(page)
        before = box.input_value()
        box.press("Alt+2")
        assert box.input_value().startswith(before) and box.input_value().strip().endswith(words[1])
        # keys faster than the answers: whatever shows must be for the final text (never an older one)
        box.press("End")
        box.press_sequentially(" and then th", delay=5)
        wait_idle(page)
        words = wait_for_suggestions(page)
        assert all(w.startswith("th") for w in words), words
        text = box.input_value()
        assert text.startswith("To be, or not to b") and text.endswith(" and then th")
        # hostile text: emoji, another script, a lone combining mark: suggestions or a message, no traceback
        for odd in (" 😀", " Καλημέρα", " \u0301"):
            box.press_sequentially(odd, delay=0)
            page.wait_for_function(
                "() => document.querySelectorAll('.gm-word').length > 0"
                " || document.querySelector('.gm-ghost').textContent || document.querySelector('.gm-msg').textContent",
                timeout=TIMEOUT_MS,
            )
            wait_idle(page)
            no_exception_on_page(page)
        typed = box.input_value()
        # the typed text survives a visit to another page
        open_page(page, "Models", "Models")
        open_page(page, "Text", "Write with an LSTM or a GRU")
        typing_box(page).wait_for()
        assert typing_box(page).input_value() == typed
        no_exception_on_page(page)
        assert not outside, f"requests outside the app: {outside}"


def test_browser_typing_long_paste_keeps_the_end():
    """A paste over the typing view's limit keeps the end of the text (the model continues from there) and
    says how much was dropped from the start."""
    require_browser()
    from app.model_cache import available_models
    from genmodels.infer.decoding import MAX_PROMPT_CHARS

    if not available_models("text"):
        pytest.skip("no text checkpoint found")
    pasted = "".join(f"{i:07d} " for i in range(MAX_PROMPT_CHARS // 8 + 2500)) + "THE END"
    with streamlit_server() as url, browser_page() as page:
        page.goto(url)
        box = typing_box(page)
        box.wait_for()
        wait_idle(page)
        box.focus()
        page.keyboard.insert_text(pasted)
        page.wait_for_function("() => document.querySelector('.gm-msg').textContent.includes('dropped')")
        assert box.input_value() == pasted[-MAX_PROMPT_CHARS:]
        assert f"first {len(pasted) - MAX_PROMPT_CHARS:,} characters" in page.locator(".gm-msg").text_content()
        wait_idle(page)
        no_exception_on_page(page)


def test_browser_harmonise_a_generated_melody(tmp_path):
    """Generate a melody, press Harmonise: the two-stave score is drawn, the four-track MIDI and the four-part
    MusicXML download and read back, a new bass keeps the others; nothing is fetched from outside."""
    require_browser()
    from app.model_cache import available_models

    if not (available_models("melody") and available_models("harmony")):
        pytest.skip("no melody or harmony checkpoint found")
    import pretty_midi
    from music21 import converter

    with streamlit_server() as url, browser_page() as page:
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
        page.goto(url)
        wait_idle(page)
        open_melody_page(page)
        generate_melody(page)
        melody = pretty_midi.PrettyMIDI(str(download(page, "Melody (.mid)", tmp_path)))
        tune = sorted(melody.instruments[0].notes, key=lambda n: n.start)
        page.get_by_role("button", name="Harmonise", exact=True).click()
        img = page.locator('img[alt="harmony score"]')
        img.wait_for()
        wait_idle(page)
        no_exception_on_page(page)
        assert page.evaluate("i => i.complete && i.naturalWidth > 0", img.element_handle()), "the browser drew it"
        assert page.locator("audio").count() == 2

        pm = pretty_midi.PrettyMIDI(str(download(page, "Download the four voices (.mid)", tmp_path)))
        assert [i.name for i in pm.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
        soprano = sorted(pm.instruments[0].notes, key=lambda n: n.start)
        assert len({s.pitch - t.pitch for s, t in zip(soprano, tune, strict=True)}) == 1  # the tune, maybe moved
        for inst in pm.instruments:  # four parts of the melody's length
            assert max(n.end for n in inst.notes) == pytest.approx(tune[-1].end, abs=0.13), inst.name
        check_harmony_score(page, img, sum(len(i.notes) for i in pm.instruments))
        xml = converter.parse(str(download(page, "Download the score in four parts (.musicxml)", tmp_path)))
        assert [p.partName for p in xml.parts] == ["Soprano", "Alto", "Tenor", "Bass"]

        page.get_by_role("button", name="New bass").click()
        page.get_by_text("new bass (from #1)").first.wait_for()
        wait_idle(page)
        no_exception_on_page(page)
        again = pretty_midi.PrettyMIDI(str(download(page, "Download the four voices (.mid)", tmp_path)))
        for v in (0, 1, 2):
            assert [n.pitch for n in again.instruments[v].notes] == [n.pitch for n in pm.instruments[v].notes]

        # The address bar's link, opened in a new tab (a new session), makes the melody and its first harmony again.
        link = page.url
        assert "harm=1" in link
        other = page.context.new_page()
        other.goto(link)
        other.locator('img[alt="harmony score"]').wait_for(timeout=TIMEOUT_MS)
        wait_idle(other)
        no_exception_on_page(other)
        shared = pretty_midi.PrettyMIDI(str(download(other, "Download the four voices (.mid)", tmp_path)))
        for v in range(4):
            assert [(n.pitch, n.start) for n in shared.instruments[v].notes] == [
                (n.pitch, n.start) for n in pm.instruments[v].notes
            ]
        assert not outside, f"requests outside the app: {outside}"


def check_harmony_score(page, img, n_notes: int) -> None:
    """The harmony's score: every note of the four voices written (less the ties), chord symbols over it."""
    from app.render import score_svg
    from genmodels.harmony.export import svg_chord_symbols
    from genmodels.music.engrave import svg_note_count, svg_tie_count

    svg = score_svg(f'src="{img.get_attribute("src")}"')
    assert svg_note_count(svg) - svg_tie_count(svg) == n_notes
    assert svg_chord_symbols(svg)


def test_browser_writes_a_tune_in_aabb_with_repeat_signs(tmp_path):
    """Form AABB with 4-bar parts and endings: the engraved score has volta brackets and repeat barlines, the
    ABC download |: [1 :|[2, the MusicXML download backward repeats and endings."""
    require_browser()
    from app.model_cache import available_models
    from app.render import score_svg
    from genmodels.music.engrave import svg_repeat_signs

    if not available_models("melody"):
        pytest.skip("no melody checkpoint found")
    with streamlit_server() as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("heading", name="Write with an LSTM or a GRU").wait_for()
        open_melody_page(page)
        for label, option in (("Form", "AABB"), ("Part bars", "4")):
            box = page.get_by_role("combobox", name=label, exact=True)
            box.click()
            box.fill(option)  # Streamlit's select box filters its options as one types
            box.press("Enter")
            wait_idle(page)
        page.get_by_role("checkbox", name="Endings").check(force=True)
        wait_idle(page)
        generate_melody(page, "G4 A4 B4/2 A4/2 G4*2")
        no_exception_on_page(page)
        img = page.locator(".gm-score img").first
        img.wait_for()
        voltas, dots = svg_repeat_signs(score_svg(f'src="{img.get_attribute("src")}"'))
        assert voltas >= 4 and dots >= 4, (voltas, dots)  # two parts, each with two endings and |: ... :|
        abc = download(page, "ABC (.abc)", tmp_path).read_text()
        assert abc.count("|:") == 2 and abc.count(":|[2") == 2, abc
        xml = download(page, "MusicXML (.musicxml)", tmp_path).read_bytes()
        assert b'direction="backward"' in xml and b"<ending" in xml


# Public-domain rhymes, a few KB in all: enough for the Train page to accept, small enough to read at once.
RHYMES = {
    "verse/twinkle.txt": "Twinkle, twinkle, little star,\nHow I wonder what you are!\nUp above the world so high,\n"
    "Like a diamond in the sky.\nWhen the blazing sun is gone,\nWhen he nothing shines upon,\nThen you show your "
    "little light,\nTwinkle, twinkle, all the night.\n",
    "verse/diddle.txt": "Hey diddle diddle,\nThe cat and the fiddle,\nThe cow jumped over the moon;\nThe little "
    "dog laughed\nTo see such sport,\nAnd the dish ran away with the spoon.\n",
    "verse/lamb.txt": "Mary had a little lamb,\nIts fleece was white as snow;\nAnd everywhere that Mary went\n"
    "The lamb was sure to go.\nIt followed her to school one day,\nWhich was against the rule;\nIt made the "
    "children laugh and play\nTo see a lamb at school.\n",
}
JOB_TIMEOUT_MS = 600_000  # one CPU minute of a niced process on a busy machine


def rhymes_zip() -> bytes:
    """The rhymes, each a few times over, and a picture named .txt (which the page refuses, saying why)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in RHYMES.items():
            z.writestr(name, text * 4)
        z.writestr("verse/photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    return buf.getvalue()


def test_browser_train_a_model_and_write_with_it(tmp_path, request):
    """Upload a zip of rhymes on the Train page: what was read is shown; name the model and fine-tune it for
    the shortest budget; the progress bar and the curve appear; a reload still shows the job (its state is on
    disk); once it has finished, the Text page lists the model under its name and writes with it."""
    require_browser()
    from genmodels.learn.job_files import JobError
    from genmodels.learn.jobs import JobQueue

    # The tiny test model stands in for the shipped text-gru (a fine-tune's steps take milliseconds), and jobs
    # and models live in the test's folder, not the repository's.
    models, jobs = tmp_path / "models", tmp_path / "jobs"
    shutil.copytree(request.getfixturevalue("tiny_text_ckpt"), models / "text-gru")
    queue = JobQueue(jobs, models)
    env = {"GENMODELS_CHECKPOINTS": str(models), "GENMODELS_JOBS": str(jobs)}
    try:
        with streamlit_server(env) as url, browser_page() as page:
            page.goto(url)
            page.get_by_role("heading", name="Write with an LSTM or a GRU").wait_for()
            wait_idle(page)
            open_page(page, "Train", "Teach a model your own style")
            page.locator('input[type="file"]').set_input_files(
                {"name": "verse.zip", "mimeType": "application/zip", "buffer": rhymes_zip()}
            )
            chars = sum(len(text) * 4 for text in RHYMES.values())
            page.get_by_text(f"{chars:,} characters from 3 file(s)").wait_for()
            page.get_by_text("Not used: verse.zip/verse/photo.txt: binary data").wait_for()
            page.get_by_text(re.compile(r"passes over")).first.wait_for()  # the estimate, before anything trains
            wait_idle(page)
            no_exception_on_page(page)

            minutes = page.get_by_role("slider", name="CPU minutes")
            minutes.focus()
            minutes.press("Home")
            page.get_by_text(re.compile(r"^1 minutes (are|read) about")).wait_for()  # the server has the 1
            wait_idle(page)
            name = page.get_by_role("textbox", name="Name of the new model")
            name.fill("my-verse")
            name.press("Enter")
            wait_idle(page)
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_text("my-verse · text ·").first.wait_for()
            page.locator('[data-testid="stProgress"]').first.wait_for()
            page.get_by_text(re.compile(r"of 1 CPU minutes")).first.wait_for()
            page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
            no_exception_on_page(page)
            assert [j["meta"]["minutes"] for j in queue.jobs()] == [1]

            page.reload()
            page.get_by_role("heading", name="Teach a model your own style", exact=True).wait_for()
            shown = page.get_by_text(re.compile(r"my-verse · text · (training|finished)")).first
            shown.wait_for()
            if "training" in shown.text_content():
                page.locator('[data-testid="stProgress"]').first.wait_for()
            no_exception_on_page(page)

            ended = page.get_by_text(re.compile(r"my-verse · text · (finished|failed|stopped)")).first
            ended.wait_for(timeout=JOB_TIMEOUT_MS)
            job = queue.jobs()[0]
            assert job["status"] == "done", (job, queue.log_tail(job))
            assert "finished" in ended.text_content()

            open_page(page, "Text", "Write with an LSTM or a GRU")
            generate_mode(page)
            page.get_by_role("radio", name="my-verse").check(force=True)
            wait_idle(page)
            continuation = generate_text(page, url, seed="Twinkle, twinkle, little", keep_settings=True)
            assert continuation.strip()
            page.get_by_text(re.compile(r"^my-verse · temperature")).first.wait_for()
            no_exception_on_page(page)
    finally:
        for job in queue.jobs():  # no training outlives a failed test
            if job["status"] in ("queued", "running"):
                with contextlib.suppress(JobError):  # it ended meanwhile
                    queue.stop(job["id"])
