"""Screenshots of the app's pages at 1280x800 into docs/screenshots/ (typing.png, text.png, melody.png, models.png;
harmony.png at 1280x1300).

Usage (from the repository root): python -m scripts.screenshots   (needs /usr/bin/chromium; reuses the end-to-end
test's helpers; set GENMODELS_CHECKPOINTS to use checkpoints other than checkpoints/).
``python -m scripts.screenshots harmony`` takes only harmony.png (a melody harmonised on the Melody page).
"""

import sys
from pathlib import Path

from tests.test_e2e_browser import (
    browser_page,
    generate_melody,
    generate_text,
    open_melody_page,
    set_number,
    streamlit_server,
    wait_idle,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"


def top(page, locator) -> None:
    """Scroll so that ``locator`` is at the top of the window."""
    locator.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, browser_page(1280, 800) as page:
        page.goto(url)
        box = page.locator("textarea.gm-input")
        box.wait_for()
        typed = "ROMEO.\nBut soft, what light through yonder window breaks?\nIt is the east, and Jul"
        box.press_sequentially(typed, delay=20)
        page.wait_for_function("() => document.querySelector('.gm-ghost').textContent.length > 0", timeout=90_000)
        wait_idle(page)
        page.screenshot(path=str(OUT / "typing.png"))

        generate_text(page, url, "ROMEO.\nBut soft, what light through yonder window breaks?\n")
        page.wait_for_timeout(1000)
        top(page, page.get_by_text("Prompt", exact=True).first)
        page.screenshot(path=str(OUT / "text.png"))

        open_melody_page(page)
        generate_melody(page, "E4 D4 C4 D4 E4 E4 E4*2")
        page.wait_for_timeout(1000)
        top(page, page.get_by_text("Your melody").first)
        page.screenshot(path=str(OUT / "melody.png"))

        page.get_by_role("link", name="Models").click()
        page.get_by_text("How it was trained").first.wait_for()
        wait_idle(page)
        page.wait_for_timeout(2000)  # dataframes and charts draw after the script run
        top(page, page.get_by_role("tab").first)
        page.screenshot(path=str(OUT / "models.png"))
        harmony(page, url)
    print("wrote", *sorted(str(p.relative_to(ROOT)) for p in OUT.glob("*.png")))


def harmony(page, url: str) -> None:
    """A generated melody (fixed random seed) harmonised with the default settings (fixed seed): the Harmonise
    section from its heading, with the score under it (1280x1300)."""
    page.goto(url)
    wait_idle(page)
    open_melody_page(page)
    set_number(page, "Random seed", 3)
    generate_melody(page, "E4 D4 C4 D4 E4 E4 E4*2")
    heading = page.get_by_role("heading", name="Harmonise")
    top(page, heading)
    page.locator('input[aria-label="Random seed"]').last.fill("11")
    page.locator('input[aria-label="Random seed"]').last.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Harmonise", exact=True).click()
    page.locator('img[alt="harmony score"]').wait_for()
    wait_idle(page)
    page.set_viewport_size({"width": 1280, "height": 1300})  # taller: the controls and the score under them
    page.wait_for_timeout(1000)
    top(page, heading)
    page.screenshot(path=str(OUT / "harmony.png"))
    page.set_viewport_size({"width": 1280, "height": 800})


def main_harmony() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, browser_page(1280, 800) as page:
        harmony(page, url)
    print("wrote", (OUT / "harmony.png").relative_to(ROOT))


if __name__ == "__main__":
    main_harmony() if sys.argv[1:] == ["harmony"] else main()
