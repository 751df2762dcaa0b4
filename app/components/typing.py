"""The typing view of the Text page: a textarea with the three most likely next words and grey ghost text.

A custom component (Streamlit components v2: inline HTML, CSS and JS, no iframe, nothing from a CDN).
The browser owns the text while one types; after each keystroke (debounced) it sends ``typed`` =
{text, caret, seq} as component state. Python answers through the component's ``data`` with the
suggestions computed for that ``seq``; the browser shows an answer only while its own ``seq`` is still
the one the answer was computed for, so suggestions for an older text never show. Tab accepts the ghost
text, a click or Alt+1..3 a word and a space; typing on hides them until the next answer.
"""

from __future__ import annotations

import logging

import streamlit as st

from app.model_cache import shared_sampler
from genmodels.core.errors import GenmodelsError
from genmodels.infer.decoding import MAX_PROMPT_CHARS
from genmodels.infer.suggest import suggest

TYPED_KEY = "t_typed"  # plain session state: survives page switches (the component's own state does not)
EMPTY_MESSAGE = "Start typing: the three most likely next words and the rest of the line appear as you type."

HTML = """
<div class="gm-typing">
  <div class="gm-words" role="toolbar" aria-label="Suggested next words"></div>
  <div class="gm-box">
    <div class="gm-mirror" aria-hidden="true"><span class="gm-before"></span><span class="gm-ghost"></span></div>
    <textarea class="gm-input" spellcheck="false" aria-label="Type here" placeholder="Type here…"></textarea>
  </div>
  <div class="gm-msg" role="status"></div>
  <div class="gm-help">Tab: accept the grey text · click or Alt+1..3: accept a word · keep typing: ignore them</div>
</div>
"""

CSS = """
.gm-typing { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #31333f); }
.gm-words { display: flex; gap: .5rem; min-height: 2.4rem; margin-bottom: .4rem; flex-wrap: wrap; }
.gm-word { border: 1px solid var(--st-border-color, #d6d6d9); border-radius: .5rem; padding: .3rem .7rem;
  background: var(--st-secondary-background-color, #f0f2f6); color: inherit; cursor: pointer; font-size: 1rem; }
.gm-word:hover { border-color: var(--st-primary-color, #ff4b4b); }
.gm-word small { opacity: .6; margin-left: .4rem; font-size: .75rem; }
.gm-word kbd { opacity: .5; margin-right: .4rem; font-size: .7rem; font-family: inherit; }
.gm-box { position: relative; }
.gm-mirror, .gm-input { font-family: Georgia, 'Times New Roman', serif; font-size: 1.05rem; line-height: 1.6;
  padding: .6rem .75rem; margin: 0; border: 1px solid transparent; box-sizing: border-box; width: 100%;
  white-space: pre-wrap; overflow-wrap: break-word; word-break: normal; letter-spacing: normal; }
.gm-mirror { position: absolute; inset: 0; overflow: hidden; pointer-events: none; color: transparent; }
.gm-ghost { color: #9a9a9a; }
.gm-input { position: relative; display: block; height: 14rem; resize: vertical; background: transparent;
  color: inherit; border-color: var(--st-border-color, #d6d6d9); border-radius: .5rem; outline: none; }
.gm-input:focus { border-color: var(--st-primary-color, #ff4b4b); }
.gm-msg { min-height: 1.2rem; font-size: .85rem; margin-top: .3rem; opacity: .8; }
.gm-help { font-size: .8rem; opacity: .6; }
"""

