"""Join rendered parts into the final audio file, streaming: one part in memory at a time.

Parts are 24 kHz 16-bit WAV objects. They are read in order, the designed pause before
each (but the first) is inserted, the stream is resampled continuously (one soxr stream
across part boundaries, so no clicks where parts meet) and written block by block to the
encoder (libsndfile) into a local file, which is then uploaded (resumable in the cloud).
Peak memory is bounded by the largest part, whatever the book's length.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voicecloning.audio import encode

PART_RATE = 24000
PART_FORMAT = "wav"  # what browsers play directly, and what parts are stored as


@dataclass(frozen=True)
class PartAudio:
    name: str  # object name of the part's audio
    pause_before_s: float


@dataclass(frozen=True)
class Assembled:
    path: Path
    content_type: str
    sample_rate: int
    samples: int

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate


class MissingPart(Exception):
    """A part's audio is gone (or belongs to another upload): it must be rendered again."""

    def __init__(self, index: int) -> None:
        super().__init__(f"part {index} has no audio")
        self.index = index


def assemble(
    parts: Sequence[PartAudio],
    read: Callable[[str], bytes | None],
    dest: Path,
    fmt: str,
    out_rate: int,
    *,
    on_part: Callable[[int], None] | None = None,
) -> Assembled:
    """Write the joined audio of ``parts`` to ``dest`` as ``fmt`` at ``out_rate`` (Opus: 48 kHz fallback)."""
    file_rate = encode._file_rate(fmt, out_rate)
    major, subtype = encode._SNDFILE_FORMATS[fmt]
    stream = soxr.ResampleStream(PART_RATE, file_rate, 1, dtype="float32", quality="HQ") if file_rate != PART_RATE else None
    written = 0
    with sf.SoundFile(dest, "w", samplerate=file_rate, channels=1, format=major, subtype=subtype) as out:

        def emit(block: np.ndarray, last: bool = False) -> None:
            nonlocal written
            converted = stream.resample_chunk(block, last=last) if stream is not None else block
            if converted.size:
                out.write(np.clip(converted, -1.0, 1.0))
                written += int(converted.size)

        for index, part in enumerate(parts):
            data = read(part.name)
            if data is None:
                raise MissingPart(index)
            samples, rate = sf.read(io.BytesIO(data), dtype="float32")
            del data
            if rate != PART_RATE or samples.ndim != 1:
                raise MissingPart(index)
            if index > 0 and part.pause_before_s > 0:
                emit(np.zeros(round(part.pause_before_s * PART_RATE), dtype=np.float32))
            emit(samples)
            if on_part is not None:
                on_part(index)
        emit(np.zeros(0, dtype=np.float32), last=True)
    return Assembled(dest, encode.OUTPUT_FORMATS[fmt], file_rate, written)


def encode_part(samples: np.ndarray) -> bytes:
    """A part's audio as the object stored for it (16-bit PCM WAV at 24 kHz)."""
    return encode.encode_audio(samples, PART_RATE, PART_FORMAT).data
