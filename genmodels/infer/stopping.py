"""Stop rules for generated text: at the end of the line, at the end of the speech, after N sentences.

Pure functions over the decoded text, so the sampler can ask after every token (``stop_index`` returns
where to cut the continuation, or None to go on) and tests need no model.

- **End of line**: the first newline that closes a line holding some text (a line the prompt left
  unfinished counts; a newline that only ends an empty line does not).
- **End of speech** (the Shakespeare layout: a speaker heading on its own line, the speech, a blank
  line): a blank line (two newlines with only spaces or tabs between), or the start of a line that
  looks like a speaker heading (capitalised words ending in a full stop: ``Ham.``, ``First Clown.``,
  ``KING HENRY.``), once the continuation holds some text.
- **After N sentences**: after the Nth full stop, question or exclamation mark of the continuation
  (with any closing quotes or brackets) that is followed by whitespace; a speaker heading is no sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genmodels.core.errors import SettingsError

MAX_SENTENCES = 100
_BLANK = re.compile(r"\n[ \t]*\n")
_HEADING = re.compile(r"\n(?=(?:[A-Z][A-Za-z']*)(?: [A-Z][A-Za-z']*){0,3}\.[ \t]*\n)")
_SENTENCE_END = re.compile(r"[.!?]+['\")\]]*(?=\s)")
_HEADING_LINE = re.compile(r"(?:[A-Z][A-Za-z']*)(?: [A-Z][A-Za-z']*){0,3}\.[ \t]*")


@dataclass(frozen=True)
class StopRules:
    end_of_line: bool = False
    end_of_speech: bool = False
    sentences: int = 0  # 0: off

    def checked(self) -> StopRules:
        n = self.sentences
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_SENTENCES:
            raise SettingsError(f"Sentences must be a whole number from 0 (off) to {MAX_SENTENCES}; got {n!r}")
        return self

    @property
    def active(self) -> bool:
        return self.end_of_line or self.end_of_speech or self.sentences > 0


def end_of_line(continuation: str, prompt: str = "") -> int | None:
    """Index of the newline that ends the first non-empty line, counting the prompt's unfinished line."""
    line_has_text = bool(prompt[prompt.rfind("\n") + 1 :].strip())
    for i, ch in enumerate(continuation):
        if ch == "\n":
            if line_has_text:
                return i
        elif not ch.isspace():
            line_has_text = True
    return None


def end_of_speech(continuation: str, prompt: str = "") -> int | None:
    """Index where the speech ends: the start of a blank line or of a speaker heading (after some text)."""
    first_text = len(continuation) - len(continuation.lstrip())
    if first_text == len(continuation):
        return None
    ends = [
        m.start()
        for m in (_BLANK.search(continuation, first_text), _HEADING.search(continuation, first_text))
        if m is not None
    ]
    return min(ends) if ends else None


def after_sentences(continuation: str, n: int) -> int | None:
    """Index just after the ``n``-th sentence end of the continuation (speaker headings skipped)."""
    if n <= 0:
        return None
    count = 0
    for m in _SENTENCE_END.finditer(continuation):
        line_start = continuation.rfind("\n", 0, m.start()) + 1
        line_end = continuation.find("\n", m.end())
        line = continuation[line_start : line_end if line_end >= 0 else len(continuation)]
        if _HEADING_LINE.fullmatch(line):
            continue
        count += 1
        if count == n:
            return m.end()
    return None


def stop_index(continuation: str, rules: StopRules, prompt: str = "") -> int | None:
    """Where to cut ``continuation`` under ``rules`` (the earliest rule that fires), or None to go on."""
    cuts = []
    if rules.end_of_line:
        cuts.append(end_of_line(continuation, prompt))
    if rules.end_of_speech:
        cuts.append(end_of_speech(continuation, prompt))
    if rules.sentences:
        cuts.append(after_sentences(continuation, rules.sentences))
    cuts = [c for c in cuts if c is not None]
    return min(cuts) if cuts else None
