"""The stage chime: a soft two-tone bell, made here so that nothing has to be shipped.

A player plays files from its own library, so the cue is a file the user (or `ambiance
chime`) puts there; this module writes its bytes. A bell is a few sine partials that ring
out with an exponential decay; a short attack keeps the start from clicking.
"""

from __future__ import annotations

import io
import math
import sys
import wave
from array import array

# (frequency in Hz, amplitude, decay time constant in s, start in s): two notes a fourth
# apart (A5, D6) with a soft octave partial each, the second note struck a little later.
_PARTIALS = (
    (880.0, 0.50, 0.45, 0.0),
    (2 * 880.0, 0.08, 0.20, 0.0),
    (1174.66, 0.40, 0.50, 0.18),
    (2 * 1174.66, 0.06, 0.22, 0.18),
)
_ATTACK = 0.008  # seconds: long enough not to click, short enough to sound struck
_PEAK = 0.6  # of full scale: a chime, not an alarm
_MAX = 32767


def chime_wav(seconds: float = 1.2, rate: int = 22050) -> bytes:
    """A 16-bit mono WAV file of a soft two-tone bell, `seconds` long at `rate` Hz."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    if rate < 8000:
        raise ValueError("rate must be at least 8000 Hz")
    count = max(1, round(seconds * rate))
    # Fade the very end to silence so a player that stops there does not click either.
    release = min(0.05, seconds / 4)
    total = sum(amplitude for _, amplitude, _, _ in _PARTIALS)
    samples = array("h", bytes(2 * count))
    for i in range(count):
        t = i / rate
        value = 0.0
        for frequency, amplitude, decay, start in _PARTIALS:
            local = t - start
            if local < 0:
                continue
            envelope = math.exp(-local / decay) * min(1.0, local / _ATTACK)
            value += amplitude * envelope * math.sin(2 * math.pi * frequency * local)
        tail = min(1.0, (seconds - t) / release)
        samples[i] = round(_MAX * _PEAK * value / total * tail)
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian; `array` writes the machine's order
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()
