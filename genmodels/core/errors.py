"""Typed errors: every bad input the library sees raises one of these, with a message a user can act on."""


class GenmodelsError(Exception):
    """Base class for every error the library raises on purpose."""


class SeedError(GenmodelsError, ValueError):
    """A text or note-name seed that cannot be used (empty, unparsable token, ...)."""


class MidiError(GenmodelsError, ValueError):
    """A MIDI file that cannot be read, is too large, or holds no usable melody."""


class SettingsError(GenmodelsError, ValueError):
    """A sampling or training setting outside its allowed range."""


class CheckpointError(GenmodelsError):
    """A checkpoint directory that is missing, corrupt, unsafe or inconsistent."""


class DataError(GenmodelsError):
    """A corpus folder that is missing, empty or unreadable."""


class NotationError(GenmodelsError, ValueError):
    """A key, mode or melody that a notation (key name, ABC, MusicXML, score) cannot express or read."""


class PitchRangeError(NotationError):
    """A transposition or change of mode that would move a note outside the allowed pitch range."""
