"""Scoring one segment: character error rate and the flags that name what went wrong.

Flags, each a reason a listener would give:

- ``silent``: the project's VAD finds no speech at all (nothing is transcribed);
- ``high_cer``: the character error rate against the text exceeds the limit;
- ``truncated``: what was heard is the beginning of the text, and its end is missing;
- ``babble``: far more was said, or spoken for far longer, than the text needs.

The CER is the Levenshtein distance between the normalised text and the
normalised transcript divided by the text's length (capped at 1.0, so one
bad segment cannot swamp a job's mean). The missing tail is read from the
same alignment: the transcript is compared with every prefix of the text,
and what follows the closest prefix was not heard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voicecloning.quality.asr import Word

SILENT, HIGH_CER, TRUNCATED, BABBLE = "silent", "high_cer", "truncated", "babble"


@dataclass(frozen=True)
class Thresholds:
    max_cer: float = 0.35
    min_tail_fraction: float = 0.25  # this much of the text unheard at its end is a cut-off
    min_tail_chars: int = 8  # ... and at least this many characters (a lost last word is only an error)
    max_length_ratio: float = 1.5  # transcript longer than this times the text: babble (a repeat misheard
    # by Whisper came out at 1.69x: 135 characters for 80, so 1.6 + 8 characters was too lax)
    min_chars_per_second: float = 5.0  # speech slower than this over the text's length: babble
    babble_grace_s: float = 1.5  # breath and padding allowed on top


@dataclass(frozen=True)
class Score:
    cer: float
    flags: tuple[str, ...]
    heard: str = ""
    speech_s: float = 0.0
    words: tuple[Word, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.flags

    def rank(self) -> tuple[bool, float, int]:
        """Smaller is better: a passing take first, then the lower error rate (which already
        counts a missing tail or extra speech), then fewer flags."""
        return (not self.ok, self.cer, len(self.flags))

    def to_dict(self) -> dict[str, Any]:
        return {
            "cer": round(self.cer, 4),
            "flags": list(self.flags),
            "heard": self.heard,
            "speech_s": round(self.speech_s, 3),
            "words": [w.to_dict() for w in self.words],
        }


@dataclass(frozen=True)
class Alignment:
    distance: int  # Levenshtein distance of the whole reference to the hypothesis
    covered: int  # length of the reference prefix the hypothesis is closest to (the part that was heard)
    covered_distance: int  # the hypothesis's edit distance to that prefix


def align(reference: str, hypothesis: str) -> Alignment:
    """Edit distance of ``hypothesis`` to ``reference`` and to each of its prefixes.

    The prefix closest to the hypothesis (the longest one on a tie) tells how
    much of the reference was said: a cut-off take matches an early prefix
    far better than the whole text.
    """
    m = len(hypothesis)
    row = list(range(m + 1))
    best_prefix, best_distance = 0, m  # the empty prefix is m edits away
    for i, ref_char in enumerate(reference, start=1):
        previous, row = row, [i] + [0] * m
        for j in range(1, m + 1):
            row[j] = min(
                previous[j - 1] + (ref_char != hypothesis[j - 1]),
                previous[j] + 1,  # reference character not heard
                row[j - 1] + 1,  # extra character heard
            )
        if row[m] <= best_distance:
            best_prefix, best_distance = i, row[m]
    return Alignment(distance=row[m], covered=best_prefix, covered_distance=best_distance)


def score_text(
    reference: str,
    heard: str,
    speech_s: float,
    thresholds: Thresholds,
    words: tuple[Word, ...] = (),
) -> Score:
    """Score a transcript (both texts already normalised) against the text the segment should say."""
    if not reference:
        return Score(cer=0.0, flags=(), heard=heard, speech_s=speech_s, words=words)
    alignment = align(reference, heard)
    cer = min(1.0, alignment.distance / len(reference))
    flags: list[str] = []
    if cer > thresholds.max_cer:
        flags.append(HIGH_CER)
    tail = len(reference) - alignment.covered
    said_prefix = (alignment.covered >= thresholds.min_tail_chars  # the beginning was said, and said well
                   and alignment.covered_distance <= thresholds.max_cer * alignment.covered)
    if said_prefix and tail >= thresholds.min_tail_chars and tail >= thresholds.min_tail_fraction * len(reference):
        flags.append(TRUNCATED)
    too_long_text = len(heard) > thresholds.max_length_ratio * len(reference) + thresholds.min_tail_chars
    too_long_speech = speech_s > len(reference) / thresholds.min_chars_per_second + thresholds.babble_grace_s
    if too_long_text or too_long_speech:
        flags.append(BABBLE)
    return Score(cer=cer, flags=tuple(flags), heard=heard, speech_s=speech_s, words=words)


def silent_score() -> Score:
    return Score(cer=1.0, flags=(SILENT,))
