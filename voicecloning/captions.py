"""Captions and timings from rendered sample counts: ``timings.json``, WebVTT and SRT.

The caller knows exactly how many samples each segment rendered (and how many
samples of silence lie between them), so cue times are exact to the sample,
never estimated from text length. ``timeline`` turns those counts into
``TimedSegment`` values; ``timings_document``, ``to_vtt`` and ``to_srt`` write
them out. Schema and examples: docs/PRODUCT.md ("Captions and timings").

Cue times are written in milliseconds (the precision both formats have),
rounded half-up, the same way for starts and ends: ordered segments that do
not overlap give cues that do not overlap. ``timings.json`` keeps seconds to
six decimals, finer than one sample at 24 kHz (41.7 µs), so
``round(start_s * 24000)`` recovers the sample index.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

SAMPLE_RATE = 24000  # XTTS-v2 renders at 24 kHz
FORMATS = ("vtt", "srt")
CONTENT_TYPES = {"vtt": "text/vtt; charset=utf-8", "srt": "application/x-subrip; charset=utf-8",
                 "json": "application/json"}


@dataclass(frozen=True)
class TimedSegment:
    """One spoken segment and where it lies in the final audio."""

    text: str
    voice_id: str
    start_s: float
    end_s: float

    @classmethod
    def from_samples(cls, text: str, voice_id: str, start: int, end: int, rate: int = SAMPLE_RATE) -> TimedSegment:
        return cls(text, voice_id, start / rate, end / rate)


def timeline(pieces: Iterable[tuple[str, str, int, int]], rate: int = SAMPLE_RATE) -> list[TimedSegment]:
    """Segments from ``(text, voice_id, samples, silence_after)`` in playing order.

    ``samples`` is the segment's rendered length, ``silence_after`` the samples
    of pause (a ``<break>``, the gap between dialogue turns) before the next one.
    """
    out: list[TimedSegment] = []
    cursor = 0
    for text, voice_id, samples, silence_after in pieces:
        if samples < 0 or silence_after < 0:
            raise ValueError("sample counts must not be negative")
        out.append(TimedSegment.from_samples(text, voice_id, cursor, cursor + samples, rate))
        cursor += samples + silence_after
    return out


def timings_document(segments: Sequence[TimedSegment], duration_s: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of ``outputs/<job_id>.timings.json``."""
    _check(segments, duration_s)
    return {
        "segments": [
            {"text": s.text, "start_s": round(s.start_s, 6), "end_s": round(s.end_s, 6), "voice_id": s.voice_id}
            for s in segments
        ],
        "duration_s": round(duration_s, 6),
        **(extra or {}),
    }


def to_vtt(segments: Sequence[TimedSegment], label_voices: bool = False) -> str:
    """A WebVTT file, one cue per segment; ``label_voices`` adds ``<v voice_id>`` (dialogues)."""
    _check(segments)
    lines = ["WEBVTT", ""]
    for n, seg in enumerate(segments, 1):
        text = _escape_vtt(_one_line(seg.text))
        if label_voices:
            text = f"<v {seg.voice_id}>{text}"
        lines += [str(n), f"{_stamp(seg.start_s, '.')} --> {_stamp(seg.end_s, '.')}", text, ""]
    return "\n".join(lines)


def to_srt(segments: Sequence[TimedSegment]) -> str:
    """A SubRip file, one cue per segment, numbered from 1."""
    _check(segments)
    blocks = [
        f"{n}\n{_stamp(seg.start_s, ',')} --> {_stamp(seg.end_s, ',')}\n{_one_line(seg.text)}\n"
        for n, seg in enumerate(segments, 1)
    ]
    return "\n".join(blocks)


def render(fmt: str, segments: Sequence[TimedSegment], label_voices: bool = False) -> str:
    """``to_vtt`` or ``to_srt`` by the request's format name."""
    if fmt == "vtt":
        return to_vtt(segments, label_voices)
    if fmt == "srt":
        return to_srt(segments)
    raise ValueError(f"unknown caption format {fmt!r}; use one of {', '.join(FORMATS)}")


def _millis(seconds: float) -> int:
    return math.floor(seconds * 1000 + 0.5)


def _stamp(seconds: float, sep: str) -> str:
    ms = _millis(seconds)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def _one_line(text: str) -> str:
    """Cue text cannot hold blank lines or the arrow; speech text is one line anyway."""
    flat = " ".join(text.split()).replace("-->", "->")
    return flat or "…"


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _check(segments: Sequence[TimedSegment], duration_s: float | None = None) -> None:
    """Programming errors, not user errors: segments must be ordered and disjoint."""
    previous_end = 0.0
    for seg in segments:
        if seg.end_s < seg.start_s or seg.start_s < previous_end - 1e-9:
            raise ValueError(f"segments must be ordered and must not overlap (at {seg.start_s:.6f} s)")
        previous_end = seg.end_s
    if duration_s is not None and previous_end > duration_s + 1e-9:
        raise ValueError(f"the last segment ends at {previous_end:.6f} s, after the audio ({duration_s:.6f} s)")
