"""What a WAV (RIFF/WAVE) header announces, read without decoding any audio.

libsndfile silently clamps a ``data`` chunk that runs past the end of the
file, so a truncated upload -- or a header claiming hours in a 1 kB file --
would otherwise look like a short, valid clip. Reading the header ourselves
lets ``decode_audio`` tell "damaged" from "too long" before decoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Writers that stream (and crash) leave these sizes in the header: "unknown".
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class WavHeader:
    sample_rate: int
    block_align: int  # bytes per frame (all channels)
    announced_frames: int | None  # None: header leaves the length open
    present_frames: int  # whole frames actually in the file
    complete: bool  # False: the file ends before the fmt/data chunks are found

    @property
    def announced_s(self) -> float | None:
        if self.announced_frames is None:
            return None
        return self.announced_frames / self.sample_rate

    @property
    def present_s(self) -> float:
        return self.present_frames / self.sample_rate

    @property
    def truncated(self) -> bool:
        if not self.complete:
            return True
        return self.announced_frames is not None and self.present_frames < self.announced_frames


_INCOMPLETE = WavHeader(sample_rate=1, block_align=1, announced_frames=None, present_frames=0, complete=False)


def is_riff_wave(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def read_wav_header(data: bytes) -> WavHeader | None:
    """The header of a little-endian RIFF/WAVE file; None when ``data`` is not one.

    RF64/W64 and big-endian RIFX files return None: their lengths are left to
    the decoder.
    """
    if not is_riff_wave(data):
        return None
    rate = block_align = 0
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt ":
            if body + 16 > len(data):
                return _INCOMPLETE
            _tag, _channels, rate, _byte_rate, block_align = struct.unpack_from("<HHIIH", data, body)
        elif chunk_id == b"data":
            if rate <= 0 or block_align <= 0:
                return _INCOMPLETE  # no usable fmt chunk before the audio
            available = len(data) - body
            if size in _UNKNOWN_SIZES:
                return WavHeader(rate, block_align, None, available // block_align, True)
            present = min(size, available) // block_align
            return WavHeader(rate, block_align, size // block_align, present, True)
        offset = body + size + (size & 1)  # chunks are padded to even sizes
    return _INCOMPLETE
