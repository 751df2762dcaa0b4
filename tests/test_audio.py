"""Audio: a melody rendered with the General MIDI soundfont is a real, audible WAV of the right length."""

import io
import wave

import numpy as np
import pytest

from genmodels.core.errors import MidiError
from genmodels.music import melody_to_midi, parse_note_prompt
from genmodels.music.audio import render, wav_bytes


def test_wav_of_a_melody():
    m = parse_note_prompt("C4 E4 G4 C5*2 r G4/2 E4/2 C4*2", tempo=120)  # 9 quarters = 4.5 s at 120 BPM
    data = wav_bytes(melody_to_midi(m, program=0))
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 44100)
        seconds = w.getnframes() / w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float) / 32768
    assert 4.5 <= seconds <= 6.0
    rms = np.sqrt((pcm**2).mean())
    assert 0.03 < rms and np.abs(pcm).max() <= 0.9  # audible, not clipped
    quarter = int(0.5 * 44100) * 2
    assert np.sqrt((pcm[:quarter] ** 2).mean()) > 0.01  # sound from the first note on


def test_instruments_sound_different():
    m = parse_note_prompt("A4*4")
    piano, flute = (render(melody_to_midi(m, program=p)) for p in (0, 73))
    n = min(len(piano), len(flute))
    assert not np.allclose(piano[:n], flute[:n], atol=1e-3)


def test_too_long_is_a_clear_error():
    m = parse_note_prompt("C4*64 " * 30, tempo=30)  # 1,920 quarters at 30 BPM: over an hour
    with pytest.raises(MidiError, match="at most"):
        render(melody_to_midi(m))
