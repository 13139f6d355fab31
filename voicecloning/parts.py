"""The part plan: a job's text cut into parts that different workers render at once.

A part is a run of whole segments (sentences under the model's character limit). Its
size is estimated in seconds of audio from the characters (``CHARS_PER_SECOND``), so
that rendering one takes a small fraction of one delivery's deadline. The first part
is short (the first sentence or two) so a listener hears audio early. A short request
is a job with one part: there is only this path.

Pauses are designed once, here: every segment but the job's first has ``pause_before_s``
(between sentences of one item, between items of a dialogue, or a ``<break>``). A part's
audio holds the pauses between its own segments; the pause before a part's first
segment is added when parts are joined (assembly, the web player), so no pause is
doubled or dropped at a part boundary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from voicecloning.text import base_language, sentences, split_text

PAUSE_BETWEEN_SEGMENTS_S = 0.2
PAUSE_BETWEEN_ITEMS_S = 0.35
# Speaking rate used to size parts (typical read speech); languages written without spaces
# carry more per character.
CHARS_PER_SECOND = {"zh": 5.0, "ja": 7.0, "ko": 8.0}
DEFAULT_CHARS_PER_SECOND = 14.0


@dataclass(frozen=True)
class Segment:
    text: str
    voice_id: str
    language: str
    pause_before_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "voice_id": self.voice_id, "language": self.language,
                "pause_before_s": self.pause_before_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(str(data["text"]), str(data["voice_id"]), str(data["language"]), float(data["pause_before_s"]))


@dataclass(frozen=True)
class Part:
    index: int
    segments: tuple[Segment, ...]

    @property
    def chars(self) -> int:
        return sum(len(s.text) for s in self.segments)

    @property
    def pause_before_s(self) -> float:
        """The pause between the previous part's end and this part's first segment."""
        return self.segments[0].pause_before_s

    @property
    def estimated_seconds(self) -> float:
        return sum(estimate_seconds(s.text, s.language) for s in self.segments)


def estimate_seconds(text: str, language: str) -> float:
    return len(text) / CHARS_PER_SECOND.get(base_language(language), DEFAULT_CHARS_PER_SECOND)


@dataclass(frozen=True)
class Piece:
    """Text to speak in one voice and language, with the pause before it."""

    text: str
    voice_id: str
    language: str
    pause_before_s: float


def segments_of(pieces: Sequence[Piece], char_limit: Callable[[str], int]) -> list[Segment]:
    """Every piece split into model-sized segments, with the designed pause before each."""
    out: list[Segment] = []
    for piece in pieces:
        for n, text in enumerate(split_text(piece.text, piece.language, char_limit(piece.language))):
            pause = piece.pause_before_s if n == 0 else PAUSE_BETWEEN_SEGMENTS_S
            out.append(Segment(text, piece.voice_id, piece.language, 0.0 if not out else pause))
    return out


def _short_start(segments: Sequence[Segment], first_part_seconds: float) -> list[Segment]:
    """Segments merge sentences up to the model's limit (~250 characters, 15-20 s): if the first one is
    longer than the first part may be, cut it back into its sentences, so part 0 is a sentence or two."""
    if not segments or estimate_seconds(segments[0].text, segments[0].language) <= first_part_seconds:
        return list(segments)
    head = segments[0]
    pieces = sentences(head.text, head.language)
    if len(pieces) < 2:
        return list(segments)
    taken: list[str] = []
    for sentence in pieces:
        if taken and estimate_seconds(" ".join([*taken, sentence]), head.language) > first_part_seconds:
            break
        taken.append(sentence)
    rest = pieces[len(taken):]
    joiner = "" if base_language(head.language) in ("zh", "ja") else " "
    out = [Segment(joiner.join(taken), head.voice_id, head.language, head.pause_before_s)]
    if rest:
        out.append(Segment(joiner.join(rest), head.voice_id, head.language, PAUSE_BETWEEN_SEGMENTS_S))
    return out + list(segments[1:])


def plan_parts(segments: Sequence[Segment], *, part_seconds: float, first_part_seconds: float) -> list[Part]:
    """Consecutive segments grouped greedily into parts of about ``part_seconds`` of audio;
    the first part about ``first_part_seconds`` (a long first segment is cut back into sentences
    for it). Every part has at least one segment."""
    segments = _short_start(segments, first_part_seconds)
    parts: list[Part] = []
    current: list[Segment] = []
    seconds = 0.0
    for segment in segments:
        budget = first_part_seconds if not parts else part_seconds
        needed = estimate_seconds(segment.text, segment.language)
        if current and seconds + needed > budget:
            parts.append(Part(len(parts), tuple(current)))
            current, seconds = [], 0.0
        current.append(segment)
        seconds += needed
    if current:
        parts.append(Part(len(parts), tuple(current)))
    return parts


def part_seed(job_seed: int, index: int) -> int:
    """The seed of part ``index``: derived from the job's seed, so a re-rendered part is identical."""
    digest = hashlib.sha256(f"{job_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def job_seed(seed: int | None, job_path: str, generation: int) -> int:
    """The request's seed, or one fixed per upload (every part and re-render of it agree)."""
    if seed is not None:
        return seed
    digest = hashlib.sha256(f"{job_path}@{generation}".encode()).digest()
    return int.from_bytes(digest[:4], "big")
