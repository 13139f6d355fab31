"""Even loudness across separately generated pieces (segments of a long text, turns of a dialogue).

XTTS renders each segment on its own, and their levels drift. Each piece is
brought to the median level of all pieces (by the RMS of its active frames),
within +/- 6 dB, then peak-limited, so a paragraph sounds like one reading.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FRAME = 480  # 20 ms at 24 kHz
ACTIVE_DB = -50.0  # frames quieter than this are pauses, not speech
MAX_GAIN_DB = 6.0
PEAK = 0.99


def active_rms(samples: np.ndarray) -> float | None:
    """RMS over the frames louder than ``ACTIVE_DB``; None for a silent piece."""
    usable = len(samples) // FRAME * FRAME
    if usable == 0:
        return None
    frames = samples[:usable].reshape(-1, FRAME).astype(np.float64)
    energy = np.mean(frames**2, axis=1)
    active = energy[energy > 10 ** (ACTIVE_DB / 10)]
    return float(np.sqrt(np.mean(active))) if active.size else None


def level(pieces: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The pieces, each scaled towards the median active level, none clipping."""
    levels = [active_rms(p) for p in pieces]
    known = [lv for lv in levels if lv is not None]
    if len(known) < 2:
        return [np.asarray(p, dtype=np.float32) for p in pieces]
    target = float(np.median(known))
    limit = 10 ** (MAX_GAIN_DB / 20)
    out = []
    for piece, lv in zip(pieces, levels, strict=True):
        gain = 1.0 if lv is None else min(limit, max(1 / limit, target / lv))
        scaled = piece.astype(np.float32) * np.float32(gain)
        peak = float(np.max(np.abs(scaled))) if scaled.size else 0.0
        if peak > PEAK:
            scaled *= np.float32(PEAK / peak)
        out.append(scaled)
    return out


TARGET_DB = -20.0  # active-speech RMS every part is brought to (parts are rendered apart)
MAX_TARGET_GAIN_DB = 12.0


def level_to_target(pieces: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each piece brought to one fixed active level (``TARGET_DB``, within +/- ``MAX_TARGET_GAIN_DB``),
    then peak-limited. Unlike ``level`` it needs no other pieces: parts rendered on different workers
    come out at the same loudness."""
    target = 10 ** (TARGET_DB / 20)
    limit = 10 ** (MAX_TARGET_GAIN_DB / 20)
    out = []
    for piece in pieces:
        lv = active_rms(piece)
        gain = 1.0 if lv is None else min(limit, max(1 / limit, target / lv))
        scaled = np.asarray(piece, dtype=np.float32) * np.float32(gain)
        peak = float(np.max(np.abs(scaled))) if scaled.size else 0.0
        if peak > PEAK:
            scaled *= np.float32(PEAK / peak)
        out.append(scaled)
    return out
