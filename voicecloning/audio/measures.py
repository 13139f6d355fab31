"""Level measurements of a clip: clipping, signal-to-noise ratio, loudness."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pyloudnorm

from voicecloning.audio.vad import SpeechSegment

CLIPPED_LEVEL = 0.999  # |x| at or above this counts as a clipped sample
PEAK_CEILING = 0.99  # loudness normalisation never drives a peak above this
_SNR_FRAME_S = 0.02
_SNR_GUARD_S = 0.1  # non-speech this close to speech is not used as noise (breaths, reverb tails)
_SNR_MIN_NOISE_S = 0.25  # less non-speech than this: no SNR estimate
_NOISE_FLOOR_POWER = 1e-10  # -100 dBFS: digital silence between words
SNR_CAP_DB = 100.0


def clipping_ratio(samples: np.ndarray) -> float:
    """Fraction of samples at full scale (|x| >= 0.999)."""
    if samples.size == 0:
        return 0.0
    return float(np.count_nonzero(np.abs(samples) >= CLIPPED_LEVEL) / samples.size)


def speech_mask(length: int, rate: int, segments: Sequence[SpeechSegment], widen_s: float = 0.0) -> np.ndarray:
    """Boolean mask of the samples inside ``segments`` (each widened by ``widen_s`` both sides)."""
    mask = np.zeros(length, dtype=bool)
    for segment in segments:
        start = max(0, int((segment.start_s - widen_s) * rate))
        end = min(length, int(np.ceil((segment.end_s + widen_s) * rate)))
        mask[start:end] = True
    return mask


def _frame_powers(samples: np.ndarray, rate: int) -> np.ndarray:
    size = max(1, int(_SNR_FRAME_S * rate))
    frames = samples[: len(samples) // size * size].reshape(-1, size).astype(np.float64)
    return np.mean(frames**2, axis=1)


def snr_db(samples: np.ndarray, rate: int, segments: Sequence[SpeechSegment]) -> float | None:
    """Speech-to-noise ratio in dB, from the VAD's speech and non-speech regions.

    Noise power is the median power of 20 ms non-speech frames (robust to a
    cough or a click), at least -100 dBFS; speech power is the mean power of
    the speech frames minus that noise. None when the clip has less than
    0.25 s of non-speech away from speech; capped at 100 dB.
    """
    size = max(1, int(_SNR_FRAME_S * rate))
    usable = len(samples) // size * size
    speech = speech_mask(usable, rate, segments).reshape(-1, size).mean(axis=1) >= 0.5
    near_speech = speech_mask(usable, rate, segments, _SNR_GUARD_S).reshape(-1, size).any(axis=1)
    powers = _frame_powers(samples[:usable], rate)
    noise_frames = powers[~near_speech]
    if not speech.any() or noise_frames.size * size < _SNR_MIN_NOISE_S * rate:
        return None
    noise = max(float(np.median(noise_frames)), _NOISE_FLOOR_POWER)
    voice = max(float(np.mean(powers[speech])) - noise, _NOISE_FLOOR_POWER * 1e-2)
    return min(10.0 * float(np.log10(voice / noise)), SNR_CAP_DB)


@lru_cache(maxsize=8)
def _meter(rate: int) -> pyloudnorm.Meter:
    return pyloudnorm.Meter(rate)  # ITU-R BS.1770-4, 400 ms blocks


def integrated_loudness(samples: np.ndarray, rate: int) -> float | None:
    """Integrated loudness in LUFS; None for clips shorter than one 0.4 s block or silent ones."""
    if len(samples) < int(0.4 * rate) + 1:
        return None
    with np.errstate(divide="ignore"):
        loudness = float(_meter(rate).integrated_loudness(samples.astype(np.float64)))
    return loudness if np.isfinite(loudness) else None


def normalise_loudness(samples: np.ndarray, rate: int, target_lufs: float) -> np.ndarray:
    """``samples`` at ``target_lufs`` integrated loudness, scaled down if a peak would pass 0.99.

    A plain gain (no compression), so the result is quieter than the target
    when the clip's peak-to-loudness ratio does not fit. Clips the meter
    cannot measure (too short, silent) are only peak-limited.
    """
    loudness = integrated_loudness(samples, rate)
    gain = 1.0 if loudness is None else 10.0 ** ((target_lufs - loudness) / 20.0)
    out = samples.astype(np.float32) * np.float32(gain)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > PEAK_CEILING:
        out *= np.float32(PEAK_CEILING / peak)
    return out
