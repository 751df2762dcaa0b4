"""Music without torch: notes and tunes (`types`), scales and modes (`scales`), note names and key estimation
(`notation`), MIDI reading and writing (`midi`), ABC and MusicXML (`abc`, `musicxml`, `bars`), the engraved
score (`engrave`) and audio (`audio`). The names below are re-exported for convenience."""

from __future__ import annotations

from genmodels.core.errors import MidiError, SeedError
from genmodels.music.midi import (
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
from genmodels.music.notation import (
    KEY_NAMES,
    MAX_NOTE_QUARTERS,
    MAX_PROMPT_TOKENS,
    PITCH_CLASS_NAMES,
    estimate_key,
    format_notes,
    note_name,
    parse_note_prompt,
)
from genmodels.music.types import (
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
    "TrackInfo",
    "Melody",
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
