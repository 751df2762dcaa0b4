"""Melodies: note types (`types`), MIDI reading and writing (`midi`), note names and key estimation
(`notation`), the tokenizer and its grammar (`tokenizer`), the default corpus (`corpus`).

The names below are re-exported for convenience. The tokenizer needs torch, so it is loaded only
when first asked for: `import genmodels.melody` (and reading or writing MIDI) stays torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genmodels.errors import MidiError, SeedError
from genmodels.melody.midi import (
    MAX_MIDI_BYTES,
    MIDI_RESOLUTION,
    TrackInfo,
    list_tracks,
    melody_to_midi,
    midi_bytes,
    read_midi,
    skyline,
    write_midi,
)
from genmodels.melody.notation import (
    KEY_NAMES,
    MAX_NOTE_QUARTERS,
    MAX_PROMPT_TOKENS,
    PITCH_CLASS_NAMES,
    estimate_key,
    format_notes,
    note_name,
    parse_note_prompt,
)
from genmodels.melody.types import (
    MAX_DURATION_TOKEN,
    MAX_NOTES,
    MODES,
    PITCH_RANGE,
    SUPPORTED_METERS,
    TICKS_PER_QUARTER,
    Melody,
    Note,
    bar_ticks_for,
    fold_into_range,
)

if TYPE_CHECKING:
    from genmodels.melody.tokenizer import GrammarState, MelodyTokenizer

_LAZY = {"GrammarState": "genmodels.melody.tokenizer", "MelodyTokenizer": "genmodels.melody.tokenizer"}

__all__ = [
    "KEY_NAMES",
    "MAX_DURATION_TOKEN",
    "MAX_MIDI_BYTES",
    "MAX_NOTES",
    "MAX_NOTE_QUARTERS",
    "MAX_PROMPT_TOKENS",
    "MIDI_RESOLUTION",
    "MODES",
    "PITCH_CLASS_NAMES",
    "PITCH_RANGE",
    "SUPPORTED_METERS",
    "TICKS_PER_QUARTER",
    "GrammarState",
    "TrackInfo",
    "Melody",
    "MelodyTokenizer",
    "MidiError",
    "Note",
    "SeedError",
    "bar_ticks_for",
    "estimate_key",
    "fold_into_range",
    "format_notes",
    "list_tracks",
    "melody_to_midi",
    "midi_bytes",
    "note_name",
    "parse_note_prompt",
    "read_midi",
    "skyline",
    "write_midi",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