JS = """
export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector('.gm-typing');
  const ta = root.querySelector('.gm-input');
  const words = root.querySelector('.gm-words');
  const before = root.querySelector('.gm-before');
  const ghost = root.querySelector('.gm-ghost');
  const mirror = root.querySelector('.gm-mirror');
  const msg = root.querySelector('.gm-msg');
  const maxChars = (data && data.max_chars) || 100000;
  let st = root.__gm;
  if (!st) {  // first render of this element: restore the text, wire the events once
    st = root.__gm = { seq: (data && data.seq) || 0, answer: null, timer: null, send: null, note: '' };
    ta.value = (data && data.text) || '';
    const caret = Math.min((data && data.caret) ?? ta.value.length, ta.value.length);
    ta.setSelectionRange(caret, caret);
    const insert = (s) => {
      if (!s) return;
      const at = ta.selectionStart;
      ta.setRangeText(s, at, ta.selectionEnd, 'end');
      changed();
    };
    const changed = () => {
      keepEnd();
      st.seq += 1;
      st.answer = null;  // what is shown was computed for an older text
      show();
      clearTimeout(st.timer);
      st.timer = setTimeout(() => st.send(), 60);
    };
    st.insert = insert;
    ta.addEventListener('input', changed);
    ta.addEventListener('click', () => show());
    ta.addEventListener('keyup', (e) => {
      if (e.key.startsWith('Arrow') || e.key === 'Home' || e.key === 'End') show();
    });
    ta.addEventListener('scroll', () => { mirror.scrollTop = ta.scrollTop; });
    ta.addEventListener('keydown', (e) => {
      const a = st.answer;
      if (e.key === 'Tab' && !e.shiftKey && a && a.ghost && atEnd()) {
        e.preventDefault();
        insert(a.ghost);
      } else if (e.altKey && /^Digit[1-9]$/.test(e.code)) {
        const w = a && a.words[Number(e.code.slice(5)) - 1];
        if (w) { e.preventDefault(); insert(w.insert); }
      }
    });
    words.addEventListener('mousedown', (e) => e.preventDefault());  // keep the caret in the textarea
    words.addEventListener('click', (e) => {
      const b = e.target.closest('.gm-word');
      const w = b && st.answer && st.answer.words[Number(b.dataset.i)];
      if (w) { ta.focus(); insert(w.insert); }
    });
    st.root = root;
  }
  // Over the limit the START of the text goes, never the end: the model continues from the end
  // (a textarea's maxLength would silently drop the end of a paste).
  const keepEnd = () => {
    const n = ta.value.length;
    if (n <= maxChars) { if (n < maxChars) st.note = ''; return; }
    let from = n - maxChars;
    const c = ta.value.charCodeAt(from);
    if (c >= 0xDC00 && c <= 0xDFFF) from += 1;  // never half an emoji
    const caret = Math.max(0, ta.selectionStart - from);
    ta.value = ta.value.slice(from);
    ta.setSelectionRange(caret, caret);
    st.note = 'Your text had ' + n.toLocaleString('en-US') + ' characters; the view holds '
      + maxChars.toLocaleString('en-US') + ', so the first ' + from.toLocaleString('en-US')
      + ' characters were dropped and the end is kept (the model continues from the end).';
  };
  st.send = () => setStateValue('typed', { text: ta.value, caret: ta.selectionStart, seq: st.seq });
  const atEnd = () => ta.selectionStart === ta.selectionEnd && ta.selectionEnd === ta.value.length;
  const show = () => {
    const a = st.answer;
    words.replaceChildren();
    (a ? a.words : []).forEach((w, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'gm-word';
      b.dataset.i = String(i);
      b.title = 'Alt+' + (i + 1);
      const k = document.createElement('kbd'); k.textContent = String(i + 1);
      const pct = 100 * w.prob;
      const p = document.createElement('small'); p.textContent = (pct < 1 ? pct.toPrecision(1) : pct.toFixed(1)) + '%';
      b.append(k, document.createTextNode(w.word), p);
      words.append(b);
    });
    before.textContent = ta.value;
    ghost.textContent = a && atEnd() ? a.ghost : '';
    msg.textContent = [st.note, a ? a.message : ''].filter(Boolean).join(' ');
    mirror.scrollTop = ta.scrollTop;
  };
  if (data && data.seq === st.seq && data.answered) {  // an answer for the text on screen; older ones are dropped
    st.answer = { words: data.words || [], ghost: data.ghost || '', message: data.message || '' };
  }
  show();
}
"""

# Not in a shadow root: the classes are prefixed (gm-), and tests and screenshots can reach the elements.
TYPING = st.components.v2.component("genmodels.typing", html=HTML, css=CSS, js=JS, isolate_styles=False)


