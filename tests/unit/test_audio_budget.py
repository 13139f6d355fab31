"""Decoded audio is bounded in frames, not only in seconds: a small high-rate file never decodes to gigabytes."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from voicecloning.audio.budget import ClipBudget
from voicecloning.audio.decode import decode_audio
from voicecloning.errors import ClipRejected
from voicecloning.settings import Settings

HIGH_RATE = 655350  # the highest rate libsndfile writes into FLAC


def silent_flac(seconds: float, rate: int = HIGH_RATE, channels: int = 1) -> bytes:
    """Silence as FLAC: a few kB per minute on disk, 4 bytes per frame once decoded."""
    buffer = io.BytesIO()
    block = np.zeros((rate, channels), dtype=np.int16)
    with sf.SoundFile(buffer, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as f:
        whole, rest = divmod(int(seconds * rate), rate)
        for _ in range(whole):
            f.write(block)
        f.write(block[:rest])
    return buffer.getvalue()


def peak_bytes(fn: Callable[[], Any]) -> tuple[Any, int]:
    """(what ``fn`` returned or raised, the peak of memory traced while it ran)."""
    tracemalloc.start()
    try:
        try:
            outcome: Any = fn()
        except ClipRejected as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def ten_minutes_at_655_khz() -> bytes:
    """600 s at 655,350 Hz: 1.6 GB of float32 once decoded (about 7 s to write)."""
    return silent_flac(600.0)


def test_a_small_high_rate_flac_is_refused_before_it_decodes_to_gigabytes(ten_minutes_at_655_khz: bytes) -> None:
    """A 1.5 MB FLAC that announces 600 s at 655 kHz is refused from its header, under 16 MB traced."""
    assert len(ten_minutes_at_655_khz) < 2 * 2**20

    outcome, peak = peak_bytes(lambda: decode_audio(ten_minutes_at_655_khz, "flac", max_seconds=600.0))

    assert isinstance(outcome, ClipRejected), outcome
    message = str(outcome)
    assert "655,350 Hz" in message and "at most 43.9 s fit" in message and "48 kHz or less" in message
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MB traced while refusing it"


def test_a_high_rate_clip_within_the_length_limit_is_still_refused_when_its_frames_do_not_fit() -> None:
    """10 s at 655 kHz is under a 20 s limit but holds 6.5 M frames (budget: 20 s x 48 kHz = 0.96 M)."""
    data = silent_flac(10.0)

    outcome, peak = peak_bytes(lambda: decode_audio(data, "flac", max_seconds=20.0))

    assert isinstance(outcome, ClipRejected), outcome
    assert "at most 1.5 s fit" in str(outcome)
    assert peak < 4 * 2**20  # the whole clip would be 26 MB of float32


def test_a_high_rate_clip_that_fits_its_frames_decodes_at_its_own_rate() -> None:
    """96 kHz is accepted when the clip is short enough: 5 s x 96 kHz fits 20 s x 48 kHz."""
    data = silent_flac(5.0, rate=96000)

    audio = decode_audio(data, "flac", max_seconds=20.0)

    assert audio.sample_rate == 96000 and audio.duration_s == pytest.approx(5.0)


def test_the_ffmpeg_path_refuses_a_high_rate_clip_from_its_header_too() -> None:
    """The same FLAC under an extension soundfile does not read goes through PyAV, and is refused there too."""
    data = silent_flac(10.0)

    outcome, peak = peak_bytes(lambda: decode_audio(data, "m4a", max_seconds=20.0))

    assert isinstance(outcome, ClipRejected), outcome
    assert "655,350 Hz" in str(outcome)
    assert peak < 4 * 2**20


def test_a_headerless_high_rate_wav_stops_decoding_at_the_frame_cap() -> None:
    """A WAV whose data size says "unknown" is decoded only up to the frame budget, then refused."""
    rate, seconds = 192000, 12.0
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(rate * seconds), dtype=np.int16), rate, format="WAV", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    assert data[36:40] == b"data"
    data[40:44] = b"\xff\xff\xff\xff"  # a streaming writer's "length unknown"
    budget = ClipBudget(max_seconds=20.0)

    outcome, peak = peak_bytes(lambda: decode_audio(bytes(data), "wav", max_seconds=20.0))

    assert isinstance(outcome, ClipRejected), outcome
    assert "192,000 Hz" in str(outcome)
    assert peak < 2 * 4 * budget.cap_frames(rate) + 2**20  # never the whole 9 MB of float32


def test_many_channels_are_read_in_small_blocks() -> None:
    """A 64-channel WAV is averaged to mono without reading 65,536 frames x 64 channels at once."""
    rate, channels = 16000, 64
    buffer = io.BytesIO()
    sf.write(buffer, np.full((rate * 4, channels), 0.25, dtype=np.float32), rate, format="WAV", subtype="FLOAT")
    data = buffer.getvalue()

    outcome, peak = peak_bytes(lambda: decode_audio(data, "wav", max_seconds=20.0))

    assert not isinstance(outcome, ClipRejected)
    np.testing.assert_allclose(outcome.samples, 0.25, atol=1e-6)
    assert peak < len(data) / 2  # one block is about 1 MB; the whole file is 16 MB


def test_budget_never_allows_more_than_its_seconds_at_its_rate() -> None:
    """Whatever the rate, the frame cap stays under (max_seconds + slack) x max_source_rate."""
    budget = ClipBudget(max_seconds=600.0)
    for rate in (8000, 44100, 48000, 96000, 655350, 2**31 - 1):
        assert budget.cap_frames(rate) <= (600.0 + 0.5) * 48000 + 1
    assert budget.seconds_at(44100) == 600.0 and budget.seconds_at(96000) == 300.0


def test_max_source_rate_is_a_setting() -> None:
    """VOICECLONING_MAX_SOURCE_RATE sets the rate at which the seconds limit is counted in frames."""
    assert Settings.from_env({}).limits.max_source_rate == 48000
    assert Settings.from_env({"VOICECLONING_MAX_SOURCE_RATE": "96000"}).limits.max_source_rate == 96000
