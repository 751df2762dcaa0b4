"""genmodels: LSTM/GRU generators for text (sentencepiece), melodies (MIDI) and four-part harmony.

The packages are layers; a module imports only from layers below its own (``tests/test_layers.py``):
``core`` < ``music`` < ``harmony`` < ``tokenizers`` < ``nn`` < ``io`` < ``infer`` < ``learn`` < ``eval`` <
``domains`` < ``cli``; the Streamlit app (``app/``) sits on top and is the only place that imports Streamlit.
"""

from genmodels.core.errors import CheckpointError, DataError, GenmodelsError, MidiError, SeedError, SettingsError

__all__ = ["CheckpointError", "DataError", "GenmodelsError", "MidiError", "SeedError", "SettingsError"]
__version__ = "0.1.0"
