"""MIDI → WAV on the server with a real General MIDI soundfont (offline; browsers cannot play MIDI).

The synthesizer is TinySoundFont (``tinysoundfont`` wheel); the soundfont is ``TimGM6mb.sf2``, the
General MIDI bank that ships inside ``pretty_midi``. A new synth per call keeps concurrent renders
independent; the soundfont's bytes are read once per process.
"""

from __future__ import annotations

import functools
import io
import wave
from pathlib import Path

import numpy as np
import pretty_midi

from genmodels.core.errors import MidiError

SAMPLE_RATE = 44_100
MAX_SECONDS = 600.0


@functools.lru_cache(maxsize=1)
def soundfont_bytes() -> bytes:
    return (Path(pretty_midi.__file__).parent / "TimGM6mb.sf2").read_bytes()


def render(
    pm: pretty_midi.PrettyMIDI, sample_rate: int = SAMPLE_RATE, tail: float = 1.0, normalise: bool = True
) -> np.ndarray:
    """Render every instrument of ``pm`` to a (samples, 2) float32 array in [-1, 1]; ``normalise=False`` keeps
    the synthesizer's own level (to compare the loudness of parts rendered apart)."""
    import tinysoundfont

    end = pm.get_end_time()
    if end > MAX_SECONDS:
        raise MidiError(f"The melody lasts {end:.0f} s; audio is rendered for at most {MAX_SECONDS:.0f} s")
    synth = tinysoundfont.Synth(samplerate=sample_rate, gain=-3.0)
    sfid = synth.sfload(soundfont_bytes())
    events = []  # (time, order, kind, channel, pitch, velocity); note-offs sort before note-ons at a time
    for ch, inst in enumerate(pm.instruments[:15]):
        channel = 9 if inst.is_drum else (ch if ch < 9 else ch + 1)
        synth.program_select(channel, sfid, 0, inst.program, is_drums=inst.is_drum)
        for n in inst.notes:
            events.append((n.start, 1, "on", channel, n.pitch, n.velocity))
            events.append((n.end, 0, "off", channel, n.pitch, 0))
    events.sort()
    chunks, t_now = [], 0.0

    def advance(to: float) -> None:
        nonlocal t_now
        samples = int(round(to * sample_rate)) - int(round(t_now * sample_rate))
        if samples > 0:
            chunks.append(np.frombuffer(bytes(synth.generate(samples)), dtype=np.float32).copy())
        t_now = to

    for t, _, kind, channel, pitch, vel in events:
        advance(t)
        if kind == "on":
            synth.noteon(channel, pitch, vel)
        else:
            synth.noteoff(channel, pitch)
    advance(t_now + tail)
    audio = np.concatenate(chunks) if chunks else np.zeros(2, np.float32)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0 and normalise:  # the soundfont's instruments are quiet (peaks near -20 dBFS): normalise to -1 dBFS
        audio *= min(0.89 / peak, 30.0)
    return np.clip(audio.reshape(-1, 2), -1.0, 1.0)


def wav_bytes(pm: pretty_midi.PrettyMIDI, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit stereo WAV file of ``pm`` rendered with the General MIDI soundfont."""
    audio = render(pm, sample_rate)
    pcm = (audio * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()
