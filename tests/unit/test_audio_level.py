"""Loudness levelling across separately generated pieces."""

from __future__ import annotations

import numpy as np

from voicecloning.audio.level import active_rms, level


def tone(amplitude: float, seconds: float = 1.0, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_pieces_at_different_levels_come_out_even() -> None:
    quiet, mid, loud = tone(0.1), tone(0.2), tone(0.35)
    out = level([quiet, mid, loud])
    levels = [active_rms(p) for p in out]
    assert max(levels) / min(levels) < 1.01  # within 0.1 dB of each other
    assert abs(levels[1] - active_rms(mid)) < 1e-6  # the median piece is the reference


def test_gain_is_bounded_and_nothing_clips() -> None:
    out = level([tone(0.01), tone(0.9), tone(0.9)])
    assert active_rms(out[0]) / active_rms(tone(0.01)) <= 10 ** (6 / 20) + 1e-6
    assert all(np.max(np.abs(p)) <= 0.99 + 1e-6 for p in out)


def test_silent_pieces_are_left_alone() -> None:
    silent = np.zeros(24000, dtype=np.float32)
    out = level([silent, tone(0.1), tone(0.3)])
    assert not out[0].any()
    assert level([tone(0.2)])[0] is not None and np.array_equal(level([tone(0.2)])[0], tone(0.2))
