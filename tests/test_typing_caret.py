"""The browser counts the caret in UTF-16 code units; the server cuts the text in code points. Emoji and
other characters outside the Basic Multilingual Plane are two units and one code point."""

from app.components.typing import caret_for_browser, caret_from_browser


def utf16_units(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def test_caret_after_emoji_is_the_same_place_in_python():
    text = "🎭🎭 To be, or not to be"
    caret_in_browser = utf16_units("🎭🎭 To be")  # 9 units: the caret after "be"
    at = caret_from_browser(text, caret_in_browser)
    assert text[:at] == "🎭🎭 To be"
    assert caret_for_browser(text, at) == caret_in_browser


def test_caret_round_trip_and_clamping():
    text = "a😀b𝄞c"
    for i in range(len(text) + 1):
        assert caret_from_browser(text, caret_for_browser(text, i)) == i
    assert caret_from_browser(text, 10_000) == len(text)
    assert caret_from_browser(text, -3) == 0
    assert caret_from_browser(text, 2) == 1  # inside the pair of 😀: before it