def typed_now() -> dict:
    """What the user has typed (text, caret, sequence number), kept for the session."""
    typed = st.session_state.get(TYPED_KEY)
    return typed if isinstance(typed, dict) else {"text": "", "caret": 0, "seq": 0}


def caret_from_browser(text: str, units: int) -> int:
    """The browser counts a caret in UTF-16 code units (``selectionStart``; an emoji is two); Python indexes
    code points. The code-point index of the caret, clamped to the text (half a surrogate pair rounds down)."""
    units = min(max(int(units), 0), 2 * len(text))
    return len(text.encode("utf-16-le")[: 2 * units].decode("utf-16-le", errors="ignore"))


def caret_for_browser(text: str, index: int) -> int:
    """The inverse of ``caret_from_browser``: a code-point index as UTF-16 code units."""
    return len(text[: max(0, index)].encode("utf-16-le")) // 2


def keep_end(text: str, caret: int) -> tuple[str, int]:
    """Text over the limit loses its start, not its end (the model continues from the end); the caret
    stays on the same character."""
    cut = max(0, len(text) - MAX_PROMPT_CHARS)
    return text[cut:], max(0, caret - cut)


def keep_typed() -> None:
    """Component callback: copy the browser's text into plain session state (clamped to the limit)."""
    state = st.session_state.get("t_typing")
    typed = state.get("typed") if hasattr(state, "get") else None
    if not isinstance(typed, dict) or not isinstance(typed.get("text"), str):
        return
    text, caret = typed["text"], typed.get("caret")
    caret = caret_from_browser(text, caret) if isinstance(caret, (int, float)) else len(text)
    text, caret = keep_end(text, caret)
    seq = typed.get("seq")
    seq = int(seq) if isinstance(seq, (int, float)) else 0
    st.session_state[TYPED_KEY] = {"text": text, "caret": caret, "seq": seq}


def typing_answer(path, typed: dict) -> dict:
    """The suggestions for ``typed`` (its text before the caret) from the model at ``path``: JSON for the
    component, tagged with the request's ``seq``. Never raises: a problem becomes ``message``."""
    text, caret = typed.get("text", ""), typed.get("caret", 0)
    before = text[:caret]
    answer = {"seq": typed.get("seq", 0), "answered": True, "words": [], "ghost": "", "message": ""}
    if not before.strip():
        answer["message"] = EMPTY_MESSAGE
        return answer
    try:
        g = shared_sampler(path)
        words, ghost = suggest(g.model, g.tok, before)
    except GenmodelsError as e:
        answer["message"] = f"No suggestions here: {e}"
        return answer
    except Exception:  # a fault of ours must not take the typing view (and the user's text) down with it
        logging.getLogger(__name__).exception("typing suggestions failed")
        answer["message"] = "No suggestions here: an internal error (logged on the server). Your text is kept."
        return answer
    # Each chip shows its share of the three (the model's own probability of a word given the text before
    # the word being typed is tiny once a few letters are typed: "Juliet 0.009%" read as a bug).
    total = sum(w.prob for w in words) or 1.0
    # A chosen word is followed by a space (unless one follows the caret already), as on a phone's
    # keyboard: the next suggestions are then the words after it.
    space = "" if text[caret : caret + 1].isspace() else " "
    answer["words"] = [{"word": w.word, "prob": w.prob / total, "insert": w.insert + space} for w in words]
    answer["ghost"] = ghost
    if not words and not ghost:
        answer["message"] = "No suggestions for this text (the word being typed is too long or unknown to the model)."
    return answer


def typing_view(model_path) -> dict:
    """Mount the typing component with the answer for the current text; returns that answer."""
    typed = typed_now()
    answer = typing_answer(model_path, typed)
    st.session_state.t_answer = answer  # read by tests
    TYPING(
        key="t_typing",
        data={
            **answer,
            "text": typed["text"],
            "caret": caret_for_browser(typed["text"], typed["caret"]),
            "max_chars": MAX_PROMPT_CHARS,
        },
        default={"typed": None},
        on_typed_change=keep_typed,
        height="content",
    )
    return answer
