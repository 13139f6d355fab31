"""Bounded, streaming decoders: libsndfile (soundfile) and FFmpeg (PyAV).

Each reader returns None when its library does not recognise the data at all
(so the caller can try the other one), raises ``ClipRejected`` when the data
is recognised but damaged or too long, and otherwise returns float32 mono
samples. Neither ever holds more than the ``ClipBudget`` allows (its seconds,
and its frames whatever the sample rate) plus a little slack: a length or rate
in the header that does not fit is refused before decoding, audio is decoded
block by block, and decoding stops at the cap, so a clip whose header lies
about its length (or has none) costs at most that much.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import av
import av.error
import numpy as np
import soundfile as sf

from voicecloning.audio import rejections
from voicecloning.audio.budget import ClipBudget

# Samples (frames x channels) per soundfile read: one block stays near 1 MB at any channel count.
_BLOCK_SAMPLES = 2**18
# soundfile reports "unknown length" as a huge count.
_UNKNOWN_FRAMES = 2**62
# Only these formats state their exact length in the header; for the others
# (MP3, raw AAC) the length is guessed from the bitrate and is not trusted.
_EXACT_LENGTH_SNDFILE = frozenset({"WAV", "FLAC", "OGG"})
_GUESSED_LENGTH_PYAV = frozenset({"mp3", "aac"})


@dataclass(frozen=True)
class RawAudio:
    samples: np.ndarray  # float32 mono, not yet clipped
    sample_rate: int


@dataclass
class _MonoCollector:
    """Gathers down-mixed blocks and refuses to hold more than the cap."""

    sample_rate: int
    budget: ClipBudget
    announced_s: float | None  # for the "too long" message
    announced_exactly: bool
    blocks: list[np.ndarray] = field(default_factory=list)
    frames: int = 0

    @property
    def cap_frames(self) -> int:
        return self.budget.cap_frames(self.sample_rate)

    def add(self, channels_last: np.ndarray) -> None:
        """Add a (frames, channels) block."""
        mono = channels_last.mean(axis=1, dtype=np.float32) if channels_last.shape[1] > 1 else channels_last[:, 0]
        self.blocks.append(np.ascontiguousarray(mono, dtype=np.float32))
        self.frames += len(mono)
        if self.frames > self.cap_frames:
            fits_s = self.budget.seconds_at(self.sample_rate)
            known = self.announced_s if self.announced_s and self.announced_s > fits_s else None
            raise self.budget.too_long(known, self.sample_rate, estimated=not self.announced_exactly)

    def result(self) -> RawAudio:
        samples = np.concatenate(self.blocks) if self.blocks else np.zeros(0, dtype=np.float32)
        return RawAudio(samples, self.sample_rate)


def sndfile_duration(data: bytes) -> float | None:
    """The length soundfile reads from the header, or None."""
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            return f.frames / f.samplerate if 0 < f.frames < _UNKNOWN_FRAMES else None
    except sf.SoundFileError:
        return None


def read_with_soundfile(data: bytes, extension: str, budget: ClipBudget) -> RawAudio | None:
    try:
        f = sf.SoundFile(io.BytesIO(data))
    except sf.SoundFileError:
        return None
    with f:
        announced = f.frames / f.samplerate if 0 < f.frames < _UNKNOWN_FRAMES else None
        exact = f.format in _EXACT_LENGTH_SNDFILE
        if announced is not None and exact and budget.exceeds(announced, f.samplerate):
            raise budget.too_long(announced, f.samplerate)
        collector = _MonoCollector(f.samplerate, budget, announced, exact)
        block_frames = max(1, _BLOCK_SAMPLES // max(1, f.channels))
        try:
            while True:
                block = f.read(
                    min(block_frames, collector.cap_frames + 1 - collector.frames), dtype="float32", always_2d=True
                )
                if len(block) == 0:
                    break
                collector.add(block)
        except sf.SoundFileError as exc:
            raise rejections.damaged(extension) from exc
        if f.format == "FLAC" and announced is not None and collector.frames < f.frames:
            raise rejections.truncated(extension, announced, collector.frames / f.samplerate)
    return collector.result()


def _pyav_duration(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def pyav_duration(data: bytes) -> float | None:
    """The length FFmpeg reads from the container, or None."""
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="replace") as container:
            if not container.streams.audio:
                return None
            return _pyav_duration(container, container.streams.audio[0])
    except av.error.FFmpegError:
        return None


def read_with_pyav(data: bytes, extension: str, budget: ClipBudget) -> RawAudio | None:
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="replace")
    except av.error.FFmpegError:
        return None
    with container:
        if not container.streams.audio:
            raise rejections.no_audio_track(extension)
        stream = container.streams.audio[0]
        announced = _pyav_duration(container, stream)
        exact = container.format.name not in _GUESSED_LENGTH_PYAV
        rate = stream.codec_context.sample_rate or 0
        if announced is not None and exact and rate > 0 and budget.exceeds(announced, rate):
            raise budget.too_long(announced, rate)
        try:
            return _decode_stream(container, stream, budget, announced, exact)
        except av.error.FFmpegError as exc:
            raise rejections.damaged(extension) from exc


def _decode_stream(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    budget: ClipBudget,
    announced: float | None,
    exact: bool,
) -> RawAudio:
    collector: _MonoCollector | None = None
    resampler: av.AudioResampler | None = None
    for frame in container.decode(stream):
        if resampler is None:
            # Planar float at the first frame's rate and layout; we average channels ourselves.
            resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.sample_rate)
            collector = _MonoCollector(frame.sample_rate, budget, announced, exact)
        for converted in resampler.resample(frame):
            collector.add(converted.to_ndarray().T)
    if resampler is None or collector is None:
        return RawAudio(np.zeros(0, dtype=np.float32), stream.codec_context.sample_rate or 1)
    for converted in resampler.resample(None):
        collector.add(converted.to_ndarray().T)
    return collector.result()
