"""Synthesised samples -> the bytes of an audio file in the requested format and rate.

* ``wav``: 16-bit PCM WAV. ``flac``: 16-bit FLAC. ``mp3``: MPEG-1/2 Layer III
  (libsndfile's LAME, its default variable bitrate). ``ogg``: Opus in Ogg.
* ``out_rate`` (default: the input rate) must be one of
  ``OUTPUT_SAMPLE_RATES``; conversion uses soxr.
* Opus only codes 8/12/16/24/48 kHz. An ``ogg`` request at 22050 or 44100 Hz
  is encoded at 48000 Hz -- the rate every Opus decoder plays at anyway --
  and ``EncodedAudio.sample_rate`` says so. (Refusing would fail requests
  for a combination users cannot be expected to know about.)

Samples are clipped to [-1, 1] before PCM conversion (libsndfile would wrap
them otherwise).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from voicecloning.audio.resample import resample
from voicecloning.errors import UnsupportedFormat

OUTPUT_FORMATS = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "ogg": "audio/ogg"}  # ogg = Opus
OUTPUT_SAMPLE_RATES = (16000, 22050, 24000, 44100, 48000)
OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
OPUS_FALLBACK_RATE = 48000

# format -> (libsndfile major format, subtype)
_SNDFILE_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "OPUS"),
}


@dataclass(frozen=True)
class EncodedAudio:
    data: bytes
    content_type: str
    extension: str
    sample_rate: int  # the rate in the file (48000 for ogg asked at 22050/44100)
    duration_s: float


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str = "wav", out_rate: int | None = None) -> EncodedAudio:
    """Encode mono float ``samples`` at ``sample_rate`` as ``fmt`` at ``out_rate`` Hz.

    ``UnsupportedFormat`` (naming the allowed values) for an unknown format or
    rate; ``ValueError`` for empty or multi-channel samples, a caller's bug.
    """
    extension = fmt.strip().lstrip(".").lower()
    if extension not in OUTPUT_FORMATS:
        raise UnsupportedFormat(f"output format '{fmt}' is not supported; choose one of {', '.join(OUTPUT_FORMATS)}.")
    if out_rate is not None and out_rate not in OUTPUT_SAMPLE_RATES:
        allowed = ", ".join(str(rate) for rate in OUTPUT_SAMPLE_RATES)
        raise UnsupportedFormat(f"output sample rate {out_rate} Hz is not supported; choose one of {allowed} Hz.")
    mono = np.asarray(samples, dtype=np.float32)
    if mono.ndim != 1 or mono.size == 0:
        raise ValueError(f"encode_audio needs a non-empty 1-D array of samples, got shape {mono.shape}")
    file_rate = _file_rate(extension, out_rate or sample_rate)
    converted = resample(mono, sample_rate, file_rate)
    converted = np.clip(np.nan_to_num(converted, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    major, subtype = _SNDFILE_FORMATS[extension]
    buffer = io.BytesIO()
    sf.write(buffer, converted, file_rate, format=major, subtype=subtype)
    return EncodedAudio(
        data=buffer.getvalue(),
        content_type=OUTPUT_FORMATS[extension],
        extension=extension,
        sample_rate=file_rate,
        duration_s=len(converted) / file_rate,
    )


def _file_rate(extension: str, wanted: int) -> int:
    if extension == "ogg" and wanted not in OPUS_SAMPLE_RATES:
        return OPUS_FALLBACK_RATE
    return wanted
