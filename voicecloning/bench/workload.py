"""What every benchmark process runs, and how it measures itself.

Long form is ragged, as real requests are: its segments are real sentences
(the opening sentences of public-domain novels, punctuation kept ASCII),
drawn in a fixed-seed random order until they hold at least
``LONG_MIN_AUDIO_S`` of speech, and each segment's token count follows its
length at the speaking rate the part planner assumes (14 characters per
second, ``parts.DEFAULT_CHARS_PER_SECOND``) times XTTS's 21.53 tokens per
second. Random weights never stop on their own, so those counts are forced.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import numpy as np
import psutil

from voicecloning.parts import DEFAULT_CHARS_PER_SECOND

CONDITIONING_RATE = 22050
OUTPUT_RATE = 24000
TOKENS_PER_SECOND = 21.53  # XTTS-v2 audio tokens per second of audio
SINGLE_TOKENS = 200  # ~9.3 s of audio
WARMUP_TOKENS = 8
SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest."
# Real sentences, 16 to 243 characters (opening sentences of public-domain novels).
SENTENCE_POOL = (
    "Call me Ishmael.",
    "Some years ago, never mind how long precisely, having little or no money in my purse, and nothing "
    "particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.",
    "It is a way I have of driving off the spleen and regulating the circulation.",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife.",
    "Happy families are all alike; every unhappy family is unhappy in its own way.",
    "Everything was in confusion in the Oblonskys' house.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
    "it was the season of Darkness.",
    "Marley was dead: to begin with.",
    "There is no doubt whatever about that.",
    "The register of his burial was signed by the clergyman, the clerk, the undertaker, and the chief mourner.",
    "Whether I shall turn out to be the hero of my own life, or whether that station will be held by "
    "anybody else, these pages must show.",
    "You don't know about me without you have read a book by the name of The Adventures of Tom Sawyer; "
    "but that ain't no matter.",
    "Mr. Sherlock Holmes, who was usually very late in the mornings, save upon those not infrequent "
    "occasions when he was up all night, was seated at the breakfast table.",
    "The studio was filled with the rich odour of roses, and when the light summer wind stirred amidst the "
    "trees of the garden, there came through the open door the heavy scent of the lilac, or the more "
    "delicate perfume of the pink-flowering thorn.",
    "Stately, plump Buck Mulligan came from the stairhead, bearing a bowl of lather on which a mirror and "
    "a razor lay crossed.",
    "I am by birth a Genevese, and my family is one of the most distinguished of that republic.",
)
LONG_SEED = 13
LONG_MIN_AUDIO_S = 60.0


def tokens_for(text: str) -> int:
    """Audio tokens a sentence takes at the planner's speaking rate."""
    return max(1, round(len(text) / DEFAULT_CHARS_PER_SECOND * TOKENS_PER_SECOND))


def long_form(seed: int = LONG_SEED, min_audio_s: float = LONG_MIN_AUDIO_S) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(segments, forced token count of each): pool sentences in a seeded order until ``min_audio_s``."""
    order = np.random.default_rng(seed).permutation(len(SENTENCE_POOL))
    segments: list[str] = []
    while sum(map(tokens_for, segments)) < min_audio_s * TOKENS_PER_SECOND:
        segments.append(SENTENCE_POOL[order[len(segments) % len(order)]])
    return tuple(segments), tuple(tokens_for(text) for text in segments)


LONG_SEGMENTS, LONG_TOKENS = long_form()
SAMPLING = {"temperature": 0.75, "top_k": 50, "top_p": 0.85, "repetition_penalty": 5.0, "length_penalty": 1.0}


def reference_clip(seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """A speech-like 22.05 kHz clip: a gliding harmonic voice with syllable-rate amplitude changes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * CONDITIONING_RATE)) / CONDITIONING_RATE
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / CONDITIONING_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    clip = 0.3 * voice * envelope + 0.01 * rng.standard_normal(t.size)
    return (clip / np.abs(clip).max() * 0.8).astype(np.float32)


def since_process_start() -> float:
    return time.time() - psutil.Process().create_time()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def emit(result: dict[str, Any]) -> None:
    """The worker's result: one JSON object as its last stdout line."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
