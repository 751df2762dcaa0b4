"""genmodels: LSTM/GRU generators for text (sentencepiece) and melodies (MIDI)."""

from genmodels.errors import (  # noqa: F401
    CheckpointError,
    DataError,
    GenmodelsError,
    MidiError,
    SeedError,
    SettingsError,
)

__version__ = "0.1.0"
