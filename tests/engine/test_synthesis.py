"""Long-form synthesis: reproducible, ordered, batched without changing what each segment says."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from voicecloning.engine.synthesis import OUTPUT_RATE, PAUSE_SECONDS, synthesize_segments
from voicecloning.errors import InvalidRequest
from voicecloning.generation import GenerationOptions

SEGMENTS = ["Hello world.", "A second, rather longer sentence is here.", "Three."]
TOKENS = 6


def _segment_samples(tokens: int) -> int:
    """HiFiGAN output length: latents x4 (1024/256), then 22.05 -> 24 kHz, then 256 samples per frame."""
    return int(int(tokens * 4) * OUTPUT_RATE / 22050) * 256


def _say(model: Any, voice: Any, **kwargs: Any) -> np.ndarray:
    options = kwargs.pop("options", GenerationOptions(seed=11))
    return synthesize_segments(
        model, voice, SEGMENTS, "en", options, max_new_tokens=TOKENS, min_new_tokens=TOKENS, **kwargs
    )


def test_same_seed_same_audio(fast_int8: Any, voice: Any) -> None:
    """The same seed and text give identical audio; another seed gives different audio."""
    first, again = _say(fast_int8, voice), _say(fast_int8, voice)
    other = _say(fast_int8, voice, options=GenerationOptions(seed=12))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_audio_has_every_segment_and_the_pauses(fast_int8: Any, voice: Any) -> None:
    """24 kHz float32 audio: each segment's forced tokens of sound plus a 0.2 s pause between segments."""
    audio = _say(fast_int8, voice)
    expected = len(SEGMENTS) * _segment_samples(TOKENS) + (len(SEGMENTS) - 1) * int(PAUSE_SECONDS * OUTPUT_RATE)
    assert audio.dtype == np.float32
    assert len(audio) == expected
    assert np.abs(audio).max() > 0.0 and np.isfinite(audio).all()


def test_progress_is_reported_once_per_segment(fast_int8: Any, voice: Any) -> None:
    """on_segment(done, total) is called after each finished segment, counting up to the total."""
    calls: list[tuple[int, int]] = []
    _say(fast_int8, voice, on_segment=lambda done, total: calls.append((done, total)), batch_size=2)
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_batch_size_does_not_change_greedy_audio(stock_fp32: Any, voice: Any) -> None:
    """With greedy sampling (fp32), one batch of three and three batches of one give the same audio."""
    greedy = GenerationOptions(seed=1, top_k=1)
    batched = _say(stock_fp32, voice, options=greedy, batch_size=3)
    single = _say(stock_fp32, voice, options=greedy, batch_size=1)
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_a_too_long_sentence_is_refused_before_decoding(fast_int8: Any, voice: Any) -> None:
    """A segment over the model's text-token limit raises InvalidRequest."""
    with pytest.raises(InvalidRequest, match="too long"):
        synthesize_segments(fast_int8, voice, ["word " * 400], "en", GenerationOptions(), max_new_tokens=4)


def test_batch_size_does_not_change_sampled_audio(stock_fp32: Any, voice: Any) -> None:
    """Each segment samples from its own seeded stream: batched or alone, the same audio (fp32)."""
    options = GenerationOptions(seed=5)
    batched = _say(stock_fp32, voice, options=options, batch_size=3)
    single = _say(stock_fp32, voice, options=options, batch_size=1)
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_forced_tokens_give_each_segment_its_length(stock_fp32: Any, voice: Any) -> None:
    """Per-segment forced token counts (the benchmark's ragged rows) set each segment's audio length."""
    from voicecloning.engine.synthesis import render_segments

    counts = [3, 9, 5]
    pieces = render_segments(stock_fp32, voice, SEGMENTS, "en", GenerationOptions(seed=2), forced_tokens=counts)
    assert [len(p) for p in pieces] == [_segment_samples(n) for n in counts]
