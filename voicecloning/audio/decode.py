"""Uploaded bytes -> float32 mono samples, refusing bad uploads before decoding them.

Order of checks in ``decode_audio``:

1. the extension is one of ``INPUT_EXTENSIONS`` (``UnsupportedFormat``);
2. the data is not empty;
3. for WAV, the RIFF header itself: a header announcing more audio than the
   file holds is "damaged or truncated", one announcing more than the
   budget allows is "too long" -- both before any sample is decoded;
4. decoding with soundfile (wav, flac, ogg, opus, mp3) or PyAV (m4a, aac,
   webm, and the fallback for anything soundfile does not recognise). A
   format with an exact length in its header (WAV, FLAC, Ogg, MP4, WebM) is
   refused up front when that length is over the limit; every format is
   decoded block by block and decoding stops at the limit + 0.5 s, so
   a missing or lying header never costs more than that.

The limit is a ``ClipBudget``: ``max_seconds``, and at most ``max_seconds`` x
``max_source_rate`` frames, so a high sample rate cannot turn a small file
into gigabytes of samples (see ``budget``).

Channels are averaged to mono; samples are clipped to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voicecloning.audio import readers, rejections
from voicecloning.audio.budget import DEFAULT_MAX_SOURCE_RATE, ClipBudget
from voicecloning.audio.riff import is_riff_wave, read_wav_header
from voicecloning.errors import UnsupportedFormat

INPUT_EXTENSIONS = ("wav", "flac", "ogg", "opus", "mp3", "m4a", "aac", "webm")
# Extensions libsndfile decodes; the rest go straight to FFmpeg.
_SNDFILE_EXTENSIONS = frozenset({"wav", "flac", "ogg", "opus", "mp3"})
# Below telephone quality there is too little of the voice left to clone.
MIN_SAMPLE_RATE = 8000


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32 mono, shape (n,), in [-1, 1]
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def normalise_extension(extension: str) -> str:
    """``".WAV"`` -> ``"wav"``; ``UnsupportedFormat`` for anything not in ``INPUT_EXTENSIONS``."""
    ext = extension.strip().lstrip(".").lower()
    if ext not in INPUT_EXTENSIONS:
        shown = f"'.{ext}' files are" if ext else "files without an extension are"
        raise UnsupportedFormat(
            f"{shown} not supported; upload a recording in one of these formats: {', '.join(INPUT_EXTENSIONS)}."
        )
    return ext


def probe_duration(data: bytes, extension: str) -> float | None:
    """The duration the file's header announces, in seconds, without decoding audio.

    None when it is unknown: unsupported extension, empty or unrecognised data,
    or a stream that does not state its length. For MP3 and raw AAC the value
    is the decoder's estimate from the bitrate.
    """
    ext = extension.strip().lstrip(".").lower()
    if ext not in INPUT_EXTENSIONS or not data:
        return None
    header = read_wav_header(data)
    if header is not None and header.complete:
        return header.announced_s if header.announced_s is not None else header.present_s
    duration = readers.sndfile_duration(data) if ext in _SNDFILE_EXTENSIONS else None
    return duration if duration is not None else readers.pyav_duration(data)


def decode_audio(
    data: bytes, extension: str, *, max_seconds: float, max_source_rate: int = DEFAULT_MAX_SOURCE_RATE
) -> DecodedAudio:
    """Decode an uploaded clip; ``ClipRejected`` / ``UnsupportedFormat`` with a user-facing reason.

    At most ``max_seconds`` of audio, and at most ``max_seconds`` x ``max_source_rate`` frames.
    """
    budget = ClipBudget(max_seconds, max_source_rate)  # ValueError for a non-positive limit
    ext = normalise_extension(extension)
    if not data:
        raise rejections.empty_file()
    _check_wav_header(data, budget)
    raw = readers.read_with_soundfile(data, ext, budget) if ext in _SNDFILE_EXTENSIONS else None
    if raw is None:
        raw = readers.read_with_pyav(data, ext, budget)
    if raw is None:
        raise rejections.undecodable(ext)
    if raw.samples.size == 0:
        raise rejections.no_samples(ext)
    if raw.sample_rate < MIN_SAMPLE_RATE:
        raise rejections.low_sample_rate(raw.sample_rate, MIN_SAMPLE_RATE)
    samples = np.nan_to_num(raw.samples, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(samples, -1.0, 1.0, out=samples)
    return DecodedAudio(samples=samples.astype(np.float32, copy=False), sample_rate=raw.sample_rate)


def _check_wav_header(data: bytes, budget: ClipBudget) -> None:
    if not is_riff_wave(data):
        return
    kind = "wav"  # the content is RIFF/WAVE whatever the file is called
    header = read_wav_header(data)
    if header is None or not header.complete:
        raise rejections.damaged(kind)
    if header.truncated and header.announced_s is not None:
        raise rejections.truncated(kind, header.announced_s, header.present_s)
    length = header.announced_s if header.announced_s is not None else header.present_s
    if budget.exceeds(length, header.sample_rate):
        raise budget.too_long(length, header.sample_rate)
