"""Sample-rate conversion with soxr (deterministic, high quality)."""

from __future__ import annotations

import numpy as np
import soxr


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``samples`` (float, mono) converted from ``from_rate`` to ``to_rate`` Hz, as float32."""
    mono = np.ascontiguousarray(samples, dtype=np.float32)
    if from_rate == to_rate or mono.size == 0:
        return mono.copy()
    return np.ascontiguousarray(soxr.resample(mono, from_rate, to_rate, quality="HQ"), dtype=np.float32)
