"""What every benchmark process runs, and how it measures itself."""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import numpy as np
import psutil

CONDITIONING_RATE = 22050
OUTPUT_RATE = 24000
TOKENS_PER_SECOND = 21.53  # XTTS-v2 audio tokens per second of audio
SINGLE_TOKENS = 200  # ~9.3 s of audio
LONG_TOKENS = 220  # per segment; 6 segments ~61 s of audio
WARMUP_TOKENS = 8
SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest."
LONG_SEGMENTS = (
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "The sky above the port was the colour of television, tuned to a dead channel.",
    "Many years later, as he faced the firing squad, he remembered that distant afternoon.",
    "Call me Ishmael; some years ago I thought I would sail about a little.",
    "It is a truth universally acknowledged that a single man must be in want of a wife.",
    "All happy families are alike, but every unhappy family is unhappy in its own way.",
)
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
