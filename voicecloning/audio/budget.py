"""How much audio one clip may hold: a length in seconds, and a number of frames.

The decoders keep every decoded frame (float32 mono, 4 bytes), so a cap in
seconds is a cap in memory only at ordinary sample rates: a FLAC of silence
at 655,350 Hz is 1.4 MB on disk and 1.6 GB of float32 after 10 minutes. So
the frames are capped too, at ``max_seconds`` x ``max_source_rate`` (10 min
at 48 kHz: 28.8 M frames, 115 MB). A clip above that rate may be
proportionally shorter; one that does not fit is refused from its header
before decoding, or as soon as decoding passes the cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voicecloning.audio import rejections
from voicecloning.errors import ClipRejected

# Studio recorders go to 96 or 192 kHz; XTTS conditions at 22.05 kHz, so
# nothing above 48 kHz adds to a voice. Above it only the frame count matters.
DEFAULT_MAX_SOURCE_RATE = 48000


@dataclass(frozen=True)
class ClipBudget:
    """At most ``max_seconds`` of audio, and at most ``max_seconds`` x ``max_source_rate`` frames."""

    max_seconds: float
    max_source_rate: int = DEFAULT_MAX_SOURCE_RATE

    def __post_init__(self) -> None:
        if self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, not {self.max_seconds}")
        if self.max_source_rate <= 0:
            raise ValueError(f"max_source_rate must be positive, not {self.max_source_rate}")

    def seconds_at(self, rate: int) -> float:
        """The longest clip that fits at ``rate``: ``max_seconds``, or less above ``max_source_rate``."""
        if rate <= self.max_source_rate:
            return self.max_seconds
        return self.max_seconds * self.max_source_rate / rate

    def cap_frames(self, rate: int) -> int:
        """Frames a decoder may collect at ``rate`` before it must stop (the slack included).

        Never more than (``max_seconds`` + slack) x ``max_source_rate``, whatever the rate.
        """
        slack = rejections.LENGTH_SLACK_S * min(rate, self.max_source_rate)
        return math.ceil(self.seconds_at(rate) * rate + slack)

    def exceeds(self, seconds: float, rate: int) -> bool:
        return rejections.exceeds(seconds, self.seconds_at(rate))

    def too_long(self, seconds: float | None, rate: int, *, estimated: bool = False) -> ClipRejected:
        """The refusal for a clip of ``seconds`` (None: unknown) at ``rate`` that does not fit."""
        if rate <= self.max_source_rate:
            return rejections.too_long(seconds, self.max_seconds, estimated=estimated)
        return rejections.too_long_at_rate(seconds, rate, self.seconds_at(rate), self.max_seconds,
                                           self.max_source_rate)
