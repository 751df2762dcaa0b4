"""Screenshots of the app's pages at 1280x800 into docs/screenshots/ (typing.png, text.png, melody.png, models.png).

Usage (from the repository root): python -m scripts.screenshots   (needs /usr/bin/chromium; reuses the end-to-end
test's helpers; set GENMODELS_CHECKPOINTS to use checkpoints other than checkpoints/)
"""

from pathlib import Path

from tests.test_e2e_browser import (
    browser_page,
    generate_melody,
    generate_text,
    open_melody_page,
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
    print("wrote", *sorted(str(p.relative_to(ROOT)) for p in OUT.glob("*.png")))


if __name__ == "__main__":
    main()
